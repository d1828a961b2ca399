#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo fuzz, libFuzzer) one at a time and prints their figures.
#
#   scripts/fuzz.sh smoke         every target for FUZZ_SECONDS (default 8) each: make fuzz-smoke
#   scripts/fuzz.sh long          every target for FUZZ_SECONDS (default 300) each: make fuzz
#   FUZZ_TARGETS="query body" scripts/fuzz.sh long    only these targets
#
# Each run starts from the seeds in fuzz/corpus/<target> and the past crashes in
# fuzz/regressions/<target> (both only read); what it finds goes to target/fuzz/corpus/<target>,
# crashes to target/fuzz/artifacts/<target>/. Any crash, hang or OOM fails the script.
#
# cargo fuzz needs nightly Rust: the nightly toolchain when rustup has one, otherwise the stable
# one with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-smoke}
case "$mode" in
  smoke) seconds=${FUZZ_SECONDS:-8} ;;
  long) seconds=${FUZZ_SECONDS:-300} ;;
  *) echo "usage: $0 smoke|long" >&2; exit 2 ;;
esac

./scripts/install-fuzz.sh >/dev/null
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  echo "fuzz: no nightly toolchain, using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi
fuzz() { (cd fuzz && cargo "${toolchain[@]}" fuzz "$@"); }

targets=${FUZZ_TARGETS:-$(fuzz list)}
start=$SECONDS
fuzz build --release --debug-assertions
echo "fuzz: built in $((SECONDS - start)) s"

# Targets whose inputs are archives or streams get room for larger ones.
max_len() {
  case "$1" in
    package|multipart|ws_frames|config) echo 65536 ;;
    *) echo 4096 ;;
  esac
}

report=target/fuzz/report-$mode.txt
mkdir -p target/fuzz
printf '%-17s %7s %11s %8s %6s %7s %12s\n' target seconds runs exec/s cov ft corpus >"$report"
for t in $targets; do
  work=target/fuzz/corpus/$t
  artifacts=target/fuzz/artifacts/$t/
  mkdir -p "$work" "$artifacts" "fuzz/corpus/$t" "fuzz/regressions/$t"
  log=target/fuzz/$t.log
  echo "fuzz: $t for ${seconds} s"
  # Paths are seen from fuzz/, where cargo fuzz runs.
  if ! fuzz run --release --debug-assertions "$t" "../$work" "../fuzz/corpus/$t" "../fuzz/regressions/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
      -artifact_prefix="../$artifacts" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t FAILED (log: $log, input: $artifacts)" >&2
    exit 1
  fi
  # The last status line: "#N DONE cov: C ft: F corp: U/Sb ... exec/s: E ...".
  line=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  runs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$line")
  field() { grep -oE "$1: [^ ]+" <<<"$line" | head -n 1 | cut -d' ' -f2; }
  took=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 | grep -oE '[0-9]+ second' | cut -d' ' -f1 || true)
  printf '%-17s %7s %11s %8s %6s %7s %12s\n' "$t" "${took:-$seconds}" "$runs" "$(field exec/s)" \
    "$(field cov)" "$(field ft)" "$(field corp)" >>"$report"
done
cat "$report"
echo "fuzz: $mode done in $((SECONDS - start)) s (report: $report)"
