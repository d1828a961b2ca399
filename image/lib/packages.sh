# shellcheck shell=bash
# Debian packages for image/build.sh (sourced): fetched with `apt-get download` into
# $CACHE/debs/PKG/VERSION/ and reused from there, so a rebuild needs no network.

# fetch_deb PKG: print the path of PKG's .deb (candidate version; a cached one if apt
# knows no candidate, e.g. without package lists)
fetch_deb() {
  local pkg=$1 ver dir debs
  ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
  if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
    debs=("$CACHE"/debs/"$pkg"/*/*.deb)
    [ -e "${debs[0]}" ] || die "apt knows no package $pkg and none is cached (apt-get update?)"
    log "apt has no candidate for $pkg, using the cached ${debs[-1]##*/}"
    echo "${debs[-1]}"
    return
  fi
  dir=$CACHE/debs/$pkg/${ver//:/%3a}
  debs=("$dir"/*.deb)
  if [ ! -e "${debs[0]}" ]; then
    log "downloading $pkg $ver"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && timeout 600 apt-get -q -o APT::Sandbox::User=root download "$pkg=$ver" >&2) \
      || die "apt-get download $pkg=$ver failed"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    debs=("$dir"/*.deb)
  fi
  echo "${debs[0]}"
}

# fetch_kernel: the kernel image and the modules of board/BOARD/modules.txt with their
# dependencies, in load order. Sets KVER and KERNEL_DIR ($CACHE/kernel/PKG_VERSION/).
fetch_kernel() {
  local pkg deb stamp x kimg m
  pkg=${KERNEL_PKG:-}
  if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$pkg" ]; then
      # offline without package lists: the newest cached kernel package
      pkg=$(find "$CACHE/debs" -mindepth 1 -maxdepth 1 -name 'linux-image-[0-9]*' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
      [ -n "$pkg" ] || die "cannot resolve $KERNEL_META (apt-get update?)"
    fi
  fi
  deb=$(fetch_deb "$pkg")
  KERNEL_DIR=$CACHE/kernel/$(basename "$deb" .deb)
  stamp=$( { sha256sum "$deb" | cut -c1-64; grep -v '^[[:space:]]*\(#\|$\)' "$BOARD_DIR/modules.txt"; } | sha256sum | cut -c1-64)
  if [ "$(cat "$KERNEL_DIR/stamp" 2>/dev/null)" = "$stamp" ]; then
    KVER=$(cat "$KERNEL_DIR/kernel-version")
    log "kernel $KVER: cached in $KERNEL_DIR"
    return
  fi
  log "unpacking $(basename "$deb")"
  x=$WORK/kernel
  mkdir -p "$x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards './boot/vmlinuz-*' './lib/modules/*'
  kimg=$(find "$x/boot" -name 'vmlinuz-*' | head -n 1)
  KVER=${kimg##*/vmlinuz-}
  rm -rf "$KERNEL_DIR" && mkdir -p "$KERNEL_DIR/modules"
  resolve_modules "$x/lib/modules/$KVER" >"$KERNEL_DIR/modules.order"
  while read -r m; do
    cp "$x/lib/modules/$KVER/${MOD_PATH[$m]}" "$KERNEL_DIR/modules/$m.ko"
  done <"$KERNEL_DIR/modules.order"
  cp "$kimg" "$KERNEL_DIR/vmlinuz"
  echo "$KVER" >"$KERNEL_DIR/kernel-version"
  echo "$stamp" >"$KERNEL_DIR/stamp"
  rm -rf "$x"
  log "kernel $KVER: $(wc -l <"$KERNEL_DIR/modules.order") modules in load order"
}

# resolve_modules MODDIR: print the module names of modules.txt, each preceded by the
# modules it depends on (modinfo depends=), without duplicates; built-in ones are skipped.
declare -A MOD_PATH=() MOD_STATE=() MOD_BUILTIN=()
resolve_modules() {
  local moddir=$1 f n line
  while IFS= read -r f; do
    n=${f##*/}; n=${n%.ko}; n=${n//-/_}
    MOD_PATH[$n]=${f#"$moddir"/}
  done < <(find "$moddir/kernel" -name '*.ko')
  while IFS= read -r f; do
    n=${f##*/}; n=${n%.ko}; MOD_BUILTIN[${n//-/_}]=1
  done <"$moddir/modules.builtin"
  while read -r line; do
    line=${line%%#*}; line=${line//[[:space:]]/}
    [ -n "$line" ] && resolve_module "$line"
  done <"$BOARD_DIR/modules.txt"
}

resolve_module() {
  local n=${1//-/_} d deps
  case "${MOD_STATE[$n]:-}" in
    done) return ;;
    busy) die "module dependency cycle at $n" ;;
  esac
  if [ -n "${MOD_BUILTIN[$n]:-}" ]; then
    log "module $n is built into the kernel, skipped"
    MOD_STATE[$n]="done"
    return
  fi
  [ -n "${MOD_PATH[$n]:-}" ] || die "kernel module $n not found in the kernel package"
  MOD_STATE[$n]=busy
  deps=$(tr '\0' '\n' <"$moddir/${MOD_PATH[$n]}" | sed -n 's/^depends=//p' | head -n 1)
  for d in ${deps//,/ }; do resolve_module "$d"; done
  MOD_STATE[$n]="done"
  echo "$n"
}

# fetch_busybox: the static busybox of busybox-static. Sets BUSYBOX.
fetch_busybox() {
  local deb dir
  deb=$(fetch_deb busybox-static)
  dir=$CACHE/busybox/$(basename "$deb" .deb)
  if [ ! -x "$dir/busybox" ]; then
    rm -rf "$dir" && mkdir -p "$dir/x"
    dpkg-deb -x "$deb" "$dir/x"
    cp "$dir/x/bin/busybox" "$dir/busybox"
    rm -rf "$dir/x"
  fi
  BUSYBOX=$dir/busybox
  if readelf -l "$BUSYBOX" | grep -q 'Requesting program interpreter'; then
    die "$BUSYBOX is not statically linked"
  fi
}

# find_sfdisk: the build machine's sfdisk, else the one of Debian's fdisk package unpacked
# into the cache (it only needs libraries every Debian system has). Sets SFDISK.
find_sfdisk() {
  local deb dir
  if command -v sfdisk >/dev/null; then SFDISK=$(command -v sfdisk); return; fi
  deb=$(fetch_deb fdisk)
  dir=$CACHE/tools/$(basename "$deb" .deb)
  [ -x "$dir/sbin/sfdisk" ] || { rm -rf "$dir" && mkdir -p "$dir" && dpkg-deb -x "$deb" "$dir"; }
  SFDISK=$dir/sbin/sfdisk
  "$SFDISK" --version >/dev/null 2>&1 || die "$SFDISK does not run here: apt-get install fdisk"
  log "using $SFDISK (package fdisk is not installed)"
}
