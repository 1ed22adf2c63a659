#!/usr/bin/env bash
# The test command: finds or installs nats-server 2.10+, then runs every test.
# Tests start their own nats-server processes on random ports.
set -euo pipefail
cd "$(dirname "$0")/.."
SAPHA_NATS_SERVER="$(./scripts/nats-server.sh)"
export SAPHA_NATS_SERVER
echo "using $("$SAPHA_NATS_SERVER" --version) at $SAPHA_NATS_SERVER"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked
