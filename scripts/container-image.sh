#!/usr/bin/env bash
# Builds the Sapha image WITHOUT pulling any base image: FROM scratch around a
# sapha binary built here, plus what it links (from ldd), CA certificates (for
# NATS over TLS; https webhooks, Web Push and LINE use bundled webpki roots)
# and a passwd/group entry for the non-root user 65532.
#
#   scripts/container-image.sh [TAG]      # default localhost/sapha:local
#
# The binary: $SAPHA_BIN, else target/release/sapha (built with
# `cargo build --release --locked --bin sapha` if missing). The runtime:
# podman, else buildah, else docker. Prints the image tag on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tag="${1:-localhost/sapha:local}"
bin="${SAPHA_BIN:-$root/target/release/sapha}"
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --release --locked --bin sapha >&2)
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
rootfs="$ctx/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
install -m 0755 "$bin" "$rootfs/usr/local/bin/sapha"
# Every shared object the binary needs, at the path the loader looks for it.
# A static (musl) binary has none: ldd then says "not a dynamic executable".
for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
for ca in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -f "$ca" ]; then cp -L "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"; break; fi
done
echo 'sapha:x:65532:65532:sapha:/:/sbin/nologin' > "$rootfs/etc/passwd"
echo 'sapha:x:65532:' > "$rootfs/etc/group"
printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
cp "$root/deploy/container/Containerfile.scratch" "$ctx/Containerfile"

if command -v podman >/dev/null; then
  # --format docker keeps HEALTHCHECK (the OCI format has no such field).
  podman build --quiet --format docker -t "$tag" -f "$ctx/Containerfile" "$ctx" >&2
elif command -v buildah >/dev/null; then
  buildah bud --quiet --format docker -t "$tag" -f "$ctx/Containerfile" "$ctx" >&2
elif command -v docker >/dev/null; then
  docker build --quiet -t "$tag" -f "$ctx/Containerfile" "$ctx" >&2
else
  echo "error: no podman, buildah or docker to build the image with" >&2
  exit 1
fi
echo "$tag"
