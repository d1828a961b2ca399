#!/bin/bash
# Build a small bootable raw disk image for the e2e test guest, printing
# "REDFIN-GUEST-BOOTED source=disk" on ttyS0. Boots under legacy BIOS (SeaBIOS) and UEFI (OVMF).
#
# usage: tests/e2e/build-boot-disk.sh CACHE_DIR       -> CACHE_DIR/boot-disk.img (path printed on stdout)
#
# Layout (no loop devices / root mounts needed):
#   sector 0        MBR: GRUB boot.img code + one partition entry (type 0xEF, active)
#   sectors 1-2047  GRUB i386-pc core.img (the usual "MBR gap" embedding)
#   partition 1     FAT16 (mkfs.vfat + mtools), volume id 5245-4446:
#                   /EFI/BOOT/BOOTX64.EFI (GRUB x86_64-efi image), /boot/grub/grub.cfg,
#                   /boot/vmlinuz, /boot/initrd.img
# Both GRUB images carry an embedded config that finds the partition by its FAT UUID.
# The image is a plain file: attach it as <disk type='file' device='disk'> with <driver type='raw'/>.
# Tests that write to it should use a copy (cp --sparse=always).
# Needs: grub-pc-bin grub-efi-amd64-bin (grub-common) mtools dosfstools.
# Note: UEFI boot needs >= 320 MiB guest RAM (GRUB + Debian kernel), see build-boot-iso.sh.
set -euo pipefail

CACHE_DIR=${1:?usage: $0 CACHE_DIR}
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
SELF=$(readlink -f "${BASH_SOURCE[0]}")
"$HERE/build-guest.sh" "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
OUT="$CACHE_DIR/boot-disk.img"
DISK_MB=24
VOLID=52454446          # hex; -> FAT UUID 5245-4446
FSUUID=5245-4446
log() { echo "build-boot-disk: $*" >&2; }

for t in grub-mkimage mkfs.vfat mcopy mmd; do
  command -v "$t" >/dev/null || { log "missing $t (apt-get install grub-common grub-pc-bin grub-efi-amd64-bin mtools dosfstools)"; exit 1; }
done
for d in /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi; do
  [ -d "$d" ] || { log "missing $d (apt-get install grub-pc-bin grub-efi-amd64-bin)"; exit 1; }
done

exec 9>"$CACHE_DIR/.build-boot-disk.lock"
flock -w 300 9 || { log "timeout waiting for lock"; exit 1; }

STAMP=$(cat "$SELF" "$CACHE_DIR/initrd.stamp" "$CACHE_DIR/kernel-version" | sha256sum | cut -d' ' -f1)
if [ -s "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "up to date: $OUT"
  echo "$OUT"
  exit 0
fi

W=$(mktemp -d "$CACHE_DIR/disk.XXXXXX")
trap 'rm -rf "$W"' EXIT

# --- GRUB images with an embedded config that locates the FAT partition
cat > "$W/early.cfg" <<CFG
search --no-floppy --fs-uuid --set=root $FSUUID
set prefix=(\$root)/boot/grub
CFG
COMMON=(part_msdos fat search search_fs_uuid normal linux configfile echo test serial terminal gzio)
grub-mkimage -O i386-pc -c "$W/early.cfg" -p /boot/grub -o "$W/core.img" biosdisk "${COMMON[@]}"
grub-mkimage -O x86_64-efi -c "$W/early.cfg" -p /boot/grub -o "$W/BOOTX64.EFI" part_gpt all_video "${COMMON[@]}"
CORE_SECTORS=$(( ($(stat -c %s "$W/core.img") + 511) / 512 ))
[ "$CORE_SECTORS" -le 2047 ] || { log "core.img too big ($CORE_SECTORS sectors)"; exit 1; }

cat > "$W/grub.cfg" <<'CFG'
set timeout=0
set default=0
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
if [ "$grub_platform" = "efi" ]; then insmod all_video; fi
menuentry "Redfin e2e test guest (disk)" {
  linux /boot/vmlinuz console=tty0 console=ttyS0,115200 quiet panic=1 redfin.source=disk
  initrd /boot/initrd.img
}
CFG

# --- FAT partition image
PART_START=2048
PART_SECTORS=$(( DISK_MB * 2048 - PART_START ))
mkfs.vfat -C -F 16 -i "$VOLID" -n REDFINDISK "$W/part.img" $(( PART_SECTORS / 2 )) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$W/part.img" ::/EFI ::/EFI/BOOT ::/boot ::/boot/grub
mcopy -i "$W/part.img" "$W/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$W/part.img" "$W/grub.cfg" ::/boot/grub/grub.cfg
mcopy -i "$W/part.img" "$CACHE_DIR/vmlinuz" ::/boot/vmlinuz
mcopy -i "$W/part.img" "$CACHE_DIR/initrd.img" ::/boot/initrd.img

# --- assemble the disk
# le32 N: printf escape sequence (a format string) for N as 4 little-endian bytes
le32() { local v=$1; printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) $((v >> 24 & 255)); }
truncate -s "${DISK_MB}M" "$W/disk.img"
dd if=/usr/lib/grub/i386-pc/boot.img of="$W/disk.img" bs=440 count=1 conv=notrunc status=none
dd if="$W/core.img" of="$W/disk.img" bs=512 seek=1 conv=notrunc status=none
{
  # shellcheck disable=SC2059  # (le32 yields printf escapes)
  printf "$(le32 $((16#$VOLID)))\\x00\\x00"                     # 0x1B8 disk signature + 2 reserved bytes
  # partition 1: active, CHS start 0/32/33 (= LBA 2048 with 255 heads/63 sectors), type 0xEF,
  # CHS end "beyond CHS" (fe ff ff), LBA start, sector count
  printf '\x80\x20\x21\x00\xef\xfe\xff\xff'
  # shellcheck disable=SC2059
  printf "$(le32 $PART_START)$(le32 $PART_SECTORS)"
  head -c 48 /dev/zero                                    # partitions 2-4 empty
  printf '\x55\xaa'
} > "$W/mbr-tail.bin"
[ "$(stat -c %s "$W/mbr-tail.bin")" = 72 ] || { log "internal error: MBR tail is not 72 bytes"; exit 1; }
dd if="$W/mbr-tail.bin" of="$W/disk.img" bs=1 seek=440 conv=notrunc status=none
dd if="$W/part.img" of="$W/disk.img" bs=512 seek=$PART_START conv=notrunc,sparse status=none

mv "$W/disk.img" "$OUT"
echo "$STAMP" > "$OUT.stamp"
log "built $OUT ($(stat -c %s "$OUT") bytes, $(du -k "$OUT" | cut -f1) KiB on disk)"
echo "$OUT"
