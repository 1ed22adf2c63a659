#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 30 s each), growing
# the kept corpus in tests/fuzz/corpus/<target>. Installs cargo-fuzz if needed.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on the one
# stable toolchain this machine has.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in topic_filter event_json client_request; do
  echo "== fuzz $target for ${seconds}s"
  log="$(mktemp)"
  status=0
  cargo fuzz run --fuzz-dir tests/fuzz "$target" "tests/fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $target failed (crash inputs in tests/fuzz/artifacts/$target)" >&2
    exit 1
  fi
done
echo "fuzzing: 3 targets ran ${seconds}s each with no failure"
