#!/usr/bin/env bash
# Runs one benchmark scenario (BENCHMARKS.md):
#
#   scripts/bench.sh broadcast|per-bill|max-rate|idle|sitting [fanout flags...]
#   scripts/bench.sh micro [criterion flags...]
#
# Builds the release `sapha` binary (the hub runs as its own process) and the
# `fanout` load generator, raises the fd limit to the hard limit, and runs the
# scenario against `sapha hub` and nats-server's WebSocket listener in turn, on
# 127.0.0.1 only. The Markdown table goes to stdout; every run is also written
# as a JSON line to $BENCH_OUT/<scenario>.jsonl (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:?usage: scripts/bench.sh broadcast|per-bill|max-rate|idle|sitting|micro [flags]}"
shift
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SAPHA_NATS_SERVER="$(./scripts/nats-server.sh)"
export SAPHA_NATS_SERVER
target="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "$scenario" = micro ]; then
  exec cargo bench -p sapha-benches --bench hot_paths -- "$@"
fi
cargo build --release --locked -p sapha -p sapha-benches >&2
export SAPHA_BIN="$target/release/sapha"
out="${BENCH_OUT:-$target/bench}"
mkdir -p "$out"
echo "fd limit $(ulimit -n); $(nproc) cores; $("$SAPHA_NATS_SERVER" --version)" >&2
exec "$target/release/fanout" --scenario "$scenario" --json "$out/$scenario.jsonl" "$@"
