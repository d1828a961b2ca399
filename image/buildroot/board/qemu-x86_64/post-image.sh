#!/bin/sh
# Buildroot post-image script: redfin.img (GPT: ESP, root-a, root-b, data) with genimage,
# from the same board files as image/build.sh: board/qemu-x86_64/grub.cfg with the kernel
# command line of board/qemu-x86_64/cmdline.txt, a grubenv naming bank A, both banks holding
# bzImage + rootfs.cpio.gz (the whole system) + release, and an empty bmcd state directory.
set -eu
BOARD_DIR=$(cd "$BR2_EXTERNAL_REDFIN_PATH/../../board/qemu-x86_64" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
STAGE=$BUILD_DIR/redfin-genimage
# genimage takes the ESP's files from its input path (BINARIES_DIR), the ext4 contents from
# its root path (STAGE, by mountpoint)
ESP=$BINARIES_DIR/redfin-esp
rm -rf "$STAGE" "$ESP" && mkdir -p "$ESP/EFI/BOOT" "$ESP/EFI/redfin" "$STAGE/bank/boot" "$STAGE/data/bmcd"
chmod 0700 "$STAGE/data/bmcd"

CMDLINE=$(tr '\n' ' ' <"$BOARD_DIR/cmdline.txt" | sed 's/ *$//')
cp "$BINARIES_DIR/efi-part/EFI/BOOT/bootx64.efi" "$ESP/EFI/BOOT/BOOTX64.EFI"
sed "s|@CMDLINE@|$CMDLINE|g" "$BOARD_DIR/grub.cfg" >"$ESP/EFI/redfin/grub.cfg"
"$HOST_DIR/bin/grub-editenv" "$ESP/EFI/redfin/grubenv" create
"$HOST_DIR/bin/grub-editenv" "$ESP/EFI/redfin/grubenv" set redfin_bank=a

cp "$BINARIES_DIR/bzImage" "$STAGE/bank/boot/vmlinuz"
cp "$BINARIES_DIR/rootfs.cpio.gz" "$STAGE/bank/boot/initramfs.cpio.gz"
cp "$TARGET_DIR/etc/redfin/release" "$STAGE/bank/boot/release"

GENIMAGE_TMP=$BUILD_DIR/genimage.tmp
rm -rf "$GENIMAGE_TMP"
genimage --rootpath "$STAGE" --tmppath "$GENIMAGE_TMP" --inputpath "$BINARIES_DIR" \
  --outputpath "$BINARIES_DIR" --config "$HERE/genimage.cfg"
echo "$CMDLINE" >"$BINARIES_DIR/cmdline.txt"
# the names image/build.sh uses, so that qemu-tests/run.sh takes this directory as it is
ln -sf bzImage "$BINARIES_DIR/vmlinuz"
ln -sf rootfs.cpio.gz "$BINARIES_DIR/initramfs.cpio.gz"
cp "$TARGET_DIR/etc/redfin/release" "$BINARIES_DIR/release"
echo "Redfin: $BINARIES_DIR/redfin.img (test it with qemu-tests/run.sh $BINARIES_DIR disk)"
