#!/bin/bash
# Boot the Redfin image under QEMU (TCG) and test it from outside, as a user would.
#
# usage: qemu-tests/run.sh [IMAGE_DIR] [kernel|disk|banks|all]  (default: all)
#   IMAGE_DIR  output of image/build.sh (default target/image)
#
# kernel  direct kernel boot of vmlinuz + initramfs.cpio.gz (static address redfin.ip=, no
#         disk, so bmcd's state is in RAM): readiness marker, GET /redfish/v1 = 200, the admin
#         password printed on the console works on /redfish/v1/Systems, a wrong one does not;
#         then the DMTF Service Validator runs against the booted image (0 failures).
# disk    UEFI boot (OVMF) of a copy of redfin.img as a virtio disk, with a VGA device like a
#         libvirt domain (DHCP, data partition): the same checks;
#         then a hard reset (QEMU monitor system_reset): the state survived (no new password,
#         the first one still works, same TLS certificate); then an ACPI power-button press:
#         bmcd and the data partition are stopped cleanly and the VM powers off.
# banks   UEFI boot of a copy of redfin.img whose grubenv names bank B, with bank B's file
#         system wiped: GRUB reports it and boots bank A, which answers.
# update  firmware update through Redfish on a copy of redfin.img (UEFI): a signed package
#         whose kernel GRUB cannot load is uploaded (multipart, curl -F), written to bank B
#         and tried once after a reset: GRUB falls back to bank A, and FirmwareInventory
#         reports bank B as failed (rollback). Then the image's own update.tar is uploaded:
#         after a reset bank B boots, bmcd marks it good, and a further reset boots bank B
#         again without a try. Last, a package whose bmcd refuses its configuration (and
#         whose trial watchdog waits 20 s) goes to bank A: its trial boot is rebooted by the
#         watchdog, the BMC comes back on bank B and reports bank A as failed.
# Prints the time from QEMU start (or reset) to the first Redfish 200 of every boot.
#
# Logs (serial console, QEMU, last responses) stay in target/qemu-tests/<test>/, with the
# disk copy if the test failed. QEMU is always killed. Exit status 0 only if every check passed.
#
# Environment: UPDATE_KEY (the key image/build.sh signed update.tar with; default
# target/image-keys/dev-update-key.pem), BOOT_TIMEOUT=120 (s per boot), MEM_KERNEL=256, MEM_DISK=512 (MiB; UEFI needs
# >= 320), QEMU=qemu-system-x86_64, NIC=virtio-net-pci (or e1000), QEMU_EXTRA (more QEMU
# arguments, split on spaces, e.g. "-machine q35"), OVMF_CODE / OVMF_VARS (firmware files),
# QEMU_TESTS_DIR=target/qemu-tests.
set -euo pipefail

TOP=$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")
IMAGE_DIR=${1:-$TOP/target/image}
WHICH=${2:-all}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
MEM_KERNEL=${MEM_KERNEL:-256}
MEM_DISK=${MEM_DISK:-512}
QEMU=${QEMU:-qemu-system-x86_64}
NIC=${NIC:-virtio-net-pci}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
LOG_ROOT=${QEMU_TESTS_DIR:-$TOP/target/qemu-tests}

say() { echo "qemu-tests: $*"; }

case "$WHICH" in kernel|disk|banks|update|all) ;; *) echo "usage: $0 [IMAGE_DIR] [kernel|disk|banks|update|all]" >&2; exit 2 ;; esac
for t in "$QEMU" curl openssl ss grub-editenv mcopy mkfs.ext4 tar; do
  command -v "$t" >/dev/null || { say "missing $t"; exit 1; }
done
for f in vmlinuz initramfs.cpio.gz cmdline.txt redfin.img; do
  [ -s "$IMAGE_DIR/$f" ] || { say "$IMAGE_DIR/$f missing: run image/build.sh $IMAGE_DIR"; exit 1; }
done
if [ "$WHICH" != kernel ]; then
  for f in "$OVMF_CODE" "$OVMF_VARS"; do [ -s "$f" ] || { say "missing $f (apt-get install ovmf)"; exit 1; }; done
