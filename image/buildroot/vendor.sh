#!/bin/sh
# Vendor the workspace's crates for an offline Buildroot build (run on a machine that
# reaches crates.io, or has them in its cargo cache): VENDOR/ and .cargo/config.toml at the
# top of the source tree. Both are ignored by git; Buildroot's bmcd and console-proxy
# packages build with --offline from them.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
mkdir -p .cargo
cargo vendor --locked --versioned-dirs VENDOR >.cargo/config.toml
echo "vendored $(find VENDOR -mindepth 1 -maxdepth 1 | wc -l) crates into $TOP/VENDOR (.cargo/config.toml points there)"
