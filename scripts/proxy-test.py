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
import http.client
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

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEADLINE = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, probe, want, deadline=DEADLINE, on_fail=None):
    """Polls `probe()` until it returns `want` (a value, or a tuple of values);
    on failure says what the last try saw."""
    wanted = want if isinstance(want, tuple) else (want,)
    end = time.monotonic() + deadline
    last = "never tried"
    while time.monotonic() < end:
        try:
            result = probe()
            if result in wanted:
                print(f"ok: {what}")
                return
            last = f"answered {result!r}"
        except OSError as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.2)
    if on_fail:
        on_fail()
    raise SystemExit(f"FAIL: {what} (no success within {deadline:.0f} s; the last try {last})")


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
        p.name = name
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

        nats_port, hub1, hub2, ingest, https, plain_http = (free_port() for _ in range(6))
        start([nats, "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", str(work / "js")], name="nats")
        url = f"nats://127.0.0.1:{nats_port}"
        for i, port in enumerate([hub1, hub2]):
            start([sapha, "hub", "--nats-url", url, "--listen", f"127.0.0.1:{port}",
                   "--set", 'proxy.trusted=["127.0.0.1"]'], {"RUST_LOG": "warn"}, f"hub{i}")
        start([sapha, "ingest", "--nats-url", url, "--listen", f"127.0.0.1:{ingest}",
               "--tokens-file", str(setup / "ingest-tokens")],
              # Ingest creates the stream at start (1 GiB: JetStream refuses a
              # stream larger than the temp dir's free space allows); the hubs
              # turn ready once it exists, and the proxy routes to ready hubs only.
              {"RUST_LOG": "warn", "SAPHA_MAX_BYTES": str(1 << 30)}, "ingest")

        # The committed Caddyfile, with loopback upstreams and random ports.
        text = (ROOT / "deploy/compose/Caddyfile").read_text()
        text = text.replace("hub-1:8080 hub-2:8080", f"127.0.0.1:{hub1} 127.0.0.1:{hub2}")
        text = text.replace("ingest:8081", f"127.0.0.1:{ingest}")
        text = text.replace("/certs/", f"{setup}/certs/")
        text = text.replace("\tadmin off\n", f"\tadmin off\n\thttp_port {plain_http}\n\thttps_port {https}\n\tauto_https disable_redirects\n")
        assert f"127.0.0.1:{hub1}" in text and f"127.0.0.1:{ingest}" in text, "the Caddyfile's upstreams changed"
        (work / "Caddyfile").write_text(text)
        start([caddy, "run", "--config", str(work / "Caddyfile"), "--adapter", "caddyfile"],
              {"SAPHA_DOMAIN": f"localhost:{https}", "HOME": str(work), "XDG_DATA_HOME": str(work),
               "XDG_CONFIG_HOME": str(work)}, "caddy")

        def request(method, path, body=None, headers=None):
            """One HTTPS request to the proxy on 127.0.0.1, with SNI and Host
            `localhost` (no name lookup: a sandbox may not resolve it)."""
            conn = http.client.HTTPSConnection("127.0.0.1", https, timeout=5, context=ctx)
            conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", https), timeout=5),
                                        server_hostname="localhost")
            try:
                conn.request(method, path, body=body, headers={"Host": f"localhost:{https}", **(headers or {})})
                response = conn.getresponse()
                response.read()
                return response.status
            finally:
                conn.close()

        def get(path):
            return request("GET", path)

        def show_logs():
            for p in procs:
                if p.poll() is not None:
                    print(f"--- {p.name} exited with code {p.returncode}", file=sys.stderr)
            for log in sorted(work.glob("*.log")):
                lines = log.read_text(errors="replace").splitlines()
                print(f"--- {log.name} (last 15 of {len(lines)} lines)", file=sys.stderr)
                for line in lines[-15:]:
                    print(f"    {line[:400]}", file=sys.stderr)

        wait("GET /healthz through the proxy", lambda: get("/healthz"), 200, on_fail=show_logs)
        status = get("/metrics")
        if status != 404:
            raise SystemExit(f"FAIL: /metrics through the proxy answered {status}, wanted 404")
        print("ok: /metrics is not served through the proxy (404)")

        # The first event of a real sitting, POSTed once both subscribers are attached.
        first = (ROOT / "scenarios/joint-2564-09-10.ndjson").read_text().splitlines()[0]
        event_id = json.loads(first)["event_id"]

        def raw(message: bytes):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", https), timeout=5), server_hostname="localhost")
            s.sendall(message)
            return s

        def read_head(s):
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            return head.split(b"\r\n\r\n", 1)

        def post(body: bytes):
            return request("POST", "/v1/events", body, {
                "authorization": f"Bearer {token}", "content-type": "application/json"})

        # An invalid batch is refused (400) but proves the route to ingest.
        wait("POST /v1/events reaches ingest (a bad body answers 400, not 404/502)",
             lambda: post(b"[]"), (400, 422), on_fail=show_logs)
        wait("GET /readyz through the proxy", lambda: get("/readyz"), 200, on_fail=show_logs)

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

        status = post(first.encode())
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
