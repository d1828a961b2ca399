#!/bin/sh
# Vendor the workspace's crates for an offline Buildroot build (run on a machine that
# reaches crates.io, or has them in its cargo cache): VENDOR/ and .cargo/vendor.toml (the
# source replacement) at the top of the source tree. Both are ignored by git; Buildroot's
# bmcd and console-proxy packages build with --offline --config .cargo/vendor.toml. The
# committed .cargo/config.toml (SQLite build flags) stays as it is.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
mkdir -p .cargo
cargo vendor --locked --versioned-dirs VENDOR >.cargo/vendor.toml
echo "vendored $(find VENDOR -mindepth 1 -maxdepth 1 | wc -l) crates into $TOP/VENDOR (.cargo/vendor.toml points there)"