fi
CMDLINE=$(cat "$IMAGE_DIR/cmdline.txt")
BOARD=$(sed -n "s/^BOARD='\(.*\)'$/\1/p" "$IMAGE_DIR/release")
PARTITIONS=$TOP/board/${BOARD:-qemu-x86_64}/partitions.txt

# ------------------------------------------------------------------ helpers
QPID=
cleanup() {
  if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; QPID=; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TEST='' LOG_DIR='' SERIAL='' T0=$(date +%s.%N)
fail() {
  say "FAIL [$TEST] after $(elapsed "$T0") s: $*"
  if [ -n "$SERIAL" ] && [ -f "$SERIAL" ]; then
    echo "----- last lines of $SERIAL"
    tail -n 40 "$SERIAL" | tr -d '\r'
  fi
  if [ -s "$LOG_DIR/qemu.log" ]; then
    echo "----- $LOG_DIR/qemu.log"
    tail -n 20 "$LOG_DIR/qemu.log"
  fi
  echo "-----"
  say "logs kept in $LOG_DIR"
  exit 1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# free_port: a random TCP port on 127.0.0.1 that nothing listens on
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))  # below the usual ephemeral range (32768-60999)
    [ -z "$(ss -Hltn "sport = :$p")" ] && { echo "$p"; return; }
  done
}

# start_qemu MEM ARGS...: start QEMU in the background (serial -> $SERIAL, monitor on TCP)
start_qemu() {
  local mem=$1; shift
  HTTPS_PORT=$(free_port)
  MON_PORT=$(free_port)
  [ "$MON_PORT" != "$HTTPS_PORT" ] || MON_PORT=$(free_port)
  WS_PORT=$(free_port)
  while [ "$WS_PORT" = "$HTTPS_PORT" ] || [ "$WS_PORT" = "$MON_PORT" ]; do WS_PORT=$(free_port); done
  URL=https://127.0.0.1:$HTTPS_PORT
  : >"$SERIAL"
  # shellcheck disable=SC2086  # QEMU_EXTRA is split on purpose
  "$QEMU" -accel tcg -smp 1 -m "$mem" -display none -nodefaults \
    -serial "file:$SERIAL" -monitor "tcp:127.0.0.1:$MON_PORT,server=on,wait=off" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$HTTPS_PORT-:443,hostfwd=tcp:127.0.0.1:$WS_PORT-:6080" \
    -device "$NIC,netdev=n0,romfile=" \
    "$@" ${QEMU_EXTRA:-} >"$LOG_DIR/qemu.log" 2>&1 &
  QPID=$!
  T0=$(now)
}

# check_console_proxy: console-proxy runs as user 'console' (uid/gid 101, as the kernel
# reports it), listens on 6080, and redeems tokens over bmcd's socket: a well-formed token
# bmcd never minted is refused by bmcd (close 1008 with bmcd's reason), not 1011 (no socket).
check_console_proxy() {
  local line close
  for _ in $(seq 1 100); do
    grep -aq 'redfin: console-proxy pid [0-9]* Uid: 101 101 101 101 Gid: 101 101 101 101' "$SERIAL" && break
    sleep 0.1
  done
  line=$(grep -a 'redfin: console-proxy pid' "$SERIAL" | tail -n 1 | tr -d '\r')
  grep -aq 'redfin: console-proxy pid [0-9]* Uid: 101 101 101 101 Gid: 101 101 101 101' "$SERIAL" \
    || fail "console-proxy does not run as user console (101): ${line:-no line}"
  close=$(python3 - "$WS_PORT" <<'PY'
import base64, os, socket, sys
port = int(sys.argv[1])
token = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
s = socket.create_connection(("127.0.0.1", port), timeout=20)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /consoles/00000000-0000-4000-8000-000000000001/serial?token={token} HTTP/1.1\r\n"
           f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
data = b""
while b"\r\n\r\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
if not head.startswith(b"HTTP/1.1 101"):
    print("no-upgrade " + head.split(b"\r\n")[0].decode(errors="replace"))
    sys.exit(0)
while len(rest) < 4:
    chunk = s.recv(4096)
    if not chunk:
        break
    rest += chunk
if len(rest) >= 4 and rest[0] & 0x0F == 8:
    n = rest[1] & 0x7F
    while len(rest) < 2 + n:
        chunk = s.recv(4096)
        if not chunk:
            break
        rest += chunk
    code = int.from_bytes(rest[2:4], "big")
    print(f"{code} {rest[4:2 + n].decode(errors='replace')}")
else:
    print("no-close-frame")
PY
)
  case "$close" in
    1008\ *) ;;
    *) fail "console-proxy on 6080: want close 1008 for an unknown token, got: $close" ;;
  esac
  CONSOLE_PROXY_RESULT="console-proxy as uid/gid 101, unknown token closed with '$close'"
}

