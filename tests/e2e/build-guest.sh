#!/bin/bash
# Build the tiny Redfin e2e test guest: a Debian kernel + busybox initramfs.
#
# usage: tests/e2e/build-guest.sh CACHE_DIR
#
# Produces in CACHE_DIR:
#   vmlinuz      Debian linux-image-amd64 kernel (apt-get download + dpkg-deb, nothing installed)
#   initrd.img   gzip newc cpio: static busybox + a few kernel modules + /init
#   modules/     the handful of .ko files taken from the kernel package
#   kernel-version
#
# The guest /init:
#   * prints "REDFIN-GUEST-BOOTED source=<src>" on the console (ttyS0) once it is ready to
#     handle ACPI power-button events; <src> is "initrd" unless the kernel command line
#     contains redfin.source=<src> (the ISO / disk boot loaders pass cdrom / disk);
#   * then "REDFIN-GUEST-INFO firmware=<bios|efi> serial=<SMBIOS system serial|none> uptime=<s>";
#   * on an ACPI power-button press (virsh shutdown / virsh reboot) prints
#     "REDFIN-GUEST-POWEROFF" and powers off immediately (busybox acpid, button.ko + evdev.ko);
#   * runs an interactive root shell on the console (respawned if it exits).
#
# Idempotent: the kernel is only downloaded if missing; the initrd is only rebuilt when this
# script or the kernel changed (stamp file). Concurrent runs on the same CACHE_DIR serialise on
# a flock. Env: KERNEL_PKG=linux-image-6.1.0-XX-amd64 to pin the kernel package.
set -euo pipefail

CACHE_DIR=${1:?usage: $0 CACHE_DIR}
mkdir -p "$CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
SELF=$(readlink -f "${BASH_SOURCE[0]}")
BUSYBOX=${BUSYBOX:-/bin/busybox}

# module file (relative to lib/modules/<ver>/kernel) in load order.
# Gotcha: virtio_ring must be loaded before virtio.
MODULES=(
  drivers/acpi/button.ko
  drivers/input/evdev.ko
  drivers/virtio/virtio_ring.ko
  drivers/virtio/virtio.ko
  drivers/virtio/virtio_pci_modern_dev.ko
  drivers/virtio/virtio_pci_legacy_dev.ko
  drivers/virtio/virtio_pci.ko
  net/core/failover.ko
  drivers/net/net_failover.ko
  drivers/net/virtio_net.ko
)

log() { echo "build-guest: $*" >&2; }

exec 9>"$CACHE_DIR/.build-guest.lock"
if ! flock -w 600 9; then log "timeout waiting for lock $CACHE_DIR/.build-guest.lock"; exit 1; fi

# ---------------------------------------------------------------- kernel
have_kernel() {
  [ -s "$CACHE_DIR/vmlinuz" ] && [ -s "$CACHE_DIR/kernel-version" ] || return 1
  local m
  for m in "${MODULES[@]}"; do [ -s "$CACHE_DIR/modules/$(basename "$m")" ] || return 1; done
}

fetch_kernel() {
  local dl pkg deb kver tmp m
  local -a debs kimgs
  dl="$CACHE_DIR/dl"
  rm -rf "$dl"; mkdir -p "$dl"
  pkg=${KERNEL_PKG:-}
  if [ -z "$pkg" ]; then
    # resolve the meta package to the real image package (linux-image-6.1.0-NN-amd64)
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !p {print $2; p=1}')
    [ -n "$pkg" ] || { log "cannot resolve linux-image-amd64 (run apt-get update?)"; exit 1; }
  fi
  log "downloading $pkg"
  (cd "$dl" && timeout 600 apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2)
  debs=("$dl"/*.deb); deb=${debs[0]}
  tmp="$dl/x"; mkdir -p "$tmp"
  # extract only what we need (the full package is ~400 MB unpacked)
  local -a pats=('./boot/vmlinuz-*')
  for m in "${MODULES[@]}"; do pats+=("./lib/modules/*/kernel/$m"); done
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards "${pats[@]}"
  kimgs=("$tmp"/boot/vmlinuz-*); kver=$(basename "${kimgs[0]}"); kver=${kver#vmlinuz-}
  rm -rf "$CACHE_DIR/modules.new"; mkdir -p "$CACHE_DIR/modules.new"
  for m in "${MODULES[@]}"; do cp "$tmp/lib/modules/$kver/kernel/$m" "$CACHE_DIR/modules.new/"; done
  rm -rf "$CACHE_DIR/modules"; mv "$CACHE_DIR/modules.new" "$CACHE_DIR/modules"
  cp "$tmp/boot/vmlinuz-$kver" "$CACHE_DIR/vmlinuz.new" && mv "$CACHE_DIR/vmlinuz.new" "$CACHE_DIR/vmlinuz"
  echo "$kver" > "$CACHE_DIR/kernel-version"
  rm -rf "$dl"
  log "kernel $kver ready"
}

have_kernel || fetch_kernel

# ---------------------------------------------------------------- initrd
[ -x "$BUSYBOX" ] || { log "$BUSYBOX missing (apt-get install busybox-static)"; exit 1; }
case " $("$BUSYBOX" --list | tr "\n" " ") " in *" acpid "*) ;; *) log "$BUSYBOX has no acpid applet"; exit 1 ;; esac
if ldd "$BUSYBOX" >/dev/null 2>&1; then log "$BUSYBOX is not static (install busybox-static)"; exit 1; fi

