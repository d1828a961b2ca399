#!/bin/bash
# Print a libvirt domain XML for the e2e test guest built by build-guest.sh.
#
# usage: tests/e2e/guest-domain.sh NAME CACHE_DIR SERIAL_LOG > dom.xml
#        virsh -c "$LIBVIRT_URI" define dom.xml && virsh -c "$LIBVIRT_URI" start NAME
#
# Default domain: type='qemu' (TCG), q35, 1 vCPU, 384 MiB, ACPI, direct kernel boot of
# CACHE_DIR/vmlinuz + CACHE_DIR/initrd.img, an empty SATA CD-ROM (target sdb), a user-mode
# (slirp) virtio NIC with a fixed MAC, serial pty + <log file=SERIAL_LOG append='off'/>
# (truncated at each QEMU start; reset/reboot append to it), console on that serial,
# VNC on 127.0.0.1 (autoport), on_poweroff=destroy, on_reboot=restart, on_crash=destroy.
# The guest prints "REDFIN-GUEST-BOOTED source=initrd" to SERIAL_LOG once it is up.
#
# Optional environment:
#   GUEST_BOOT=kernel|firmware  kernel (default): direct kernel boot;
#                               firmware: no <kernel>, firmware boots <boot dev=...> in GUEST_BOOT_ORDER
#   GUEST_BOOT_ORDER="hd cdrom" boot devices for GUEST_BOOT=firmware (libvirt names: hd cdrom network)
#   GUEST_FIRMWARE=bios|efi     bios (SeaBIOS, default) or efi (OVMF_CODE_4M.fd, non secure-boot;
#                               per-domain NVRAM created by libvirt from OVMF_VARS_4M.fd)
#   GUEST_CDROM=PATH            ISO inserted in the CD-ROM at start (default: empty drive)
#   GUEST_DISK=PATH             raw disk image attached as SATA disk sda (e.g. build-boot-disk.sh output)
#   GUEST_MEMORY_MIB=384        note: UEFI + GRUB (ISO/disk boot) needs >= 320 MiB
#   GUEST_MACHINE=q35|pc        (pc: CD-ROM/disk go on IDE: hdc / hda)
#   GUEST_MAC=52:54:00:xx:xx:xx default derived from NAME (stable)
#   GUEST_NIC=user|none         default user
#   GUEST_UUID=...              default: libvirt generates one
#   GUEST_CMDLINE_EXTRA=...     appended to the kernel command line (direct kernel boot only)
set -euo pipefail

NAME=${1:?usage: $0 NAME CACHE_DIR SERIAL_LOG}
CACHE_DIR=${2:?usage: $0 NAME CACHE_DIR SERIAL_LOG}
SERIAL_LOG=${3:?usage: $0 NAME CACHE_DIR SERIAL_LOG}
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
case "$SERIAL_LOG" in /*) ;; *) SERIAL_LOG="$(pwd)/$SERIAL_LOG" ;; esac

BOOT=${GUEST_BOOT:-kernel}
BOOT_ORDER=${GUEST_BOOT_ORDER:-hd cdrom}
FIRMWARE=${GUEST_FIRMWARE:-bios}
MEMORY=${GUEST_MEMORY_MIB:-384}
MACHINE=${GUEST_MACHINE:-q35}
NIC=${GUEST_NIC:-user}
if [ -z "${GUEST_MAC:-}" ]; then
  h=$(printf '%s' "$NAME" | md5sum)
  GUEST_MAC="52:54:00:${h:0:2}:${h:2:2}:${h:4:2}"
fi

die() { echo "guest-domain.sh: $*" >&2; exit 1; }
x() { # XML-escape
  local s=$1
  s=${s//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; s=${s//\'/&apos;}; s=${s//\"/&quot;}
  printf '%s' "$s"
}

case "$MACHINE" in
  q35) BUS=sata; CD_DEV=sdb; HD_DEV=sda ;;
  pc)  BUS=ide;  CD_DEV=hdc; HD_DEV=hda ;;
  *) die "GUEST_MACHINE must be q35 or pc" ;;
esac
if [ "$BOOT" = kernel ]; then
  if [ ! -s "$CACHE_DIR/vmlinuz" ] || [ ! -s "$CACHE_DIR/initrd.img" ]; then die "run build-guest.sh $CACHE_DIR first"; fi
fi

echo "<domain type='qemu'>"
echo "  <name>$(x "$NAME")</name>"
[ -n "${GUEST_UUID:-}" ] && echo "  <uuid>$(x "$GUEST_UUID")</uuid>"
echo "  <memory unit='MiB'>$MEMORY</memory>"
echo "  <vcpu>1</vcpu>"
echo "  <os>"
echo "    <type arch='x86_64' machine='$MACHINE'>hvm</type>"
case "$FIRMWARE" in
  bios) ;;
  efi)
    [ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || die "OVMF missing (apt-get install ovmf)"
    echo "    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
    echo "    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'/>" ;;
  *) die "GUEST_FIRMWARE must be bios or efi" ;;
esac
case "$BOOT" in
  kernel)
    echo "    <kernel>$(x "$CACHE_DIR/vmlinuz")</kernel>"
    echo "    <initrd>$(x "$CACHE_DIR/initrd.img")</initrd>"
    echo "    <cmdline>$(x "console=tty0 console=ttyS0,115200 quiet panic=1${GUEST_CMDLINE_EXTRA:+ $GUEST_CMDLINE_EXTRA}")</cmdline>" ;;
  firmware)
    for d in $BOOT_ORDER; do echo "    <boot dev='$(x "$d")'/>"; done
    echo "    <bootmenu enable='no'/>" ;;
  *) die "GUEST_BOOT must be kernel or firmware" ;;
esac
echo "  </os>"
cat <<XML
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
XML
if [ -n "${GUEST_DISK:-}" ]; then
  cat <<XML
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$(x "$(readlink -f "$GUEST_DISK")")'/>
      <target dev='$HD_DEV' bus='$BUS'/>
    </disk>
XML
fi
echo "    <disk type='file' device='cdrom'>"
echo "      <driver name='qemu' type='raw'/>"
[ -n "${GUEST_CDROM:-}" ] && echo "      <source file='$(x "$(readlink -f "$GUEST_CDROM")")'/>"
echo "      <target dev='$CD_DEV' bus='$BUS'/>"
echo "      <readonly/>"
echo "    </disk>"
case "$NIC" in
  user)
    cat <<XML
    <interface type='user'>
      <mac address='$(x "$GUEST_MAC")'/>
      <model type='virtio'/>
    </interface>
XML
    ;;
  none) ;;
  *) die "GUEST_NIC must be user or none" ;;
esac
cat <<XML
    <serial type='pty'>
      <log file='$(x "$SERIAL_LOG")' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video>
      <model type='vga'/>
    </video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