# monitor CMD: one QEMU human monitor command (returns once the monitor has echoed it)
monitor() {
  local line
  exec 5<>"/dev/tcp/127.0.0.1/$MON_PORT" || fail "cannot reach the QEMU monitor"
  printf '%s\n' "$1" >&5
  while IFS= read -r -t 5 line <&5; do
    case "$line" in *"$1"*) break ;; esac
  done
  exec 5>&-
}

# wait_boot N: wait (bounded) for the N-th readiness marker on the console, then for the
# first HTTP 200 on /redfish/v1; sets BOOT_S (seconds since T0) and GUEST_UPTIME
wait_boot() {
  local n=$1 code
  while [ "$(grep -ac 'REDFIN-READY ' "$SERIAL" || true)" -lt "$n" ]; do
    kill -0 "$QPID" 2>/dev/null || fail "QEMU exited before the readiness marker (see $LOG_DIR/qemu.log)"
    grep -aq 'Kernel panic' "$SERIAL" && fail "kernel panic"
    awk -v a="$T0" -v b="$(now)" -v t="$BOOT_TIMEOUT" 'BEGIN { exit !(b - a > t) }' \
      && fail "no readiness marker (REDFIN-READY) within $BOOT_TIMEOUT s"
    sleep 0.1
  done
  for _ in $(seq 1 50); do
    code=$(curl -sk --connect-timeout 2 --max-time 5 -o "$LOG_DIR/root.json" -w '%{http_code}' "$URL/redfish/v1" || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  [ "$code" = 200 ] || fail "GET /redfish/v1 after the readiness marker: HTTP $code"
  BOOT_S=$(elapsed "$T0")
  GUEST_UPTIME=$(grep -a 'REDFIN-READY ' "$SERIAL" | sed -n "${n}s/.*uptime=\([0-9.]*\)s.*/\1/p" | tr -d '\r')
}

# http_code USER:PASS PATH: the status of an authenticated GET
http_code() {
  curl -sk --max-time 10 -u "$1" -o "$LOG_DIR/last.json" -w '%{http_code}' "$URL$2" || true
}

# admin_password: the password line(s) bmcd printed on the console
password_lines() { grep -a "bmcd: created account 'admin' with password" "$SERIAL" | tr -d '\r' || true; }

check_service() {
  local pw=$1 code
  grep -q '"@odata.id":"/redfish/v1"' "$LOG_DIR/root.json" || fail "/redfish/v1 is not a Redfish service root"
  code=$(http_code "admin:$pw" /redfish/v1/Systems)
  [ "$code" = 200 ] || fail "GET /redfish/v1/Systems as admin with the printed password: HTTP $code"
  grep -q '"Members"' "$LOG_DIR/last.json" || fail "/redfish/v1/Systems has no Members"
  code=$(http_code "admin:not-the-password" /redfish/v1/Systems)
  [ "$code" = 401 ] || fail "GET /redfish/v1/Systems with a wrong password: HTTP $code (want 401)"
}

# check_console [ALLOWED_REGEX]: no error-looking lines from the image's scripts on the console
check_console() {
  local bad
  bad=$(grep -aE 'redfin: .*(WARNING|failed|cannot)|invalid option|Usage:|: not found|No such file|Segmentation fault|Kernel panic|bmcd exited' "$SERIAL" \
        | grep -avE "${1:-^\$}" || true)
  [ -z "$bad" ] || fail "unexpected console output: $bad"
}

cert_fingerprint() {
  timeout 20 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" </dev/null 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}

begin_test() {
  TEST=$1
  LOG_DIR=$LOG_ROOT/$TEST
  rm -rf "$LOG_DIR" && mkdir -p "$LOG_DIR"
  SERIAL=$LOG_DIR/serial.log
  say "[$TEST] $2"
}

RESULTS=()

# ------------------------------------------------------------------ kernel + initramfs
# validate_service PASSWORD: the DMTF Redfish Service Validator against the booted image,
# through the host forward; 0 failures required. Its reports stay in $LOG_DIR/validator.
HARNESS=${REDFIN_CONFORMANCE:-$TOP/../shared/redfish-conformance}
validate_service() {
  local pw=$1 t0 line
  [ -x "$HARNESS/bin/validate.sh" ] || fail "no DMTF conformance harness at $HARNESS (set REDFIN_CONFORMANCE)"
  t0=$(now)
  OUT_DIR=$LOG_DIR/validator TOOLS=service TOOL_TIMEOUT=900 \
    "$HARNESS/bin/validate.sh" "$URL" admin "$pw" > "$LOG_DIR/validator.log" 2>&1 \
    || fail "Service Validator against the booted image: $(grep service-validator "$LOG_DIR/validator.log"; head -20 "$LOG_DIR"/validator/*/failures.txt 2>/dev/null)"
  line=$(grep -o 'PASS=[0-9]* WARN=[0-9]* FAIL=[0-9]*' "$LOG_DIR/validator.log" | head -1)
  VALIDATOR="$line in $(elapsed "$t0") s"
  say "[$TEST] Service Validator: $VALIDATOR"
}

test_kernel() {
  local pw
  begin_test kernel "direct kernel boot, ${MEM_KERNEL} MiB, 1 vCPU, TCG"
  start_qemu "$MEM_KERNEL" -no-reboot \
    -kernel "$IMAGE_DIR/vmlinuz" -initrd "$IMAGE_DIR/initramfs.cpio.gz" \
    -append "$CMDLINE redfin.ip=10.0.2.15/24,10.0.2.2 redfin.hostname=redfin-qemu-test"
  wait_boot 1
  say "[$TEST] first Redfish 200 after $BOOT_S s (REDFIN-READY at guest uptime ${GUEST_UPTIME:-?} s)"
  [ "$(password_lines | wc -l)" = 1 ] || fail "want exactly one admin password line on the console"
  pw=$(password_lines | sed -n "s/.*with password '\([^']*\)'.*/\1/p")
  check_service "$pw"
  grep -aq 'network eth0: 10.0.2.15/24 via 10.0.2.2 (static)' "$SERIAL" || fail "static address from redfin.ip= not reported"
  grep -aq 'WARNING: no data partition' "$SERIAL" || fail "no warning about the missing data partition"
  check_console 'WARNING: no data partition'
  check_console_proxy
  say "[$TEST] $CONSOLE_PROXY_RESULT"
  validate_service "$pw"
  cleanup
  RESULTS+=("kernel+initramfs (direct kernel boot): first Redfish 200 after $BOOT_S s; $CONSOLE_PROXY_RESULT; DMTF Service Validator on the booted image: $VALIDATOR")
  say "[$TEST] PASS"
}

# ------------------------------------------------------------------ UEFI disk
test_disk() {
  local pw fp1 fp2
  begin_test disk "UEFI (OVMF) boot of redfin.img, ${MEM_DISK} MiB, 1 vCPU, TCG"
  cp --sparse=always "$IMAGE_DIR/redfin.img" "$LOG_DIR/redfin.img"
  cp "$OVMF_VARS" "$LOG_DIR/OVMF_VARS.fd"
  start_qemu "$MEM_DISK" \
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
    -drive "if=pflash,format=raw,unit=1,file=$LOG_DIR/OVMF_VARS.fd" \
    -drive "file=$LOG_DIR/redfin.img,format=raw,if=virtio" -device VGA
  wait_boot 1
  local first=$BOOT_S
  say "[$TEST] boot 1: first Redfish 200 after $BOOT_S s (REDFIN-READY at guest uptime ${GUEST_UPTIME:-?} s)"
  grep -aq 'data partition /dev/vda4 (redfin-data) mounted on /data' "$SERIAL" || fail "data partition not mounted"
  grep -aq 'network eth0: 10.0.2.15/24 via 10.0.2.2 (DHCP)' "$SERIAL" || fail "no DHCP lease reported"
  [ "$(password_lines | wc -l)" = 1 ] || fail "want exactly one admin password line on the console"
  pw=$(password_lines | sed -n "s/.*with password '\([^']*\)'.*/\1/p")
  check_service "$pw"
  fp1=$(cert_fingerprint)
  [ -n "$fp1" ] || fail "no TLS certificate"

  say "[$TEST] hard reset (monitor system_reset)"
  monitor system_reset
  T0=$(now)
  wait_boot 2
  local second=$BOOT_S
  say "[$TEST] boot 2: first Redfish 200 after $BOOT_S s (REDFIN-READY at guest uptime ${GUEST_UPTIME:-?} s)"
  [ "$(password_lines | wc -l)" = 1 ] || fail "bmcd created the admin account again: the state did not survive the reset"
  check_service "$pw"
  check_console
  fp2=$(cert_fingerprint)
  [ "$fp2" = "$fp1" ] || fail "the TLS certificate changed across the reset ($fp1 -> $fp2)"

  say "[$TEST] ACPI power button (monitor system_powerdown)"
  monitor system_powerdown
  # bounded, not a sleep: bmcd gets up to shutdown-grace-s (10 s) and rcK 15 s, and a
  # loaded host (other builds on the same 2 cores) makes a TCG guest several times slower
  local t_off
  t_off=$(now)
  for _ in $(seq 1 900); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$QPID" 2>/dev/null && fail "the VM did not power off within 90 s of the power button"
  say "[$TEST] powered off $(elapsed "$t_off") s after the power button"
  wait "$QPID" 2>/dev/null || true
  QPID=
  grep -aq 'redfin: bmcd stopped' "$SERIAL" || fail "bmcd was not stopped cleanly at power-off"
  grep -aq 'redfin: stopped' "$SERIAL" || fail "the shutdown script did not finish"
  rm -f "$LOG_DIR/redfin.img" "$LOG_DIR/OVMF_VARS.fd"
  RESULTS+=("UEFI disk (OVMF + GRUB): first Redfish 200 after $first s; after a reset $second s")
  say "[$TEST] PASS"
}

# ------------------------------------------------------------------ A/B banks
# part_offset NAME: start (MiB) of partition NAME of redfin.img, from the board's layout
part_offset() {
  awk -v want="$1" '!/^[[:space:]]*(#|$)/ { if ($1 == want) { print start; found = 1; exit } start += $2 }
                    BEGIN { start = 1 } END { exit !found }' "$PARTITIONS"
}

test_banks() {
  local esp bank_b
  begin_test banks "UEFI boot with grubenv naming bank B and bank B broken: GRUB must boot bank A"
  esp=$(part_offset esp) || fail "no partition esp in $PARTITIONS"
  bank_b=$(part_offset root-b) || fail "no partition root-b in $PARTITIONS"
  cp --sparse=always "$IMAGE_DIR/redfin.img" "$LOG_DIR/redfin.img"
  cp "$OVMF_VARS" "$LOG_DIR/OVMF_VARS.fd"
  grub-editenv "$LOG_DIR/grubenv" create
  grub-editenv "$LOG_DIR/grubenv" set redfin_bank=b
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$LOG_DIR/redfin.img@@${esp}M" "$LOG_DIR/grubenv" ::/EFI/redfin/grubenv \
    || fail "cannot write grubenv into the ESP"
  dd if=/dev/zero of="$LOG_DIR/redfin.img" bs=1M seek="$bank_b" count=2 conv=notrunc status=none
  start_qemu "$MEM_DISK" \
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
    -drive "if=pflash,format=raw,unit=1,file=$LOG_DIR/OVMF_VARS.fd" \
    -drive "file=$LOG_DIR/redfin.img,format=raw,if=virtio" -device VGA
  wait_boot 1
  grep -aq 'Redfin: bank b is not bootable' "$SERIAL" || fail "GRUB did not report bank b as not bootable"
  grep -aqE 'redfin: Redfin .*, bank a\) init' "$SERIAL" || fail "the image did not come from bank a"
  say "[$TEST] bank A booted instead of the broken bank B: first Redfish 200 after $BOOT_S s"
  cleanup
  rm -f "$LOG_DIR/redfin.img" "$LOG_DIR/OVMF_VARS.fd"
  RESULTS+=("UEFI disk, broken bank B named by grubenv -> bank A: first Redfish 200 after $BOOT_S s")
  say "[$TEST] PASS"
}

# ------------------------------------------------------------------ firmware update
INVENTORY=/redfish/v1/UpdateService/FirmwareInventory

# make_unhealthy_package OUT: a signed package of this build whose bmcd refuses its
# configuration (log = "loud") and whose trial watchdog waits 20 s instead of 180 s
make_unhealthy_package() {
  local u=$LOG_DIR/unhealthy kib
  rm -rf "$u" && mkdir -p "$u/root" "$u/bank/boot"
  gzip -dc "$IMAGE_DIR/initramfs.cpio.gz" | (cd "$u/root" && cpio -id --quiet) || fail "cannot unpack the initramfs"
  sed -i 's/^log = .*/log = "loud"/' "$u/root/etc/bmcd/bmcd.toml"
  sed -i 's/^TRIAL_TIMEOUT=.*/TRIAL_TIMEOUT=20/' "$u/root/usr/lib/redfin/common.sh"
  if ! grep -q '^log = "loud"' "$u/root/etc/bmcd/bmcd.toml" || ! grep -q '^TRIAL_TIMEOUT=20$' "$u/root/usr/lib/redfin/common.sh"; then
    fail "cannot break the unhealthy package's configuration"
  fi
  (cd "$u/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$u/bank/boot/initramfs.cpio.gz"
  cp "$IMAGE_DIR/vmlinuz" "$u/bank/boot/vmlinuz"
  cp "$IMAGE_DIR/release" "$u/bank/boot/release"
  kib=$(du -sk "$u/bank" | cut -f1)
  mkfs.ext4 -q -F -m 0 -L redfin-root -d "$u/bank" "$u/bank.img" "$((kib + kib / 8 + 4096))K" >/dev/null || fail "mkfs.ext4"
  "$TOP/image/mkupdate.sh" "$KEY" 0.0.0-unhealthy "$u/bank.img" "$1" "redfin-$BOARD" >/dev/null \
    || fail "cannot make the unhealthy update package"
  rm -rf "$u"
}

# upload PACKAGE: multipart push to the UpdateService ($LOG_DIR/params.json); waits (bounded)
# for the task to end and fails unless it completed
upload() {
  local code monitor t0
  t0=$(now)
  code=$(curl -sk --max-time 600 -u "admin:$PW" -D "$LOG_DIR/upload.headers" -o "$LOG_DIR/upload.json" -w '%{http_code}' \
    -F "UpdateParameters=<$LOG_DIR/params.json;type=application/json" \
    -F "UpdateFile=@$1;type=application/octet-stream" \
    "$URL/redfish/v1/UpdateService/update-multipart" || true)
  [ "$code" = 202 ] || fail "upload of $(basename "$1"): HTTP $code $(cat "$LOG_DIR/upload.json" 2>/dev/null)"
  monitor=$(tr -d '\r' <"$LOG_DIR/upload.headers" | sed -n 's/^[Ll]ocation: //p')
  [ -n "$monitor" ] || fail "no task monitor in the upload's response"
  UPLOAD_S=$(elapsed "$t0")
  for _ in $(seq 1 600); do
    code=$(http_code "admin:$PW" "$monitor")
    [ "$code" = 202 ] || break
    sleep 0.5
  done
  [ "$code" = 204 ] || fail "update task of $(basename "$1"): HTTP $code $(cat "$LOG_DIR/last.json")"
  TASK_S=$(elapsed "$t0")
}

# inventory BANK: GET the bank's FirmwareInventory member into $LOG_DIR/last.json
inventory() {
  local code
  code=$(http_code "admin:$PW" "$INVENTORY/BMC_Bank$1")
  [ "$code" = 200 ] || fail "GET $INVENTORY/BMC_Bank$1: HTTP $code"
}

# booted_from N: bank letter of the N-th init line on the console
booted_from() {
  grep -a 'redfin: Redfin .* init at' "$SERIAL" | sed -n "${1}s/.*, bank \([ab]\)) init.*/\1/p"
}

test_update() {
  local broken code
  begin_test update "firmware update through Redfish: an unbootable package rolls back to bank A, update.tar boots bank B and is marked good, a bank whose bmcd fails is rolled back by the watchdog"
  KEY=${UPDATE_KEY:-$TOP/target/image-keys/dev-update-key.pem}
  [ -s "$IMAGE_DIR/update.tar" ] || fail "no $IMAGE_DIR/update.tar: rebuild the image"
  [ -s "$KEY" ] || fail "no update signing key $KEY (the one image/build.sh used)"
  printf '{"Targets": ["%s/BMC_BankB"]}' "$INVENTORY" >"$LOG_DIR/params.json"
  # A bank GRUB cannot boot: its "kernel" is random bytes. Signed with the trusted key.
  broken=$LOG_DIR/broken
  mkdir -p "$broken/boot"
  head -c 262144 /dev/urandom >"$broken/boot/vmlinuz"
  head -c 4096 /dev/urandom >"$broken/boot/initramfs.cpio.gz"
  mkfs.ext4 -q -F -m 0 -L redfin-root -d "$broken" "$LOG_DIR/broken.img" 4M >/dev/null || fail "mkfs.ext4"
  "$TOP/image/mkupdate.sh" "$KEY" 0.0.0-broken "$LOG_DIR/broken.img" "$LOG_DIR/broken.tar" "redfin-$BOARD" >/dev/null \
    || fail "cannot make the broken update package"
  cp --sparse=always "$IMAGE_DIR/redfin.img" "$LOG_DIR/redfin.img"
  cp "$OVMF_VARS" "$LOG_DIR/OVMF_VARS.fd"
  start_qemu "$MEM_DISK" \
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
    -drive "if=pflash,format=raw,unit=1,file=$LOG_DIR/OVMF_VARS.fd" \
    -drive "file=$LOG_DIR/redfin.img,format=raw,if=virtio" -device VGA
  wait_boot 1
  PW=$(password_lines | sed -n "s/.*with password '\([^']*\)'.*/\1/p")
  [ -n "$PW" ] || fail "no admin password on the console"
  [ "$(booted_from 1)" = a ] || fail "the first boot was not from bank A"
  inventory A
  grep -q '"Active":true' "$LOG_DIR/last.json" || fail "bank A is not the active one: $(cat "$LOG_DIR/last.json")"

  say "[$TEST] upload of a signed package with an unbootable kernel"
  upload "$LOG_DIR/broken.tar"
  inventory B
  grep -q '"Version":"0.0.0-broken"' "$LOG_DIR/last.json" || fail "bank B does not show the new version: $(cat "$LOG_DIR/last.json")"
  grep -q '"Staged":true' "$LOG_DIR/last.json" || fail "bank B is not staged"
  monitor system_reset
  T0=$(now)
  wait_boot 2
  grep -aq 'Redfin: trying bank b once' "$SERIAL" || fail "GRUB did not try bank B"
  [ "$(booted_from 2)" = a ] || fail "boot 2 was not from bank A (rollback): $(booted_from 2)"
  inventory B
  grep -q '"Health":"Critical"' "$LOG_DIR/last.json" || fail "bank B is not reported as failed: $(cat "$LOG_DIR/last.json")"
  local rollback=$BOOT_S
  say "[$TEST] bank B did not boot, GRUB went back to bank A: first Redfish 200 after $BOOT_S s"

  say "[$TEST] upload of the image's update.tar ($(du -h "$IMAGE_DIR/update.tar" | cut -f1))"
  upload "$IMAGE_DIR/update.tar"
  local up=$UPLOAD_S task=$TASK_S
  say "[$TEST] uploaded in $up s, written and verified after $task s"
  # As a BMC user activates an update: Manager.Reset reboots the appliance.
  code=$(curl -sk --max-time 30 -u "admin:$PW" -o "$LOG_DIR/last.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' -d '{"ResetType":"ForceRestart"}' \
    "$URL/redfish/v1/Managers/BMC/Actions/Manager.Reset" || true)
  [ "$code" = 204 ] || fail "Manager.Reset: HTTP $code $(cat "$LOG_DIR/last.json")"
  T0=$(now)
  wait_boot 3
  grep -aq 'bmcd rebooting the machine (Manager.Reset)' "$SERIAL" || fail "bmcd did not announce its reboot"
  local trial=$BOOT_S
  [ "$(booted_from 3)" = b ] || fail "boot 3 was not from bank B: $(booted_from 3)"
  for _ in $(seq 1 600); do
    grep -aq 'redfin: firmware bank b marked good' "$SERIAL" && break
    sleep 0.1
  done
  grep -aq 'redfin: firmware bank b marked good' "$SERIAL" || fail "bank B was not marked good within 60 s"
  inventory B
  grep -q '"Active":true' "$LOG_DIR/last.json" || fail "bank B is not active: $(cat "$LOG_DIR/last.json")"
  check_service "$PW"
  say "[$TEST] bank B booted and marked good: first Redfish 200 after $trial s"
  monitor system_reset
  T0=$(now)
  wait_boot 4
  [ "$(booted_from 4)" = b ] || fail "boot 4 was not from bank B: bank B did not stay the good one"
  [ "$(grep -ac 'Redfin: trying bank' "$SERIAL")" = 2 ] || fail "GRUB tried a bank at boot 4"

  # A bank whose kernel boots but whose bmcd never answers (a configuration it refuses), with
  # the image's trial watchdog shortened to 20 s: the watchdog reboots, GRUB boots bank B.
  say "[$TEST] upload of a signed package whose bmcd never becomes healthy (to bank A)"
  make_unhealthy_package "$LOG_DIR/unhealthy.tar"
  printf '{"Targets": ["%s/BMC_BankA"]}' "$INVENTORY" >"$LOG_DIR/params.json"
  upload "$LOG_DIR/unhealthy.tar"
  monitor system_reset
  T0=$(now)
  for _ in $(seq 1 "$((BOOT_TIMEOUT * 10))"); do
    grep -aq 'firmware bank a was not marked good within 20s: rebooting' "$SERIAL" && break
    kill -0 "$QPID" 2>/dev/null || fail "QEMU exited during the trial of bank A"
    sleep 0.1
  done
  grep -aq 'firmware bank a was not marked good within 20s: rebooting' "$SERIAL" \
    || fail "the trial watchdog did not reboot an unhealthy bank A within $BOOT_TIMEOUT s"
  [ "$(booted_from 5)" = a ] || fail "boot 5 was not the trial of bank A: $(booted_from 5)"
  grep -aq 'bmcd exited with status 2' "$SERIAL" || fail "bmcd on the unhealthy bank did not fail as planned"
  wait_boot 5
  local watchdog=$BOOT_S
  [ "$(booted_from 6)" = b ] || fail "after the watchdog's reboot the BMC did not come back on bank B: $(booted_from 6)"
  inventory A
  grep -q '"Health":"Critical"' "$LOG_DIR/last.json" || fail "bank A is not reported as failed: $(cat "$LOG_DIR/last.json")"
  say "[$TEST] unhealthy bank A rebooted by the trial watchdog, back on bank B: first Redfish 200 after $watchdog s"
  check_console 'bmcd exited with status 2|firmware bank a was not marked good'
  cleanup
  rm -f "$LOG_DIR/redfin.img" "$LOG_DIR/OVMF_VARS.fd"
  RESULTS+=("firmware update: unbootable bank B rolled back to A (first 200 after $rollback s); update.tar uploaded in $up s (task done at $task s), bank B booted (first 200 after $trial s), marked good, booted again; a bank whose bmcd fails rolled back by the 20 s trial watchdog (first 200 on B after $watchdog s)")
  say "[$TEST] PASS"
}

case "$WHICH" in
  kernel) test_kernel ;;
  disk) test_disk ;;
  banks) test_banks ;;
  update) test_update ;;
  all) test_kernel; test_disk; test_banks; test_update ;;
esac

say "all passed ($IMAGE_DIR, $(grep '^REDFIN_VERSION=' "$IMAGE_DIR/release" | cut -d= -f2 | tr -d "'")):"
for r in "${RESULTS[@]}"; do echo "  $r"; done | tee "$LOG_ROOT/summary.txt"
