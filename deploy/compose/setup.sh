#!/usr/bin/env bash
# One-time setup for deploy/compose.yaml: a self-signed TLS certificate for
# the proxy, an ingest token and a VAPID key pair for the notifier.
# Writes deploy/compose/certs/{cert,key}.pem, deploy/compose/ingest-tokens,
# notify.env and grafana.env (none of them under version control). Idempotent: keeps
# what exists.
#   deploy/compose/setup.sh [DOMAIN]     # default localhost
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
domain="${1:-localhost}"
mkdir -p "$here/certs"
if [ ! -f "$here/certs/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -keyout "$here/certs/key.pem" -out "$here/certs/cert.pem" \
    -subj "/CN=$domain" -addext "subjectAltName=DNS:$domain,IP:127.0.0.1" 2>/dev/null
  # Caddy runs as a non-root user in some images; the key is for this demo only.
  chmod 0644 "$here/certs/key.pem"
  echo "wrote $here/certs/cert.pem (self-signed for $domain)"
fi
if [ ! -f "$here/ingest-tokens" ]; then
  printf 'clerk:%s\n' "$(openssl rand -hex 24)" > "$here/ingest-tokens"
  chmod 0644 "$here/ingest-tokens"
  echo "wrote $here/ingest-tokens (one token, name clerk)"
fi
if [ ! -f "$here/notify.env" ]; then
  # A P-256 private scalar, base64url: what `sapha notify --new-vapid-key` prints.
  key="$(openssl ecparam -name prime256v1 -genkey -noout -outform DER \
    | openssl ec -inform DER -outform DER -no_public 2>/dev/null \
    | tail -c +8 | head -c 32 | base64 -w0 | tr '+/' '-_' | tr -d '=')"
  echo "SAPHA_VAPID_PRIVATE_KEY=$key" > "$here/notify.env"
  chmod 0600 "$here/notify.env"
  echo "wrote $here/notify.env (the VAPID private key)"
fi
if [ ! -f "$here/grafana.env" ]; then
  echo "GF_SECURITY_ADMIN_PASSWORD=$(openssl rand -hex 12)" > "$here/grafana.env"
  chmod 0600 "$here/grafana.env"
  echo "wrote $here/grafana.env (the Grafana admin password)"
fi
