#!/usr/bin/env bash
# The browser test: the live dashboard in real headless Chromium, against a real
# hub fed by the scenario player through a real nats-server.
#
#   scripts/browser-test.sh
#
# It installs what is missing (chromium and Thai fonts with apt-get, playwright-core
# with npm), builds `sapha`, starts nats-server and `sapha hub` on free loopback
# ports, then runs tests/browser/dashboard.test.mjs, which opens the dashboard,
# plays the joint sitting of 10 Sep 2021 and Senate sitting no. 28 into NATS and
# checks what the page shows, on a desktop-sized page and on a phone-sized one
# (390 x 844, no horizontal overflow, a compact header). It also opens a page
# mid-sitting (the player paused while the joint vote is counted) and checks it
# shows the sitting at once from the state API, follows a bill from a Thai search
# result, and checks the bill browser's stage lists and the list of sittings.
# Web Push: it runs a real `sapha notify` and a local RFC 8030 push service
# (tests/examples/push_service.rs); the page follows a bill with notifications on,
# the bill moves, and the message the push service decrypted is delivered to the
# service worker (docs/NOTIFY.md, Tests).
# Web Push: the service worker (/sw.js) shows a push delivered through DevTools and
# its click opens the bill; when the hub answers GET /v1/push/key, following a bill
# registers the browser with the follow API too (skipped, with the reason, when it
# answers 503 or 404). CORS: a page served from another origin (another port, and
# localhost for 127.0.0.1) imports /sapha.js from the hub, reads the state API,
# follows a bill and opens an EventSource (tests/browser/cors.test.mjs).
# Screenshots land in tests/artifacts/.
# Everything it starts is stopped on exit. Exit status: 0 when every check passed.
#
# Environment: CARGO_TARGET_DIR (default target/), CHROMIUM (default /usr/bin/chromium),
# SAPHA_NATS_SERVER (see scripts/nats-server.sh), SAPHA_TEST_PUSH_SUBSCRIPTION (a
# PushSubscription's JSON from a local RFC 8030 push service, handed to the page in
# place of the browser vendor's; when set, the Web Push checks must run and pass).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
artifacts="$root/tests/artifacts"
# Bounds, in seconds: the run after the build, and each wait for a server.
RUN_DEADLINE=210
READY_WAIT=30
# How the sittings are paced: 1200x real time, at most 0.6 s between two events
# (about 26 s for both sittings; the joint vote is counted for about 2 s).
SPEED=1200
MAX_GAP=0.6
# Bills played while the hub is down (the resume check): the first N lines.
OFFLINE_BILLS=60
# The stream's size cap for this run (every `sapha play` reads it). The default,
# 10 GiB, is refused by JetStream when the disk has less than about 13 GiB free.
export SAPHA_MAX_BYTES="${SAPHA_MAX_BYTES:-1073741824}"

say() { printf '==> %s\n' "$*"; }
fail() {
  printf 'browser-test: FAIL: %s\n' "$*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    fail "need root to run: $*"
  fi
}

# ---- tools ----------------------------------------------------------------------------

if [ ! -x "$CHROMIUM" ]; then
  say "installing chromium and Thai fonts (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium fonts-thai-tlwg >/dev/null
  [ -x "$CHROMIUM" ] || fail "no browser at $CHROMIUM after apt-get install chromium"
fi
# Without a Thai font, Chromium draws Thai as boxes.
if command -v fc-list >/dev/null && [ -z "$(fc-list :lang=th family 2>/dev/null | head -1)" ]; then
  say "installing Thai fonts (fonts-thai-tlwg)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq fonts-thai-tlwg >/dev/null
fi
command -v node >/dev/null || fail "node is not installed (Node 18 or later is needed)"
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  say "installing playwright-core (npm)"
  (cd tests/browser && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; }) \
    || fail "npm could not install playwright-core"
fi

say "unit tests of sapha.js (node --test)"
node --test tests/browser/sapha.unit.test.mjs >"${TMPDIR:-/tmp}/sapha-js-unit.log" 2>&1 \
  || { cat "${TMPDIR:-/tmp}/sapha-js-unit.log"; fail "the unit tests of sapha.js failed"; }

say "building sapha and the local push service"
cargo build --quiet --bin sapha || fail "cargo build failed"
cargo build --quiet -p sapha-tests --example push_service || fail "cargo build of the push service failed"
sapha="$CARGO_TARGET_DIR/debug/sapha"
push_service="$CARGO_TARGET_DIR/debug/examples/push_service"
nats_server="$(./scripts/nats-server.sh)" || fail "no nats-server"

