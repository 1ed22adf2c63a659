#!/usr/bin/env bash
# The generator-independent comparison of BENCHMARKS.md ("One table"): every
# scenario pinned (the server under test on CPU 0; this generator and the hub's
# JetStream server on CPU 1), the targets alternating run by run (the hub with
# JSON frames, with protobuf frames, and nats-server's WebSocket listener), in
# one invocation. Run it on a quiet machine: about 40 minutes on 2 cores.
#
#   scripts/bench-matrix.sh            # tables to stdout, JSON lines to $BENCH_OUT
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SAPHA_NATS_SERVER="$(./scripts/nats-server.sh)"
export SAPHA_NATS_SERVER
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p sapha -p sapha-benches >&2
export SAPHA_BIN="$target/release/sapha"
out="${BENCH_OUT:-$target/bench/matrix}"
mkdir -p "$out"
runs="${RUNS:-3}"
pin="${PIN:-0,1}"
fanout() { "$target/release/fanout" --targets all --pin "$pin" "$@"; }
echo "# bench-matrix: $(date -u +%FT%TZ), $(nproc) cores, fd limit $(ulimit -n), $("$SAPHA_NATS_SERVER" --version), pinned $pin"
echo
echo "### Equal offered load, below saturation"
fanout --scenario broadcast --runs "$runs" --events 500 --rate 50 --json "$out/equal-broadcast.jsonl"
fanout --scenario per-bill --runs "$runs" --events 10000 --rate 1000 --json "$out/equal-per-bill.jsonl"
echo "### Equal offered load, the hub with limits.write_delay_ms=20"
fanout --scenario broadcast --runs "$runs" --events 500 --rate 50 \
  --hub-set limits.write_delay_ms=20 --json "$out/equal-broadcast-delay.jsonl"
echo "### Burst (as fast as JetStream acks)"
fanout --scenario broadcast --runs "$runs" --json "$out/burst-broadcast.jsonl"
fanout --scenario per-bill --runs "$runs" --json "$out/burst-per-bill.jsonl"
echo "### Highest sustained rate at p99 <= 100 ms"
fanout --scenario max-rate --runs "${MAX_RATE_RUNS:-1}" --start-rate 50 --json "$out/max-rate-broadcast.jsonl"
fanout --scenario max-rate --runs "${MAX_RATE_RUNS:-1}" --clients 5000 --topics 500 --start-rate 500 \
  --json "$out/max-rate-per-bill.jsonl"
