#!/usr/bin/env bash
# Checks the deployment files (deploy/) with whatever tools this machine has;
# says which ran and which were skipped. Called by .ci/run.
#   promtool            alert rules, their unit tests, the Prometheus config   (Debian: prometheus)
#   systemd-analyze     `verify` of the units (any warning fails), `security` exposure
#   docker compose / docker-compose   `config` of deploy/compose.yaml          (Debian: docker-compose)
#   kubectl             `kustomize deploy/k8s` renders
#   caddy               the proxy's Caddyfile adapts                            (Debian: caddy)
#   nats-server         `-t` on the cluster node config
#   python3 + PyYAML    scripts/deploy-check.py (always: YAML/JSON parse, probes, grace periods, selectors)
#                       scripts/yaml11-check.py (always: every tracked YAML file, docs/openapi.yaml and
#                       docs/asyncapi.yaml included, reads the same in YAML 1.1 as in 1.2: no unquoted
#                       yes/no/on/off, no boolean in an enum). PyYAML is installed with pip if missing.
# SAPHA_DEPLOY_CHECK_STRICT=1 fails when a tool is missing instead of skipping.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
strict="${SAPHA_DEPLOY_CHECK_STRICT:-0}"
skipped=()
skip() {
  skipped+=("$1")
  if [ "$strict" = 1 ]; then echo "deploy-check: $1 is missing (strict)" >&2; exit 1; fi
}

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "deploy-check: installing PyYAML (pip)"
  python3 -m pip install --quiet --user PyYAML 2>/dev/null || python3 -m pip install --quiet PyYAML \
    || { echo "deploy-check: PyYAML is missing and pip could not install it" >&2; exit 1; }
fi
python3 scripts/yaml11-check.py
python3 scripts/deploy-check.py

if command -v promtool >/dev/null; then
  promtool check rules deploy/prometheus/alerts.yaml
  promtool test rules deploy/prometheus/alerts.test.yaml
  promtool check config --syntax-only deploy/prometheus/prometheus.yml 2>/dev/null \
    || promtool check config deploy/prometheus/prometheus.yml
else
  skip promtool
fi

if command -v systemd-analyze >/dev/null; then
  # verify wants ExecStart's binary to exist: check copies that point at one.
  units="$(mktemp -d)"
  trap 'rm -rf "$units"' EXIT
  bin="$(command -v true)"
  for unit in deploy/systemd/*.service; do
    sed "s#/usr/local/bin/sapha#$bin#" "$unit" > "$units/$(basename "$unit")"
  done
  out="$(systemd-analyze verify "$units"/*.service 2>&1 || true)"
  if [ -n "$out" ]; then
    echo "$out" >&2
    echo "deploy-check: systemd-analyze verify reported the above" >&2
    exit 1
  fi
  echo "systemd-analyze verify: ok ($(ls deploy/systemd/*.service | wc -l) units)"
  if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    for unit in "$units"/*.service; do
      systemd-analyze security --offline=true "$unit" 2>/dev/null | tail -1 | sed 's/^→ //'
    done
  fi
else
  skip systemd-analyze
fi

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  compose=()
fi
if [ ${#compose[@]} -gt 0 ]; then
  # setup.sh writes the cert, tokens and env files; use a throwaway copy.
  copy="$(mktemp -d)"
  cp -r deploy "$copy/"
  rm -rf "$copy/deploy/compose/certs" "$copy/deploy/compose/"*.env "$copy/deploy/compose/ingest-tokens"
  "$copy/deploy/compose/setup.sh" >/dev/null
  "${compose[@]}" -f "$copy/deploy/compose.yaml" config --quiet
  rm -rf "$copy"
  echo "${compose[*]} config: ok"
else
  skip "docker compose"
fi

if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  n="$(kubectl kustomize deploy/k8s | grep -c '^kind:')"
  echo "kubectl kustomize deploy/k8s: ok ($n objects)"
else
  skip kubectl
fi

if command -v caddy >/dev/null; then
  caddy adapt --config deploy/compose/Caddyfile --adapter caddyfile >/dev/null 2>&1 \
    || { caddy adapt --config deploy/compose/Caddyfile --adapter caddyfile; exit 1; }
  echo "caddy adapt: ok"
else
  skip caddy
fi

nats="${SAPHA_NATS_SERVER:-$(command -v nats-server || echo .tools/bin/nats-server)}"
if [ -x "$nats" ]; then
  NATS_SERVER_NAME=check "$nats" -c deploy/compose/nats.conf -t >/dev/null 2>&1 \
    || { NATS_SERVER_NAME=check "$nats" -c deploy/compose/nats.conf -t; exit 1; }
  echo "nats-server -t deploy/compose/nats.conf: ok"
else
  skip nats-server
fi

if [ ${#skipped[@]} -gt 0 ]; then
  echo "deploy-check: passed; skipped (not installed): ${skipped[*]}"
else
  echo "deploy-check: passed"
fi
