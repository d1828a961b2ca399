#!/bin/bash
# Build the Redfin firmware image from Debian packages and the release bmcd binary.
#
# usage: image/build.sh OUT_DIR
#
# Produces in OUT_DIR:
#   vmlinuz             Debian kernel (linux-image-amd64)
#   initramfs.cpio.gz   the whole system: busybox, bmcd and its shared libraries, kernel
#                       modules, overlays/common (init scripts, default configuration)
#   cmdline.txt         kernel command line for a direct kernel boot (board/BOARD/cmdline.txt)
#   redfin.img          raw GPT disk, UEFI-bootable: ESP (GRUB), root bank A, root bank B,
#                       data partition (bmcd's state directory), see board/BOARD/partitions.txt
#   release             what went into the image (sourced by the image's init scripts too)
#   update.tar          a signed update package of this build (image/mkupdate.sh) for
#                       UpdateService: its rootfs.img is one bank's file system
#   update-key.pub      the public key bmcd trusts for updates (base64, 32 bytes)
#
# Nothing is installed on the build machine and nothing needs root: packages are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` into the cache; file systems are made with
# mkfs.vfat + mtools and mkfs.ext4 -d, the partition table with sfdisk on a plain file.
#
# Environment:
#   BOARD=qemu-x86_64              board directory under board/
#   BMCD_BIN=target/release/bmcd   bmcd binary (build it first: make release)
#   CONSOLE_PROXY_BIN=...           console-proxy binary (default: beside BMCD_BIN)
#   IMAGE_CACHE=target/image-cache downloaded packages and unpacked kernels
#   KERNEL_PKG=linux-image-6.1.0-NN-amd64   pin the kernel package
#   SOURCE_DATE_EPOCH              file times inside the initramfs (default: last git commit)
#   UPDATE_KEY=target/image-keys/dev-update-key.pem   Ed25519 key that signs update packages;
#                                  its public key is baked into the image's bmcd.toml. Made
#                                  (a development key, never committed) if the file is missing.
#   ICU_DATA=stub                  replace libicudata (31 MB, unused by bmcd) by a stand-in,
#                                  see image/lib/rootfs.sh; ICU_DATA=full keeps it
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
TOP=$(dirname "$HERE")
OUT_ARG=${1:?usage: image/build.sh OUT_DIR}
BOARD=${BOARD:-qemu-x86_64}
BOARD_DIR=$TOP/board/$BOARD
BMCD_BIN=${BMCD_BIN:-$TOP/target/release/bmcd}
CONSOLE_PROXY_BIN=${CONSOLE_PROXY_BIN:-$(dirname "$BMCD_BIN")/console-proxy}
CACHE=${IMAGE_CACHE:-$TOP/target/image-cache}
ICU_DATA=${ICU_DATA:-stub}
UPDATE_KEY=${UPDATE_KEY:-$TOP/target/image-keys/dev-update-key.pem}
case "$ICU_DATA" in stub|full) ;; *) echo "image: ICU_DATA must be stub or full" >&2; exit 2 ;; esac

# shellcheck source=image/lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=image/lib/packages.sh
. "$HERE/lib/packages.sh"
# shellcheck source=image/lib/rootfs.sh
. "$HERE/lib/rootfs.sh"
# shellcheck source=image/lib/disk.sh
. "$HERE/lib/disk.sh"

[ -d "$BOARD_DIR" ] || die "no board directory $BOARD_DIR"
# shellcheck source=board/qemu-x86_64/board.conf
. "$BOARD_DIR/board.conf"
[ -x "$BMCD_BIN" ] || die "$BMCD_BIN missing: run 'make release' first"
[ -x "$CONSOLE_PROXY_BIN" ] || die "$CONSOLE_PROXY_BIN missing: run 'make release' first"
check_tools

mkdir -p "$CACHE" "$OUT_ARG"
CACHE=$(cd "$CACHE" && pwd)
OUT_DIR=$(cd "$OUT_ARG" && pwd)
exec 8>"$CACHE/.lock"
flock -w 900 8 || die "timeout waiting for the cache lock $CACHE/.lock"

WORK=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

T0=$(date +%s)
update_key            # -> UPDATE_PUBKEY (made under target/image-keys/ if missing)
fetch_kernel          # -> KVER, KERNEL_DIR (vmlinuz, modules/, modules.order)
fetch_busybox         # -> BUSYBOX
find_sfdisk           # -> SFDISK

write_release "$WORK/release"
build_rootfs "$WORK/rootfs"
pack_initramfs "$WORK/rootfs" "$WORK/initramfs.cpio.gz"
cp "$KERNEL_DIR/vmlinuz" "$WORK/vmlinuz"
tr '\n' ' ' <"$BOARD_DIR/cmdline.txt" | sed 's/ *$//' >"$WORK/cmdline.txt"
echo >>"$WORK/cmdline.txt"
build_disk "$WORK" "$WORK/redfin.img"
build_update "$WORK/update.tar"
echo "$UPDATE_PUBKEY" >"$WORK/update-key.pub"

for f in vmlinuz initramfs.cpio.gz cmdline.txt release redfin.img update.tar update-key.pub; do
  mv -f "$WORK/$f" "$OUT_DIR/$f"
done

log "done in $(( $(date +%s) - T0 )) s: $OUT_DIR"
print_sizes
