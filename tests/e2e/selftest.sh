#!/bin/bash
# Self-test of the e2e tooling: builds the guest artefacts, starts a private libvirtd, and
# exercises a test domain (boot marker, serial console, destroy/start/reset/reboot/shutdown/
# inject-nmi, CD change-media, CD/disk boot under BIOS and UEFI). Prints timings.
#
# usage: tests/e2e/selftest.sh [WORK_DIR]     (default WORK_DIR: target/e2e-selftest)
#        SELFTEST_QUICK=1 tests/e2e/selftest.sh   skips the ISO/disk boot matrix
# Uses CACHE_DIR=${E2E_CACHE_DIR:-target/e2e-cache}. Stops everything it started on exit.
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
WORK=${1:-target/e2e-selftest}
CACHE=${E2E_CACHE_DIR:-target/e2e-cache}
mkdir -p "$WORK" "$CACHE"
WORK=$(cd "$WORK" && pwd); CACHE=$(cd "$CACHE" && pwd)
LV="$WORK/libvirt"
BOOT_TIMEOUT=${E2E_BOOT_TIMEOUT:-90}
FAILS=0

ms() { echo $(( $(date +%s%N) / 1000000 )); }
say() { echo "selftest: $*"; }
fail() { echo "selftest: FAIL: $*"; FAILS=$((FAILS+1)); }

cleanup() {
  set +e
  if [ -n "${URI:-}" ]; then
    for d in $(virsh -q -c "$URI" list --all --name 2>/dev/null); do
      virsh -q -c "$URI" destroy "$d" >/dev/null 2>&1
      virsh -q -c "$URI" undefine --nvram "$d" >/dev/null 2>&1
    done
  fi
  "$HERE/libvirtd.sh" stop "$LV" >/dev/null
}
trap cleanup EXIT
trap 'echo "selftest: ABORTED: command failed at line $LINENO"' ERR

V() { timeout 60 virsh -q -c "$URI" "$@"; }

count_marker() { grep -a -c "REDFIN-GUEST-BOOTED source=$2" "$1" 2>/dev/null || true; }

# wait_marker LOG SOURCE N : wait until the marker has been printed at least N times
wait_marker() {
  local end=$(( $(date +%s) + BOOT_TIMEOUT ))
  until [ "$(count_marker "$1" "$2")" -ge "$3" ]; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}

wait_state() { # wait_state DOM STATE SECONDS
  local end=$(( $(date +%s) + $3 ))
  until [ "$(V domstate "$1" 2>/dev/null)" = "$2" ]; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.2
  done
}

t=$(ms); "$HERE/build-guest.sh" "$CACHE" >/dev/null; say "build-guest: $(( $(ms) - t )) ms, initrd $(stat -c %s "$CACHE/initrd.img") bytes"
if [ -z "${SELFTEST_QUICK:-}" ]; then
  t=$(ms); ISO=$("$HERE/build-boot-iso.sh" "$CACHE"); say "build-boot-iso: $(( $(ms) - t )) ms, $(stat -c %s "$ISO") bytes"
  t=$(ms); DISK=$("$HERE/build-boot-disk.sh" "$CACHE"); say "build-boot-disk: $(( $(ms) - t )) ms, $(stat -c %s "$DISK") bytes"
fi

