#!/usr/bin/env bash
# Install the Debian 12 packages Redfin needs to build, run and test.
# Idempotent: installs only what is missing. Run as root (or with sudo available).
#
# Trap handled here: a fresh machine of this kind carries qemu-utils from
# bookworm-backports, but qemu-system-x86 needs the qemu-utils of bookworm
# itself, so the matching version is pinned with --allow-downgrades.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PKGS=(
  pkg-config libvirt-dev                         # build: virt-sys (SQLite is compiled in)
  libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu  # libvirt test driver + real libvirtd
  qemu-system-x86 ovmf busybox-static            # tiny TCG guests, UEFI firmware
  wrk curl openssl cpio xorriso fdisk            # benchmarks, tests, image (sfdisk)
  grub-common grub-pc-bin grub-efi-amd64-bin mtools dosfstools  # bootable test ISO and disk
  novnc chromium                                 # console test: noVNC in headless Chromium
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
extra=()
if printf '%s\n' "${missing[@]}" | grep -qx qemu-system-x86; then
  # Pin qemu-utils to the bookworm version that qemu-system-x86 depends on.
  want=$(apt-cache show qemu-system-x86 | awk '/^Version:/{print $2; exit}')
  have=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
  if [ -n "$want" ] && [ "$have" != "$want" ]; then
    extra=(--allow-downgrades "qemu-utils=$want")
  fi
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" "${extra[@]}"
echo "install-deps: done"
