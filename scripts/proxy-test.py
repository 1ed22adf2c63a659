#!/usr/bin/env python3
"""The compose stack's TLS proxy (deploy/compose/Caddyfile), run for real on
loopback: caddy in front of two `sapha hub` processes and `sapha ingest`,
against one nats-server, every port random.

Checks, through https: /healthz and /readyz answer, /metrics does not (404);
a WebSocket upgrade on
/v1/ws gets 101; an event POSTed to /v1/events (routed to ingest, bearer
token) reaches both an SSE stream (/v1/sse, unbuffered) and the WebSocket.

    python3 scripts/proxy-test.py     # skips without caddy (Debian: caddy)

Environment: SAPHA_BIN (default target/debug/sapha), SAPHA_NATS_SERVER.
"""

import base64
import json
import os
import pathlib
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEADLINE = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, condition, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if condition():
                print(f"ok: {what}")
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} (no success within {deadline:.0f} s)")


def main():
    sapha = os.environ.get("SAPHA_BIN", str(ROOT / "target/debug/sapha"))
    nats = os.environ.get("SAPHA_NATS_SERVER") or shutil.which("nats-server") or str(ROOT / ".tools/bin/nats-server")
    caddy = shutil.which("caddy")
    if not caddy:
        print("proxy-test: SKIPPED: caddy is not installed", file=sys.stderr)
        return 0
    work = pathlib.Path(tempfile.mkdtemp(prefix="sapha-proxy-"))
    procs = []
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the self-signed cert of setup.sh

    def start(args, env=None, name="proc"):
        log = open(work / f"{name}.log", "wb")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        procs.append(p)
        return p

    try:
        # The certificate and token, as deploy/compose/setup.sh writes them.
        setup = work / "compose"
        shutil.copytree(ROOT / "deploy/compose", setup)
        for stale in ["certs", "notify.env", "grafana.env", "ingest-tokens"]:
            target = setup / stale
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        subprocess.run([str(setup / "setup.sh")], check=True, stdout=subprocess.DEVNULL)
        token = (setup / "ingest-tokens").read_text().strip().split(":", 1)[1]

        nats_port, hub1, hub2, ingest, https, http = (free_port() for _ in range(6))
        start([nats, "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", str(work / "js")], name="nats")
        url = f"nats://127.0.0.1:{nats_port}"
        for i, port in enumerate([hub1, hub2]):
            start([sapha, "hub", "--nats-url", url, "--listen", f"127.0.0.1:{port}",
                   "--set", 'proxy.trusted=["127.0.0.1"]'], {"RUST_LOG": "warn"}, f"hub{i}")
        start([sapha, "ingest", "--nats-url", url, "--listen", f"127.0.0.1:{ingest}",
               "--tokens-file", str(setup / "ingest-tokens")], {"RUST_LOG": "warn"}, "ingest")

        # The committed Caddyfile, with loopback upstreams and random ports.
        text = (ROOT / "deploy/compose/Caddyfile").read_text()
        text = text.replace("hub-1:8080 hub-2:8080", f"127.0.0.1:{hub1} 127.0.0.1:{hub2}")
        text = text.replace("ingest:8081", f"127.0.0.1:{ingest}")
        text = text.replace("/certs/", f"{setup}/certs/")
        text = text.replace("\tadmin off\n", f"\tadmin off\n\thttp_port {http}\n\thttps_port {https}\n\tauto_https disable_redirects\n")
        assert f"127.0.0.1:{hub1}" in text and f"127.0.0.1:{ingest}" in text, "the Caddyfile's upstreams changed"
        (work / "Caddyfile").write_text(text)
        start([caddy, "run", "--config", str(work / "Caddyfile"), "--adapter", "caddyfile"],
              {"SAPHA_DOMAIN": f"localhost:{https}", "HOME": str(work), "XDG_DATA_HOME": str(work),
               "XDG_CONFIG_HOME": str(work)}, "caddy")

        base = f"https://localhost:{https}"

        def get(path):
            with urllib.request.urlopen(base + path, context=ctx, timeout=3) as r:
                return r.status

        wait("GET /healthz through the proxy", lambda: get("/healthz") == 200)
        try:
            get("/metrics")
            raise SystemExit("FAIL: /metrics is served through the public proxy")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise SystemExit(f"FAIL: /metrics through the proxy answered {e.code}, wanted 404")
        print("ok: /metrics is not served through the proxy (404)")

        # Ingest creates the stream; then both hubs turn ready.
        first = (ROOT / "scenarios/joint-2564-09-10.ndjson").read_text().splitlines()[0]
        event_id = json.loads(first)["event_id"]

        def raw(request: bytes):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", https), timeout=5), server_hostname="localhost")
            s.sendall(request)
            return s

        def read_head(s):
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            return head.split(b"\r\n\r\n", 1)

        # The real event is POSTed only once both subscribers are attached.
        def post_ok(body: bytes):
            req = urllib.request.Request(base + "/v1/events", data=body, method="POST", headers={
                "authorization": f"Bearer {token}", "content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        # An invalid batch is refused (400) but proves the route to ingest and
        # makes ingest open the stream, so the hubs become ready.
        wait("POST /v1/events reaches ingest (a bad body answers 400, not 404/502)",
             lambda: post_ok(b"[]") in (400, 422))
        wait("GET /readyz through the proxy", lambda: get("/readyz") == 200)

        sse = raw(b"GET /v1/sse?topics=%3E HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        head, sse_rest = read_head(sse)
        if not head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head.lower():
            raise SystemExit(f"FAIL: SSE through the proxy: {head!r}")
        print("ok: SSE stream opened through the proxy")

        key = base64.b64encode(os.urandom(16))
        ws = raw(b"GET /v1/ws?topics=%3E HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
        head, ws_rest = read_head(ws)
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"FAIL: WebSocket upgrade through the proxy: {head!r}")
        print("ok: WebSocket upgraded (101) through the proxy")

        status = post_ok(first.encode())
        if status not in (200, 201, 202):
            raise SystemExit(f"FAIL: POST of one event through the proxy answered {status}")

        def arrives(sock, buffered, what):
            data = buffered
            end = time.monotonic() + DEADLINE
            sock.settimeout(1)
            while event_id.encode() not in data and time.monotonic() < end:
                try:
                    chunk = sock.recv(65536)
                except (socket.timeout, ssl.SSLWantReadError):
                    continue
                if not chunk:
                    break
                data += chunk
            if event_id.encode() not in data:
                raise SystemExit(f"FAIL: the event did not reach the {what} client through the proxy: {data[-500:]!r}")
            print(f"ok: the event reached the {what} client through the proxy")
            return data

        data = arrives(sse, sse_rest, "SSE")
        if not re.search(rb"^id: ?\d+", data, re.M):
            raise SystemExit(f"FAIL: no SSE id line: {data[-500:]!r}")
        arrives(ws, ws_rest, "WebSocket")
        print("proxy-test: PASSED")
        return 0
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("SAPHA_KEEP_PROXY_TEST"):
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
