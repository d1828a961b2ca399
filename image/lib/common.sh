# shellcheck shell=bash
# Helpers for image/build.sh (sourced).

log() { echo "image: $*" >&2; }
die() { log "error: $*"; exit 1; }

# check_tools: the build machine's programs (Debian package in brackets in the message)
check_tools() {
  local t missing=()
  for t in apt-get:apt apt-cache:apt dpkg-deb:dpkg cpio:cpio gzip:gzip ldd:libc-bin \
           strip:binutils readelf:binutils nm:binutils mkfs.vfat:dosfstools mmd:mtools mcopy:mtools \
           mkfs.ext4:e2fsprogs grub-mkimage:grub-common grub-editenv:grub-common flock:util-linux; do
    command -v "${t%%:*}" >/dev/null || missing+=("${t%%:*} (${t#*:})")
  done
  [ -d "/usr/lib/grub/$GRUB_FORMAT" ] || missing+=("/usr/lib/grub/$GRUB_FORMAT (grub-efi-amd64-bin)")
  [ ${#missing[@]} -eq 0 ] || die "missing on the build machine: ${missing[*]}"
}

# size_of FILE: apparent size in bytes
size_of() { stat -c %s "$1"; }

# human BYTES: "12.3 MiB"
human() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b / 1048576; else printf "%.1f KiB", b / 1024 }'; }

print_sizes() {
  local f
  echo
  echo "Redfin image ($BOARD, kernel $KVER, $(grep '^BMCD_VERSION=' "$OUT_DIR/release" | cut -d= -f2 | tr -d "'")) in $OUT_DIR:"
  for f in vmlinuz initramfs.cpio.gz redfin.img update.tar; do
    printf '  %-18s %11s bytes  %9s' "$f" "$(size_of "$OUT_DIR/$f")" "$(human "$(size_of "$OUT_DIR/$f")")"
    [ "$f" = redfin.img ] && printf '  (sparse, %s allocated)' "$(human $(( $(du -k "$OUT_DIR/$f" | cut -f1) * 1024 )))"
    echo
  done
  echo "  initramfs contents: $(human "$ROOTFS_BYTES") unpacked; bmcd $(human "$BMCD_BYTES"), console-proxy $(human "$CONSOLE_PROXY_BYTES"), shared libraries $(human "$LIBS_BYTES") ($LIBS_COUNT files), kernel modules $(human "$MODS_BYTES") ($MODS_COUNT), busybox $(human "$(size_of "$BUSYBOX")")"
}
