#!/usr/bin/env bash
# Builds the FROM-scratch image (scripts/container-image.sh) around a binary
# built here, starts a hub from it against a nats-server on the host (loopback,
# random ports), and checks: /healthz 200; `sapha play --speed max` from the
# same image creates the stream and /readyz turns 200; the image's HEALTHCHECK
# passes; the log has no ANSI colour codes (not a terminal); SIGTERM stops it
# with exit code 0.
#
#   scripts/container-test.sh          # needs podman (Debian: apt-get install podman)
#
# Skips (exit 0, says why) without podman. The binary: $SAPHA_BIN, else
# target/debug/sapha (built if missing; the image's size is then the debug
# binary's). On hosts where crun cannot set up cgroups (hybrid v1/v2) and no
# rlimit may be raised (this CI box), it uses runc when installed and passes
# --ulimit values within the caller's hard limits.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v podman >/dev/null; then
  echo "container-test: SKIPPED: podman is not installed" >&2
  exit 0
fi
if [ -z "${SAPHA_BIN:-}" ]; then
  [ -x target/debug/sapha ] || cargo build --locked --bin sapha
  export SAPHA_BIN="$root/target/debug/sapha"
fi
nats="$(./scripts/nats-server.sh)"
tag="localhost/sapha:container-test"
./scripts/container-image.sh "$tag" >/dev/null
echo "image $tag: $(podman image inspect --format '{{.Size}}' "$tag") bytes"

run=(podman)
command -v runc >/dev/null && run+=(--runtime runc)
limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)")
hard_nproc="$(ulimit -Hu)"
if [ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -gt 4096 ]; then hard_nproc=4096; fi
limits+=(--ulimit "nproc=$hard_nproc:$hard_nproc")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work="$(mktemp -d)"
nats_pid=""
hub=""
cleanup() {
  [ -n "$hub" ] && podman rm -f "$hub" >/dev/null 2>&1 || true
  [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

nats_port="$(free_port)"
"$nats" -js -a 127.0.0.1 -p "$nats_port" -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!
hub_port="$(free_port)"
hub="$("${run[@]}" run -d "${limits[@]}" --network host \
  --health-cmd "[\"/usr/local/bin/sapha\", \"probe\", \"http://127.0.0.1:$hub_port/healthz\"]" \
  --health-interval disable \
  "$tag" hub --listen "127.0.0.1:$hub_port" --nats-url "nats://127.0.0.1:$nats_port")"

wait_for() { # wait_for WHAT URL STATUS: polls for 30 s at most
  local what="$1" url="$2" want="$3" got=""
  for _ in $(seq 1 150); do
    got="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)"
    [ "$got" = "$want" ] && { echo "ok: $what ($url -> $got)"; return 0; }
    sleep 0.2
  done
  echo "FAIL: $what: $url answered '$got', wanted $want" >&2
  podman logs "$hub" >&2 || true
  exit 1
}
wait_for "the hub in the container is alive" "http://127.0.0.1:$hub_port/healthz" 200
wait_for "no stream yet: not ready" "http://127.0.0.1:$hub_port/readyz" 503

"${run[@]}" run --rm --no-healthcheck "${limits[@]}" --network host -v "$root/scenarios:/scenarios:ro" \
  "$tag" play --speed max --nats-url "nats://127.0.0.1:$nats_port" /scenarios/joint-2564-09-10.ndjson
wait_for "the stream exists: ready" "http://127.0.0.1:$hub_port/readyz" 200

# The image's HEALTHCHECK probes port 8080; here the hub shares the host's
# network on a random port, so the same command is given that port (as an exec
# array: the image has no shell), and run once by hand (no systemd timers here).
if ! podman healthcheck run "$hub"; then
  echo "FAIL: the health check (sapha probe) did not pass" >&2
  exit 1
fi
echo "ok: the health check (sapha probe) passes"
if podman logs "$hub" 2>&1 | grep -q $'\x1b\['; then
  echo "FAIL: ANSI colour codes in the container's log" >&2
  exit 1
fi
echo "ok: no ANSI colour codes in the log"

podman stop -t 20 "$hub" >/dev/null
code="$(podman inspect --format '{{.State.ExitCode}}' "$hub")"
[ "$code" = 0 ] || { echo "FAIL: the hub exited $code on SIGTERM" >&2; podman logs "$hub" >&2; exit 1; }
echo "ok: SIGTERM: drained and exited 0"
echo "container-test: PASSED"
