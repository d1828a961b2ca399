#!/bin/bash
# Build a small hybrid bootable ISO (BIOS/SeaBIOS via GRUB El Torito + UEFI/OVMF via GRUB EFI)
# that boots the e2e test guest and prints "REDFIN-GUEST-BOOTED source=cdrom" on ttyS0.
#
# usage: tests/e2e/build-boot-iso.sh CACHE_DIR        -> CACHE_DIR/boot.iso (path printed on stdout)
#
# Runs build-guest.sh CACHE_DIR first (kernel + initrd). Idempotent: rebuilt only when this
# script, the kernel or the initrd changed.
# Needs: grub-common grub-pc-bin grub-efi-amd64-bin mtools xorriso (grub-mkrescue).
# Note: under UEFI, GRUB + the Debian kernel (init_size 63 MiB) need >= 320 MiB guest RAM;
# with 256 MiB GRUB fails with "out of memory" (guest-domain.sh defaults to 384 MiB).
set -euo pipefail

CACHE_DIR=${1:?usage: $0 CACHE_DIR}
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
SELF=$(readlink -f "${BASH_SOURCE[0]}")
"$HERE/build-guest.sh" "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
OUT="$CACHE_DIR/boot.iso"
log() { echo "build-boot-iso: $*" >&2; }

for t in grub-mkrescue xorriso mformat; do
  command -v "$t" >/dev/null || { log "missing $t (apt-get install grub-common grub-pc-bin grub-efi-amd64-bin mtools xorriso)"; exit 1; }
done
for d in /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi; do
  [ -d "$d" ] || { log "missing $d (apt-get install grub-pc-bin grub-efi-amd64-bin)"; exit 1; }
done

exec 9>"$CACHE_DIR/.build-boot-iso.lock"
flock -w 300 9 || { log "timeout waiting for lock"; exit 1; }

STAMP=$(cat "$SELF" "$CACHE_DIR/initrd.stamp" "$CACHE_DIR/kernel-version" | sha256sum | cut -d' ' -f1)
if [ -s "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "up to date: $OUT"
  echo "$OUT"
  exit 0
fi

W=$(mktemp -d "$CACHE_DIR/iso.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/root/boot/grub"
cp "$CACHE_DIR/vmlinuz" "$CACHE_DIR/initrd.img" "$W/root/boot/"
cat > "$W/root/boot/grub/grub.cfg" <<'CFG'
set timeout=0
set default=0
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
insmod all_video
menuentry "Redfin e2e test guest (cdrom)" {
  linux /boot/vmlinuz console=tty0 console=ttyS0,115200 quiet panic=1 redfin.source=cdrom
  initrd /boot/initrd.img
}
CFG
# Only the GRUB modules we need (grub-mkrescue's own EFI config insmods all part_* modules).
MODS="linux normal configfile echo test search search_fs_file search_fs_uuid search_label"
MODS="$MODS serial terminal iso9660 fat gzio all_video $(tr '\n' ' ' < /usr/lib/grub/x86_64-efi/partmap.lst)"
timeout 120 grub-mkrescue -o "$W/boot.iso" --fonts= --locales= --themes= \
  --install-modules="$MODS" "$W/root" >"$W/mkrescue.log" 2>&1 \
  || { cat "$W/mkrescue.log" >&2; log "grub-mkrescue failed"; exit 1; }
mv "$W/boot.iso" "$OUT"
echo "$STAMP" > "$OUT.stamp"
log "built $OUT ($(stat -c %s "$OUT") bytes)"
echo "$OUT"
