#!/usr/bin/env bash
# Profiles the hub under one benchmark scenario with perf (BENCHMARKS.md,
# "Profiling the hub"):
#
#   scripts/profile.sh per-bill|broadcast|max-rate|sitting [fanout flags...]
#
# Runs the scenario twice against the hub alone (one run each, fresh servers):
#   1. under `perf stat`, counting the hub's system calls by kind;
#   2. under `perf record`, sampling every hub thread on the software
#      `cpu-clock` event (this VM exposes no hardware counters) with DWARF call
#      graphs, so the release build needs no frame pointers.
# Then prints the generator's table, the syscall counts, the kernel/user split
# and the top symbols, self and inclusive. The raw data stays in
# $PROFILE_OUT (default target/profile) for `perf report -i .../hub.record`.
set -euo pipefail

# Wrapper mode: the generator runs the hub as `profile.sh --wrap MODE OUT sapha hub ...`
# (SAPHA_HUB_WRAPPER) and stops it with SIGTERM, which goes on to the hub so
# that perf sees it exit and writes its output.
if [ "${1:-}" = --wrap ]; then
  mode="$2" out="$3"
  shift 3
  case "$mode" in
    stat)
      LC_ALL=C perf stat --no-big-num -o "$out" -e task-clock,context-switches,raw_syscalls:sys_enter \
        -e syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_writev \
        -e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_write \
        -- "$@" &
      ;;
    record)
      perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -o "$out" -- "$@" &
      ;;
    *)
      echo "profile.sh: unknown wrapper mode $mode" >&2
      exit 2
      ;;
  esac
  perf_pid=$!
  trap 'pkill -TERM -P "$perf_pid" || true' TERM
  status=0
  wait "$perf_pid" || status=$?
  # A wait cut short by the trap returns 128 + the signal: wait for perf itself.
  if [ "$status" -gt 128 ]; then
    status=0
    wait "$perf_pid" || status=$?
  fi
  exit "$status"
fi

cd "$(dirname "$0")/.."
scenario="${1:?usage: scripts/profile.sh per-bill|broadcast|max-rate|sitting [fanout flags...]}"
shift
command -v perf >/dev/null || {
  echo "profile.sh: perf not found (apt-get install linux-perf)" >&2
  exit 1
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SAPHA_NATS_SERVER="$(./scripts/nats-server.sh)"
export SAPHA_NATS_SERVER
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p sapha -p sapha-benches >&2
export SAPHA_BIN="$target/release/sapha"
out="$(realpath -m "${PROFILE_OUT:-$target/profile}")"
mkdir -p "$out"
self="$PWD/scripts/profile.sh"

for mode in stat record; do
  echo "== $scenario, hub under perf $mode" >&2
  SAPHA_HUB_WRAPPER="$self --wrap $mode $out/hub.$mode" \
    "$target/release/fanout" --scenario "$scenario" --targets hub --runs 1 \
    --json "$out/$scenario.$mode.jsonl" "$@" >"$out/$scenario.$mode.md"
done
# The server CPU and RSS columns are perf's own process: read the hub's CPU
# from perf stat below.
cat "$out/$scenario.stat.md"

top() { awk -v n="$1" '/^ +[0-9]/ && k++ < n'; }

echo
echo "## System calls (perf stat; the counted run)"
grep -E '^ +[0-9]' "$out/hub.stat"
# Every JSON line is one run or one step (max-rate runs one hub for all its steps).
delivered="$({ grep -oE '"delivered":[0-9]+' "$out/$scenario.stat.jsonl" || true; } | awk -F: '{ d += $2 } END { print d + 0 }')"
awk -v d="$delivered" '
  $3 == "task-clock" { ms = $1 }
  $2 == "raw_syscalls:sys_enter" { all = $1 }
  $2 == "syscalls:sys_enter_sendto" { send = $1 }
  END { if (d > 0) printf "per delivery (%d deliveries; the whole hub process, start-up and handshakes included): %.2f us of hub CPU, %.2f syscalls, %.2f sendto\n", d, ms * 1000 / d, all / d, send / d }
' "$out/hub.stat"
echo
echo "## Where the samples are (perf record; the sampled run)"
perf report -i "$out/hub.record" --stdio --no-children --sort dso 2>/dev/null | top 5
echo
echo "## Top symbols, self"
perf report -i "$out/hub.record" --stdio --no-children --sort sym -g none 2>/dev/null | top 30
echo
echo "## Top symbols, inclusive (children)"
perf report -i "$out/hub.record" --stdio --children --sort sym -g none 2>/dev/null | top 40
