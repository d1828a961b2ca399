#!/bin/bash
# Make a signed Redfin update package (what UpdateService accepts).
#
# usage: image/mkupdate.sh KEY.pem VERSION ROOTFS_IMG OUT.tar [COMPATIBLE]
#   KEY.pem     Ed25519 private key (openssl genpkey -algorithm ed25519 -out KEY.pem)
#   VERSION     firmware version the package carries (shown in FirmwareInventory)
#   ROOTFS_IMG  the file system image of one bank (ext4 with /boot/vmlinuz,
#               /boot/initramfs.cpio.gz, /boot/release), written as-is to the inactive bank
#   COMPATIBLE  board the package is for (default redfin-qemu-x86_64)
#
# The package is a ustar archive of manifest.json (format, compatible, version, and the
# size and SHA-256 of rootfs.img), manifest.sig (the raw 64-byte Ed25519 signature of
# manifest.json) and rootfs.img. bmcd trusts the public keys in [firmware] trusted-keys
# (base64 of the 32 raw bytes: image/mkupdate.sh --public KEY.pem prints it).
set -euo pipefail

if [ "${1:-}" = --public ]; then
  openssl pkey -in "${2:?usage: $0 --public KEY.pem}" -pubout -outform DER | tail -c 32 | base64 -w0
  echo
  exit 0
fi
KEY=${1:?usage: $0 KEY.pem VERSION ROOTFS_IMG OUT.tar [COMPATIBLE]}
VERSION=${2:?version}
ROOTFS=${3:?rootfs image}
OUT=${4:?output file}
COMPATIBLE=${5:-redfin-qemu-x86_64}

case "$VERSION" in *[!A-Za-z0-9.+~_-]*|'') echo "mkupdate: bad version '$VERSION'" >&2; exit 2 ;; esac
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp --sparse=always "$ROOTFS" "$W/rootfs.img"
SIZE=$(stat -c %s "$W/rootfs.img")
SHA=$(sha256sum "$W/rootfs.img" | cut -c1-64)
printf '{"format":"redfin-update-1","compatible":"%s","version":"%s","files":[{"name":"rootfs.img","sha256":"%s","size":%s}]}\n' \
  "$COMPATIBLE" "$VERSION" "$SHA" "$SIZE" >"$W/manifest.json"
openssl pkeyutl -sign -inkey "$KEY" -rawin -in "$W/manifest.json" -out "$W/manifest.sig"
[ "$(stat -c %s "$W/manifest.sig")" = 64 ] || { echo "mkupdate: the key is not an Ed25519 key" >&2; exit 1; }
tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$W" \
  -cf "$OUT.tmp" manifest.json manifest.sig rootfs.img
mv -f "$OUT.tmp" "$OUT"
echo "mkupdate: $OUT ($VERSION, rootfs.img $SIZE bytes, sha256 $SHA)"
