#!/bin/sh
# Buildroot post-build script (TARGET_DIR as $1): what image/lib/rootfs.sh does after the
# overlay is copied: the release file, the (empty) module list, and bmcd.toml's
# placeholders (version, board, the public key update packages must be signed with).
#   UPDATE_KEY  Ed25519 key (PEM) that signs update packages; a development key is made in
#               $BASE_DIR/image-keys/ if it is missing (never commit one).
set -eu
TARGET=$1
TOP=$(cd "$BR2_EXTERNAL_REDFIN_PATH/../.." && pwd)
KEY=${UPDATE_KEY:-$BASE_DIR/image-keys/dev-update-key.pem}
if [ ! -s "$KEY" ]; then
  mkdir -p "$(dirname "$KEY")"
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$KEY")
fi
PUB=$("$TOP/image/mkupdate.sh" --public "$KEY")
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$TOP/Cargo.toml" | head -n 1)+br
mkdir -p "$TARGET/etc/redfin"
cat >"$TARGET/etc/redfin/release" <<REL
REDFIN_VERSION='$VERSION'
BMCD_VERSION='${VERSION%+br}'
BOARD='qemu-x86_64'
KERNEL='buildroot'
BUILD_DATE='$(date -u +%Y-%m-%dT%H:%M:%SZ)'
REL
: >"$TARGET/etc/redfin/modules"
sed -i -e "s|@COMPATIBLE@|redfin-qemu-x86_64|" -e "s|@VERSION@|$VERSION|" \
  -e "s|@TRUSTED_KEYS@|\"$PUB\"|" "$TARGET/etc/bmcd/bmcd.toml"
echo "$PUB" >"$BINARIES_DIR/update-key.pub"
