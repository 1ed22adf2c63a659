#!/usr/bin/env bash
# The test command: finds or installs nats-server 2.10+, builds the `sapha`
# binary that some tests run as a child process, runs every Rust test, then the
# browser test of the dashboard (skip it with SAPHA_SKIP_BROWSER=1), then the
# Python client's tests against a real hub (skip them with SAPHA_SKIP_PYTHON=1).
# Tests start their own nats-server processes on random ports.
set -euo pipefail
cd "$(dirname "$0")/.."
SAPHA_NATS_SERVER="$(./scripts/nats-server.sh)"
export SAPHA_NATS_SERVER
echo "using $("$SAPHA_NATS_SERVER" --version) at $SAPHA_NATS_SERVER"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
cargo build --locked --bin sapha
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked
if [ "${SAPHA_SKIP_BROWSER:-0}" != "1" ]; then
  ./scripts/browser-test.sh
fi
[ "${SAPHA_SKIP_PYTHON:-0}" = "1" ] || ./scripts/python-client-test.sh