t=$(ms); OUT=$("$HERE/libvirtd.sh" start "$LV"); say "libvirtd start: $(( $(ms) - t )) ms"
[ "$(echo "$OUT" | wc -l)" = 1 ] || fail "libvirtd.sh start printed more than one line: $OUT"
URI=${OUT#LIBVIRT_URI=}
OUT2=$("$HERE/libvirtd.sh" start "$LV"); [ "$OUT2" = "$OUT" ] || fail "second start printed '$OUT2'"

# ---------------------------------------------------------------- direct kernel boot
DOM=redfin-selftest
LOG="$WORK/$DOM.serial.log"
"$HERE/guest-domain.sh" "$DOM" "$CACHE" "$LOG" > "$WORK/$DOM.xml"
V define "$WORK/$DOM.xml" >/dev/null
t=$(ms); V start "$DOM" >/dev/null
if wait_marker "$LOG" initrd 1; then say "start -> marker: $(( $(ms) - t )) ms"; else fail "no boot marker"; fi
[ "$(V domstate "$DOM")" = running ] || fail "domstate after start: $(V domstate "$DOM")"
V vncdisplay "$DOM" | grep '^127.0.0.1:' >/dev/null || fail "vncdisplay"

# serial console: type a command, read its output
TOKEN="hello-$RANDOM"
( sleep 1; printf '\r'; sleep 0.5; printf 'echo %s""%s\r' "${TOKEN%%-*}" "-${TOKEN#*-}"; sleep 2; printf '\035' ) \
  | timeout 20 script -qfc "virsh -q -c '$URI' console $DOM --force" /dev/null > "$WORK/console.out" 2>&1 || true
if tr -d '\r' < "$WORK/console.out" | grep -x "$TOKEN" >/dev/null; then say "console: ok"; else fail "console did not echo $TOKEN"; fi

# reset: same QEMU process, log is appended
t=$(ms); V reset "$DOM" >/dev/null
if wait_marker "$LOG" initrd 2; then say "reset -> marker: $(( $(ms) - t )) ms"; else fail "no marker after reset"; fi

# reboot (ACPI power button + libvirt fake reboot)
t=$(ms); V reboot "$DOM" >/dev/null
if wait_marker "$LOG" initrd 3; then say "reboot -> marker: $(( $(ms) - t )) ms"; else fail "no marker after reboot"; fi
[ "$(V domstate "$DOM")" = running ] || fail "domstate after reboot: $(V domstate "$DOM")"

# inject-nmi: guest kernel logs it and keeps running
V inject-nmi "$DOM" >/dev/null
sleep 2
if grep -aq 'NMI received' "$LOG"; then say "inject-nmi: ok"; else fail "no NMI message in serial log"; fi
[ "$(V domstate "$DOM")" = running ] || fail "domstate after nmi: $(V domstate "$DOM")"

# CD-ROM hot change-media
if [ -n "${ISO:-}" ]; then
  V change-media "$DOM" sdb "$ISO" --insert --live >/dev/null || fail "change-media insert"
  V domblklist "$DOM" | grep "sdb *$ISO" >/dev/null || fail "ISO not shown in domblklist"
  V change-media "$DOM" sdb --eject --live >/dev/null || fail "change-media eject"
  V domblklist "$DOM" | grep "sdb *-" >/dev/null || fail "CD not empty after eject"
  say "change-media: done"
fi

# ACPI shutdown
t=$(ms); V shutdown "$DOM" >/dev/null
if wait_state "$DOM" "shut off" 30; then say "shutdown -> shut off: $(( $(ms) - t )) ms"; else fail "shutdown: still $(V domstate "$DOM")"; fi

# start again, destroy
t=$(ms); V start "$DOM" >/dev/null
if wait_marker "$LOG" initrd 1; then say "start (2) -> marker: $(( $(ms) - t )) ms"; else fail "no marker after 2nd start"; fi
V destroy "$DOM" >/dev/null
[ "$(V domstate "$DOM")" = "shut off" ] || fail "domstate after destroy: $(V domstate "$DOM")"
V undefine "$DOM" >/dev/null

# ---------------------------------------------------------------- firmware boot matrix
if [ -z "${SELFTEST_QUICK:-}" ]; then
  for fw in bios efi; do
    for src in cdrom disk; do
      d="redfin-selftest-$src-$fw"; l="$WORK/$d.serial.log"
      if [ $src = cdrom ]; then
        GUEST_BOOT=firmware GUEST_BOOT_ORDER="cdrom hd" GUEST_FIRMWARE=$fw GUEST_CDROM="$ISO" \
          "$HERE/guest-domain.sh" "$d" "$CACHE" "$l" > "$WORK/$d.xml"
      else
        cp --sparse=always "$DISK" "$WORK/$d.img"
        GUEST_BOOT=firmware GUEST_BOOT_ORDER="hd" GUEST_FIRMWARE=$fw GUEST_DISK="$WORK/$d.img" \
          "$HERE/guest-domain.sh" "$d" "$CACHE" "$l" > "$WORK/$d.xml"
      fi
      V define "$WORK/$d.xml" >/dev/null
      t=$(ms); V start "$d" >/dev/null
      if wait_marker "$l" $src 1; then
        say "$src boot ($fw): marker after $(( $(ms) - t )) ms"
        grep -aq "REDFIN-GUEST-INFO firmware=$fw" "$l" || fail "$src boot ($fw): guest reports other firmware"
      else
        fail "$src boot ($fw): no marker"
      fi
      V destroy "$d" >/dev/null; V undefine --nvram "$d" >/dev/null
      rm -f "$WORK/$d.img"
    done
  done
fi

t=$(ms); "$HERE/libvirtd.sh" stop "$LV"; say "libvirtd stop: $(( $(ms) - t )) ms"
URI=
if [ $FAILS = 0 ]; then say "ALL OK"; else say "$FAILS FAILURE(S)"; exit 1; fi