STAMP=$( { sha256sum "$SELF" "$BUSYBOX" | cut -d' ' -f1; cat "$CACHE_DIR/kernel-version"; } | sha256sum | cut -d' ' -f1)
if [ -s "$CACHE_DIR/initrd.img" ] && [ "$(cat "$CACHE_DIR/initrd.stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "up to date: $CACHE_DIR/vmlinuz $CACHE_DIR/initrd.img"
  exit 0
fi

R=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc/acpi/PWRF,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
for m in "${MODULES[@]}"; do cp "$CACHE_DIR/modules/$(basename "$m")" "$R/lib/modules/"; done
MODNAMES=$(for m in "${MODULES[@]}"; do b=$(basename "$m"); printf '%s ' "${b%.ko}"; done)

echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"

# busybox acpid runs /etc/acpi/<ACTION>/<PARAM> for a power-button press: PWRF/00000080
cat > "$R/etc/acpi/PWRF/00000080" <<'ACPI'
#!/bin/sh
echo "REDFIN-GUEST-POWEROFF" > /dev/console
sync
poweroff -f
ACPI
chmod 755 "$R/etc/acpi/PWRF/00000080"

cat > "$R/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
SOURCE=initrd
for w in \$(cat /proc/cmdline); do
  case "\$w" in redfin.source=*) SOURCE="\${w#redfin.source=}" ;; esac
done
for m in $MODNAMES; do
  insmod /lib/modules/\$m.ko 2>/dev/null || echo "redfin-init: insmod \$m failed"
done
hostname redfin-guest
ip link set lo up 2>/dev/null
# slirp (libvirt <interface type='user'>) defaults; harmless if there is no NIC
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
fi 2>/dev/null
acpid -c /etc/acpi -l /tmp/acpid.log
# make sure acpid watches the power button before announcing that we are up
i=0
while [ \$i -lt 50 ]; do
  p=\$(pidof acpid) && ls -l /proc/\$p/fd 2>/dev/null | grep -q /dev/input/event && break
  sleep 0.1; i=\$((i+1))
done
[ \$i -lt 50 ] || echo "redfin-init: WARNING acpid is not watching any input device"
FW=bios; [ -d /sys/firmware/efi ] && FW=efi
echo "REDFIN-GUEST-BOOTED source=\$SOURCE"
SERIAL=\$(cat /sys/class/dmi/id/product_serial 2>/dev/null | tr -c 'A-Za-z0-9._-' '_' | cut -c1-64)
echo "REDFIN-GUEST-INFO firmware=\$FW serial=\${SERIAL:-none} uptime=\$(cut -d' ' -f1 /proc/uptime)"
while true; do
  setsid cttyhack sh -l
  sleep 1
done
INIT
chmod 755 "$R/init"
cat > "$R/etc/profile" <<'PROFILE'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root PS1='redfin-guest# '
PROFILE

(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0 | gzip -9n) > "$CACHE_DIR/initrd.img.new"
mv "$CACHE_DIR/initrd.img.new" "$CACHE_DIR/initrd.img"
echo "$STAMP" > "$CACHE_DIR/initrd.stamp"
log "built $CACHE_DIR/initrd.img ($(stat -c %s "$CACHE_DIR/initrd.img") bytes), kernel $(cat "$CACHE_DIR/kernel-version")"
