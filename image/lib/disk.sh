# shellcheck shell=bash disable=SC2034  # (globals shared with the other parts of image/build.sh)
# The raw GPT disk image for image/build.sh (sourced). No loop devices, no mounts: each
# partition is made as a file (mkfs.vfat -C + mtools, mkfs.ext4 -d), the partition table is
# written by sfdisk into a sparse file and the partitions are copied in with dd.

# GPT partition type GUIDs by the short names of partitions.txt
declare -A GPT_TYPE=(
  [esp]=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
  [linux]=0FC63DAF-8483-4772-8E79-3D69D8477DE4
)
# FAT volume id of the ESP (-> file system UUID 5246-4E31); GRUB's embedded config finds
# its grub.cfg on the partition with this UUID
ESP_VOLID=52464E31
ESP_UUID=5246-4E31

# build_disk WORK OUT
build_disk() {
  local w=$1 out=$2 name size type fs label content img start total=1 script
  local -a parts=()
  while read -r name size type fs label content; do
    case "$name" in ''|'#'*) continue ;; esac
    [ -n "$content" ] || die "partitions.txt: incomplete line for $name"
    [ -n "${GPT_TYPE[$type]:-}" ] || die "partitions.txt: unknown type $type"
    img=$w/part-$name.img
    case "$content" in
      esp) make_esp "$w" "$img" "$size" "$label" ;;
      bank) make_ext4 "$img" "$size" "$label" "$(stage_bank "$w/bank-$name")" ;;
      data) make_ext4 "$img" "$size" "$label" "$(stage_data "$w/data-$name")" ;;
      *) die "partitions.txt: unknown content $content" ;;
    esac
    [ "$fs" = "$( [ "$content" = esp ] && echo vfat || echo ext4)" ] \
      || die "partitions.txt: $name: content $content needs fs $( [ "$content" = esp ] && echo vfat || echo ext4)"
    parts+=("$name $size $type $img")
    total=$((total + size))
  done <"$BOARD_DIR/partitions.txt"
  total=$((total + 1))

  rm -f "$out"
  truncate -s "${total}M" "$out"
  script="label: gpt"$'\n'"unit: sectors"$'\n'"first-lba: 2048"$'\n'
  start=1
  for p in "${parts[@]}"; do
    read -r name size type img <<<"$p"
    script+="start=$((start * 2048)), size=$((size * 2048)), type=${GPT_TYPE[$type]}, name=\"$name\""$'\n'
    start=$((start + size))
  done
  echo -n "$script" | "$SFDISK" --quiet --no-reread --no-tell-kernel "$out" >/dev/null \
    || die "sfdisk failed on $out"
  start=1
  for p in "${parts[@]}"; do
    read -r name size type img <<<"$p"
    dd if="$img" of="$out" bs=1M seek="$start" conv=notrunc,sparse status=none
    start=$((start + size))
    rm -f "$img"
  done
  log "disk: $(human $((total * 1048576))), partitions: $(for p in "${parts[@]}"; do read -r name size _ <<<"$p"; printf '%s (%s MiB) ' "$name" "$size"; done)"
}

