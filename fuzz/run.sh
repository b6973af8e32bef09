#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser NetMonitor feeds with bytes from the wire or from MCP
# callers (cargo-fuzz / libFuzzer on the stable toolchain through RUSTC_BOOTSTRAP=1).
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET]      default 60; TARGETS="tls x509" to pick some
#
# Corpora are seeded from the public captures in ../shared (fuzz/seed) and kept in fuzz/corpus
# between runs; crashes land in fuzz/artifacts/<target>/. Prints executions and crashes per
# target and exits non-zero if any target crashed. CI keeps the short deterministic fuzz loops
# of the unit tests; this is for long runs.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
targets="${TARGETS:-decode pcap reassembly tls x509 quic kerberos dns dhcp jsonrpc sensor feeds}"
jobs="${JOBS:-$(nproc)}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo run --quiet --release --manifest-path seed/Cargo.toml -- corpus
cargo fuzz build -O
mkdir -p artifacts corpus
max_len() {
  case "$1" in
    pcap|sensor|tls|reassembly|quic) echo 65536 ;;
    *) echo 8192 ;;
  esac
}
run_one() {
  local t="$1"
  mkdir -p "corpus/$t" "artifacts/$t"
  local log="artifacts/$t.log"
  set +e
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 \
    -max_len="$(max_len "$t")" -artifact_prefix="artifacts/$t/" -rss_limit_mb=2048 >"$log" 2>&1
  set -e
  local execs crashes
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  if grep -q "failed to build fuzz script" "$log"; then
    printf '%-11s did not build (see fuzz/%s)\n' "$t" "$log"
    return
  fi
  printf '%-11s %14s executions  %3s crashes  (%s s)\n' "$t" "${execs:-0}" "$crashes" "$secs"
}
export -f run_one max_len
export secs
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_one {}' | tee artifacts/summary.txt
! grep -qv ' 0 crashes  ' artifacts/summary.txt
