# Shell helpers shared by the Redfin init scripts (sourced, busybox ash).
# shellcheck shell=dash disable=SC2034  # (the variables at the end are for the scripts)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# say MESSAGE...: one line on the console, prefixed with "redfin:"
say() { echo "redfin: $*" >/dev/console; }

# uptime_s: seconds since boot, with centiseconds
uptime_s() { read -r up _ </proc/uptime; echo "$up"; }

# cmdline_arg NAME: value of NAME=VALUE on the kernel command line ("1" for a bare NAME);
# fails when absent
cmdline_arg() {
  local w
  # shellcheck disable=SC2013  # words, not lines
  for w in $(cat /proc/cmdline); do
    case "$w" in
      "$1="*) echo "${w#*=}"; return 0 ;;
      "$1") echo 1; return 0 ;;
    esac
  done
  return 1
}

# Where things live (also read by bmcd.toml: state-dir = /data/bmcd)
DATA_DIR=/data
DATA_LABEL=redfin-data
# the EFI system partition: GRUB's environment (bank choice) is EFI/redfin/grubenv on it
ESP_DIR=/boot/efi
ESP_LABEL=REDFIN-ESP
GRUBENV=$ESP_DIR/EFI/redfin/grubenv
# a trial boot of a new firmware bank that bmcd has not marked good within this many
# seconds is ended by a reboot: GRUB then boots the good bank again (rollback)
TRIAL_TIMEOUT=180
BMCD_CONF=/etc/bmcd/bmcd.toml