# make_esp WORK IMG SIZE_MIB LABEL: FAT ESP with GRUB as the removable-media boot loader
# (EFI/BOOT/BOOTX64.EFI), EFI/redfin/grub.cfg and EFI/redfin/grubenv
make_esp() {
  local w=$1 img=$2 size=$3 label=$4 cmdline
  cat >"$w/grub-early.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $ESP_UUID
set prefix=(\$root)/EFI/redfin
EOF
  grub-mkimage -O "$GRUB_FORMAT" -c "$w/grub-early.cfg" -p /EFI/redfin -o "$w/$EFI_BOOT_FILE" \
    part_gpt fat ext2 search search_fs_uuid search_label normal linux configfile echo test \
    loadenv regexp all_video
  cmdline=$(tr '\n' ' ' <"$BOARD_DIR/cmdline.txt" | sed 's/ *$//')
  sed "s|@CMDLINE@|$cmdline|g" "$BOARD_DIR/grub.cfg" >"$w/grub.cfg"
  rm -f "$w/grubenv"
  grub-editenv "$w/grubenv" create
  grub-editenv "$w/grubenv" set redfin_bank=a
  rm -f "$img"
  mkfs.vfat -C -i "$ESP_VOLID" -n "$label" "$img" $((size * 1024)) >/dev/null
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$img" ::/EFI ::/EFI/BOOT ::/EFI/redfin
  mcopy -i "$img" "$w/$EFI_BOOT_FILE" "::/EFI/BOOT/$EFI_BOOT_FILE"
  mcopy -i "$img" "$w/grub.cfg" ::/EFI/redfin/grub.cfg
  mcopy -i "$img" "$w/grubenv" ::/EFI/redfin/grubenv
}

# stage_bank DIR: one firmware version (kernel, initramfs, release); prints DIR
stage_bank() {
  mkdir -p "$1/boot"
  cp "$WORK/vmlinuz" "$1/boot/vmlinuz"
  cp "$WORK/initramfs.cpio.gz" "$1/boot/initramfs.cpio.gz"
  cp "$WORK/release" "$1/boot/release"
  echo "$1"
}

# stage_data DIR: the data partition's initial contents (an empty bmcd state directory:
# bmcd makes its certificate, database and admin account at the first boot); prints DIR
stage_data() {
  mkdir -p "$1/bmcd"
  chmod 0700 "$1/bmcd"
  echo "$1"
}

# make_ext4 IMG SIZE_MIB LABEL DIR
make_ext4() {
  rm -f "$1"
  mkfs.ext4 -q -F -m 0 -L "$3" -E root_owner=0:0 -d "$4" "$1" "${2}M" >/dev/null || die "mkfs.ext4 $3 failed"
}

# update_key: the Ed25519 key that signs update packages ($UPDATE_KEY; a development key is
# made if it is missing). Sets UPDATE_PUBKEY (base64 of the 32-byte public key).
update_key() {
  command -v openssl >/dev/null || die "missing on the build machine: openssl (openssl)"
  if [ ! -s "$UPDATE_KEY" ]; then
    mkdir -p "$(dirname "$UPDATE_KEY")"
    (umask 077 && openssl genpkey -algorithm ed25519 -out "$UPDATE_KEY") || die "cannot make $UPDATE_KEY"
    log "made a development update signing key: $UPDATE_KEY (keep it out of git)"
  fi
  UPDATE_PUBKEY=$("$HERE/mkupdate.sh" --public "$UPDATE_KEY") || die "$UPDATE_KEY is not an Ed25519 key"
}

# build_update OUT: a signed update package of this build. Its rootfs.img is a bank file
# system just big enough for the bank's files (smaller than the partition: less to upload).
build_update() {
  local out=$1 dir kib version
  dir=$(stage_bank "$WORK/update-bank")
  kib=$(du -sk "$dir" | cut -f1)
  kib=$(( kib + kib / 8 + 4096 ))
  rm -f "$WORK/update-rootfs.img"
  mkfs.ext4 -q -F -m 0 -L redfin-root -E root_owner=0:0 -d "$dir" "$WORK/update-rootfs.img" "${kib}K" >/dev/null \
    || die "mkfs.ext4 of the update's bank image failed"
  version=$(sed -n "s/^REDFIN_VERSION='\(.*\)'$/\1/p" "$WORK/release")
  "$HERE/mkupdate.sh" "$UPDATE_KEY" "$version" "$WORK/update-rootfs.img" "$out" "redfin-$BOARD" >/dev/null \
    || die "cannot make the update package"
  rm -f "$WORK/update-rootfs.img"
  log "update package: $(human "$(size_of "$out")") ($version, signed with $UPDATE_KEY)"
}