# ---- servers ----------------------------------------------------------------------------

work="$(mktemp -d "${TMPDIR:-/tmp}/sapha-browser.XXXXXX")"
nats_pid=""
extra_pids=()
cleanup() {
  local status=$?
  set +e
  if [ -s "$work/hub.pid" ]; then kill "$(cat "$work/hub.pid")" 2>/dev/null; fi
  for pid in "${extra_pids[@]}"; do kill "$pid" 2>/dev/null; done
  if [ -n "$nats_pid" ]; then kill "$nats_pid" 2>/dev/null; fi
  wait 2>/dev/null
  if [ "$status" -ne 0 ] && [ -d "$work/logs" ]; then
    mkdir -p "$artifacts/logs" && cp "$work"/logs/*.log "$artifacts/logs/" 2>/dev/null
    echo "browser-test: logs are in $artifacts/logs/" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/logs" "$artifacts"
SECONDS=0

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until "$@" succeeds, for at most $READY_WAIT seconds.
wait_for() {
  local what="$1"
  shift
  local i
  for ((i = 0; i < READY_WAIT * 10; i++)); do
    if "$@" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "$what was not ready within ${READY_WAIT}s"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
hub_ready() { curl -fsS -o /dev/null "http://127.0.0.1:$hub_port/readyz"; }

nats_port="$(free_port)"
say "nats-server on 127.0.0.1:$nats_port"
"$nats_server" -js -sd "$work/jetstream" -p "$nats_port" -a 127.0.0.1 >"$work/logs/nats.log" 2>&1 &
nats_pid=$!
wait_for "nats-server" port_open "$nats_port"
nats_url="nats://127.0.0.1:$nats_port"

# Create the stream before the hub and the page connect, by playing no events:
# the page then sees every event of the scenarios from the first one.
: >"$work/empty.ndjson"
"$sapha" play --nats-url "$nats_url" --speed 0 "$work/empty.ndjson" >"$work/logs/create-stream.log" 2>&1 \
  || fail "could not create the stream; see $work/logs/create-stream.log"

hub_port="$(free_port)"
# The follow API takes the local push service's http:// endpoint (loopback only).
export SAPHA_HUB__FOLLOW__ALLOW_HTTP_ENDPOINTS=true
hub_cmd=("$sapha" hub --listen "127.0.0.1:$hub_port" --nats-url "$nats_url")
say "sapha hub on 127.0.0.1:$hub_port"
"${hub_cmd[@]}" >"$work/logs/hub.log" 2>&1 &
echo $! >"$work/hub.pid"
wait_for "the hub" hub_ready
# A second hub on the same stream, on another port (another origin): the page of
# the first opens it with ?hub= (its stream, state API and follow API). Further
# screenshots: dashboard-phone-bill.png (/?bill= on a phone) and dashboard-demo.png.
hub2_port="$(free_port)"
say "a second sapha hub on 127.0.0.1:$hub2_port (for ?hub=)"
"$sapha" hub --listen "127.0.0.1:$hub2_port" --nats-url "$nats_url" >"$work/logs/hub2.log" 2>&1 &
extra_pids+=($!)
wait_for "the second hub" curl -fsS -o /dev/null "http://127.0.0.1:$hub2_port/readyz"
# The README's `sapha demo` (its own hub, no NATS, no notifier), as a visitor opens it.
demo_port="$(free_port)"
say "sapha demo on 127.0.0.1:$demo_port"
"$sapha" demo --listen "127.0.0.1:$demo_port" --ingest-listen 127.0.0.1:0 >"$work/logs/demo.log" 2>&1 &
extra_pids+=($!)
wait_for "the demo" curl -fsS -o /dev/null "http://127.0.0.1:$demo_port/readyz"

# Web Push: a local RFC 8030 push service (in place of the browser vendor's,
# which Chromium here cannot reach) and a real notifier with a fresh VAPID key.
received_port="$(free_port)"
"$push_service" "$received_port" >"$work/push-subscription.json" 2>"$work/logs/push-service.log" &
extra_pids+=($!)
wait_for "the push service" port_open "$received_port"
# --allow-loopback-targets: the local push service is on loopback, which the
# notifier's egress guard refuses otherwise (docs/NOTIFY.md).
vapid_key="$("$sapha" notify --new-vapid-key | sed -n 's/^SAPHA_VAPID_PRIVATE_KEY=//p')"
SAPHA_VAPID_PRIVATE_KEY="$vapid_key" "$sapha" notify --nats-url "$nats_url" \
  --dashboard-url "http://127.0.0.1:$hub_port" --ack-wait-secs 5 \
  --allow-loopback-targets >"$work/logs/notify.log" 2>&1 &
extra_pids+=($!)
wait_for "the notifier's VAPID key" curl -fsS -o /dev/null "http://127.0.0.1:$hub_port/v1/push/key"
# The followed bill's next stage, published once the page follows it: the
# Senate amended b-2565-0087 at its third reading, so it is before the House
# (HOUSE_SENATE_AMENDMENTS); the House disagrees, and a joint committee of both
# Houses is set up (s.137 (3)).
python3 - "$work/push-move.ndjson" <<'PY'
import json, sys
last = [json.loads(l) for l in open("scenarios/senate-2566-02-28.ndjson")
        if '"b-2565-0087"' in l and '"bill.stage_changed"' in l][-1]
move = dict(last, seq=last["seq"] + 1, event_id=f"e-b-2565-0087-{last['seq'] + 1}",
            occurred_at="2023-03-07T00:00:00Z")
move["data"] = dict(last["data"], from_stage=last["data"]["to_stage"], to_stage="JOINT_COMMITTEE")
move["data"].pop("note", None)
open(sys.argv[1], "w").write(json.dumps(move, ensure_ascii=False) + "\n")
PY

head -n "$OFFLINE_BILLS" scenarios/bills-generated.ndjson >"$work/bills-head.ndjson"
live_events=$(($(wc -l <scenarios/joint-2564-09-10.ndjson) + $(wc -l <scenarios/senate-2566-02-28.ndjson)))

json_argv() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }

say "running the dashboard in headless Chromium"
HUB_URL="http://127.0.0.1:$hub_port" \
  HUB2_URL="http://127.0.0.1:$hub2_port" \
  DEMO_URL="http://127.0.0.1:$demo_port" \
  HUB_CMD="$(json_argv "${hub_cmd[@]}")" \
  HUB_PID_FILE="$work/hub.pid" \
  PLAY_LIVE="$(json_argv "$sapha" play --nats-url "$nats_url" --speed "$SPEED" --max-gap-secs "$MAX_GAP" \
    scenarios/joint-2564-09-10.ndjson scenarios/senate-2566-02-28.ndjson)" \
  PLAY_OFFLINE="$(json_argv "$sapha" play --nats-url "$nats_url" --speed 0 "$work/bills-head.ndjson")" \
  PLAY_PUSH="$(json_argv "$sapha" publish --nats-url "$nats_url" --from "$work/push-move.ndjson")" \
  SAPHA_TEST_PUSH_SUBSCRIPTION="$(head -n1 "$work/push-subscription.json")" \
  SAPHA_TEST_PUSH_RECEIVED_URL="http://127.0.0.1:$received_port/received" \
  LIVE_EVENTS="$live_events" \
  OFFLINE_EVENTS="$OFFLINE_BILLS" \
  ARTIFACTS="$artifacts" \
  LOG_DIR="$work/logs" \
  CHROMIUM="$CHROMIUM" \
  RUN_DEADLINE_MS=$(((RUN_DEADLINE - SECONDS) * 1000)) \
  timeout --kill-after=5 "$((RUN_DEADLINE - SECONDS + 10))" node tests/browser/dashboard.test.mjs \
  || fail "the dashboard checks failed (above)"

# CORS from a real second origin: a page on http://localhost:<another port>
# imports /sapha.js from the hub, reads the state API, follows a bill over the
# WebSocket and opens an EventSource (tests/browser/cors.test.mjs).
say "CORS: a page on another origin uses the hub"
wait_for "the hub" hub_ready
HUB_URL="http://127.0.0.1:$hub_port" \
  BILL_ID=b-2564-ca-0001 CHROMIUM="$CHROMIUM" ARTIFACTS="$artifacts" \
  timeout --kill-after=5 60 node tests/browser/cors.test.mjs \
  || fail "the CORS checks failed (above)"

say "done in ${SECONDS}s; screenshots: tests/artifacts/dashboard.png, dashboard-th.png, dashboard-phone.png, dashboard-browser.png, dashboard-browser-phone.png, dashboard-midsitting.png, cors.png (and dashboard-push.png when the hub sends notifications)"
