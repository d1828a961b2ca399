# shellcheck shell=bash disable=SC2034  # (globals shared with the other parts of image/build.sh)
# The image's root file system (the initramfs) for image/build.sh (sourced).

# write_release FILE: what goes into this image, as shell assignments (/etc/redfin/release)
write_release() {
  local bmcd_version git_rev
  bmcd_version=$("$BMCD_BIN" --version | awk '{print $2}')
  git_rev=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ "$git_rev" != unknown ] && [ -n "$(git -C "$TOP" status --porcelain 2>/dev/null | head -n 1)" ]; then
    git_rev=$git_rev.dirty
  fi
  cat >"$1" <<EOF
REDFIN_VERSION='$bmcd_version+g$git_rev'
BMCD_VERSION='$bmcd_version'
BOARD='$BOARD'
KERNEL='$KVER'
BUILD_DATE='$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)'
EOF
}

# build_rootfs DIR: busybox, overlays, bmcd with its shared-library closure, kernel modules
build_rootfs() {
  local r=$1 p up name path real interp
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/lib,lib/"$LIB_TRIPLET",lib64,lib/modules/"$KVER"} \
           "$r"/{etc/redfin,proc,sys,dev,run,tmp,var/log,data,root}
  chmod 1777 "$r/tmp"
  chmod 0700 "$r/root"

  # busybox and its applet links (relative, so the tree can be inspected in place)
  cp "$BUSYBOX" "$r/bin/busybox"
  for p in $("$BUSYBOX" --list-full); do
    [ -e "$r/$p" ] || [ -L "$r/$p" ] && continue
    up=$(echo "$p" | sed 's|[^/]*/|../|g; s|[^/]*$||')
    mkdir -p "$r/$(dirname "$p")"
    ln -s "${up}bin/busybox" "$r/$p"
  done

  # overlays: common, then the board's own (if any); modes do not depend on the checkout:
  # scripts (#!) 0755, other files 0644
  for p in "$TOP/overlays/common" "$BOARD_DIR/overlay"; do
    [ -d "$p" ] || continue
    cp -a "$p/." "$r/"
    (cd "$p" && find . -type f) | while read -r f; do
      if [ "$(head -c 2 "$r/$f")" = '#!' ]; then chmod 0755 "$r/$f"; else chmod 0644 "$r/$f"; fi
    done
  done
  cp "$WORK/release" "$r/etc/redfin/release"
  # bmcd.toml: this image's version and board, and the key update packages are signed with
  local version
  version=$(sed -n "s/^REDFIN_VERSION='\(.*\)'$/\1/p" "$WORK/release")
  sed -i -e "s|@COMPATIBLE@|redfin-$BOARD|" -e "s|@VERSION@|$version|" \
    -e "s|@TRUSTED_KEYS@|\"$UPDATE_PUBKEY\"|" "$r/etc/bmcd/bmcd.toml"
  ! grep -q '@[A-Z_]*@' "$r/etc/bmcd/bmcd.toml" || die "placeholders left in bmcd.toml"

  # bmcd, console-proxy and the shared libraries they load (libvirt's client library and its closure)
  install -m 0755 "$BMCD_BIN" "$r/usr/bin/bmcd"
  strip --strip-unneeded "$r/usr/bin/bmcd"
  BMCD_BYTES=$(size_of "$r/usr/bin/bmcd")
  install -m 0755 "$CONSOLE_PROXY_BIN" "$r/usr/bin/console-proxy"
  strip --strip-unneeded "$r/usr/bin/console-proxy"
  CONSOLE_PROXY_BYTES=$(size_of "$r/usr/bin/console-proxy")
  LIBS_BYTES=0 LIBS_COUNT=0
  while read -r name path; do
    [ -n "$path" ] || continue
    [ "$path" != "not" ] || die "bmcd needs $name, which ldd cannot find"
    real=$(readlink -f "$path")
    case "$name:$ICU_DATA" in
      libicudata.so.*:stub) icu_data_stub "$real" "$name" "$r/lib/$LIB_TRIPLET/$name" ;;
      *) install -m 0755 "$real" "$r/lib/$LIB_TRIPLET/$name" ;;
    esac
    strip --strip-unneeded "$r/lib/$LIB_TRIPLET/$name"
    LIBS_BYTES=$(( LIBS_BYTES + $(size_of "$r/lib/$LIB_TRIPLET/$name") )); LIBS_COUNT=$((LIBS_COUNT + 1))
  done < <(ldd "$BMCD_BIN" "$CONSOLE_PROXY_BIN" | awk '$2 == "=>" {print $1, $3}' | sort -u)
  interp=$(readelf -l "$BMCD_BIN" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
  [ -n "$interp" ] || die "$BMCD_BIN has no program interpreter"
  install -m 0755 "$(readlink -f "$interp")" "$r/lib/$LIB_TRIPLET/${interp##*/}"
  LIBS_BYTES=$(( LIBS_BYTES + $(size_of "$r/lib/$LIB_TRIPLET/${interp##*/}") )); LIBS_COUNT=$((LIBS_COUNT + 1))
  if [ "$interp" != "/lib/$LIB_TRIPLET/${interp##*/}" ]; then
    mkdir -p "$r$(dirname "$interp")"
    ln -sf "$(echo "${interp#/}" | sed 's|[^/]*/|../|g; s|[^/]*$||')lib/$LIB_TRIPLET/${interp##*/}" "$r$interp"
  fi

  # kernel modules, loaded by /etc/init.d/rcS in the order of /etc/redfin/modules
  cp "$KERNEL_DIR"/modules/*.ko "$r/lib/modules/$KVER/"
  cp "$KERNEL_DIR/modules.order" "$r/etc/redfin/modules"
  MODS_COUNT=$(wc -l <"$KERNEL_DIR/modules.order")
  MODS_BYTES=$(cat "$KERNEL_DIR"/modules/*.ko | wc -c)

  ROOTFS_BYTES=$(du -sb --apparent-size "$r" | cut -f1)
}

# icu_data_stub REAL SONAME OUT: replace ICU's data library (31 MB, the biggest file of the
# closure) by a stand-in that only defines its data symbol, marked invalid. libvirt links
# libxml2, which links ICU, but uses ICU only to convert XML documents in encodings that
# libxml2 lacks itself; libvirt's XML is UTF-8. With the stand-in, such a document fails to
# parse ("Unsupported encoding"), nothing else changes. ICU_DATA=full keeps the real library.
icu_data_stub() {
  local real=$1 soname=$2 out=$3 sym
  sym=$(nm -D --defined-only "$real" | awk '$3 ~ /^icudt[0-9]+_dat$/ {print $3; exit}')
  [ -n "$sym" ] || die "no icudt*_dat symbol in $real"
  printf 'const unsigned char %s[64] __attribute__((aligned(16))) = {0};\n' "$sym" >"$WORK/icu-stub.c"
  "${CC:-cc}" -shared -fPIC -nostdlib -Wl,-soname,"$soname" -o "$out" "$WORK/icu-stub.c" \
    || die "cannot build the ICU data stand-in (needs a C compiler; or ICU_DATA=full)"
  log "$soname: $(human "$(size_of "$real")") replaced by a stand-in (ICU_DATA=stub)"
}

# pack_initramfs DIR OUT: gzip-compressed newc cpio, owned by root, sorted, fixed file times
pack_initramfs() {
  local r=$1 out=$2
  find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  (cd "$r" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
     | cpio --null -o -H newc --quiet -R 0:0 --reproducible | gzip -9n) >"$out"
  log "initramfs: $(human "$ROOTFS_BYTES") unpacked, $(human "$(size_of "$out")") compressed"
}
