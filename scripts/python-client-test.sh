#!/usr/bin/env bash
# The Python client's tests (clients/python) against a real nats-server and `sapha hub`.
#
#   scripts/python-client-test.sh [pytest args...]
#
# It keeps a venv in .tools/py (python3 -m venv) with websockets, pytest and the
# `sapha` package from clients/python, and reinstalls the package only when its
# sources change, so a second run starts at once. Then it builds `sapha` (a no-op
# when it is fresh) and runs the tests, which start nats-server and the hub on
# free loopback ports and stop them at the end. Bounded at 300 s.
#
# Environment: SAPHA_BIN (default: cargo build, then $CARGO_TARGET_DIR/debug/sapha),
# SAPHA_NATS_SERVER (default: scripts/nats-server.sh finds or installs one),
# PYTHON (default python3), CARGO_TARGET_DIR (default target/).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
venv="$root/.tools/py"
py="$venv/bin/python"
package="$root/clients/python"
DEADLINE=300

say() { printf '==> %s\n' "$*"; }
fail() {
  printf 'python-client-test: FAIL: %s\n' "$*" >&2
  exit 1
}

# ---- the venv ----------------------------------------------------------------------------

if [ ! -x "$py" ]; then
  say "creating the venv in $venv"
  "${PYTHON:-python3}" -m venv "$venv" || fail "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi
pip() { "$py" -m pip --disable-pip-version-check --quiet "$@"; }
if ! "$py" -c 'import websockets, pytest' 2>/dev/null; then
  say "installing websockets and pytest"
  pip install 'websockets>=13' pytest || fail "pip could not install websockets and pytest"
fi
# The package is reinstalled when pyproject.toml or a source file changes.
stamp="$venv/.sapha-client.sha256"
sources_hash="$(cd "$package" && find pyproject.toml README.md src -type f -not -path '*/__pycache__/*' \
  -not -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ ! -s "$stamp" ] || [ "$(cat "$stamp")" != "$sources_hash" ] || ! "$py" -c 'import sapha' 2>/dev/null; then
  say "installing the sapha package from clients/python"
  pip install --force-reinstall --no-deps "$package" || fail "pip could not install clients/python"
  echo "$sources_hash" >"$stamp"
fi

# ---- the binaries ------------------------------------------------------------------------

if [ -z "${SAPHA_BIN:-}" ]; then
  say "building sapha"
  cargo build --quiet --locked --bin sapha || fail "cargo build failed"
  export SAPHA_BIN="$CARGO_TARGET_DIR/debug/sapha"
fi
if [ -z "${SAPHA_NATS_SERVER:-}" ]; then
  SAPHA_NATS_SERVER="$(./scripts/nats-server.sh)" || fail "no nats-server"
  export SAPHA_NATS_SERVER
fi

# ---- the tests ---------------------------------------------------------------------------

say "pytest clients/python/tests (sapha: $SAPHA_BIN, nats-server: $SAPHA_NATS_SERVER)"
# From the tests' directory, so that `import sapha` is the installed package.
cd "$package/tests"
timeout --kill-after=10 "$DEADLINE" "$py" -m pytest -q -p no:cacheprovider "$@" . \
  || fail "the Python client tests failed (above)"
