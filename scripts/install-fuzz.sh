#!/usr/bin/env bash
# Install cargo-fuzz (libFuzzer driver) from crates.io when it is missing.
# Idempotent: does nothing when `cargo fuzz --version` already works.
set -euo pipefail

if cargo fuzz --version >/dev/null 2>&1; then
  echo "install-fuzz: $(cargo fuzz --version)"
  exit 0
fi
echo "install-fuzz: installing cargo-fuzz from crates.io"
cargo install cargo-fuzz --locked
cargo fuzz --version
