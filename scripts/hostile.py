#!/usr/bin/env python3
"""Measures what hostile connections cost `sapha hub` and `sapha ingest`.

Starts its own nats-server and the given `sapha` binary on loopback, then:
  hub:    holds 1,100 silent TCP connections (and 50 that send only the HTTP/2
          preface) from 127.0.0.1 at `ulimit -n 1024`, and reports the hub's
          open descriptors and RSS, and whether /healthz answers from another
          address and from the attacker's own, after 2 s and after 15 s; then
          the same count of connections that each make one keep-alive request
          and idle, and of silent ones spread over 20 addresses (55 each,
          under the per-IP cap);
  ingest: 100 connections without a token, each sending ~1 MiB of a chunked
          body that never ends, and reports ingest's RSS and how many were
          answered 401 while their body was still unfinished.

Usage: scripts/hostile.py [path/to/sapha]   (default target/debug/sapha)
Bounded: every connection and wait has a timeout; loopback only.
"""
import os, resource, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAPHA = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/sapha"))
TOKEN = "hostile-test-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_binary():
    return os.environ.get("SAPHA_NATS_SERVER") or subprocess.check_output(
        [os.path.join(ROOT, "scripts/nats-server.sh")], text=True).strip()


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get(port, path, src="127.0.0.9", timeout=5.0):
    try:
        s = socket.socket()
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = s.recv(256)
        s.close()
        return data.split(b"\r\n", 1)[0].decode() or "(closed)"
    except OSError as e:
        return f"({type(e).__name__})"


def wait_http(port, path, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        if " 200 " in get(port, path, timeout=1):
            return True
        time.sleep(0.2)
    return False


def still_open(socks):
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    tmp = tempfile.mkdtemp()
    nport, hport, iport = free_port(), free_port(), free_port()
    nats = subprocess.Popen([nats_binary(), "-a", "127.0.0.1", "-p", str(nport), "-js", "-sd", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [nats]
    try:
        time.sleep(0.5)
        nurl = f"nats://127.0.0.1:{nport}"
        env = dict(os.environ, RUST_LOG="error")
        # ingest creates the stream the hub reads.
        ingest = subprocess.Popen(["sh", "-c", 'ulimit -n 1024 && exec "$0" "$@"', SAPHA, "ingest",
                                   "--nats-url", nurl, "--listen", f"127.0.0.1:{iport}",
                                   "--tokens", f"t:{TOKEN}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ingest)
        assert wait_http(iport, "/healthz"), "ingest did not start"
        hub = subprocess.Popen(["sh", "-c", 'ulimit -n 1024 && exec "$0" "$@"', SAPHA, "hub",
                                "--nats-url", nurl, "--listen", f"127.0.0.1:{hport}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(hub)
        assert wait_http(hport, "/readyz"), "hub did not become ready"

        print(f"binary: {SAPHA}")
        print(f"hub at rest: {fds(hub.pid)} descriptors, {rss_kib(hub.pid)} KiB RSS")
        silent = []
        for i in range(1100):
            s = socket.socket()
            s.settimeout(2)
            s.bind(("127.0.0.1", 0))
            try:
                s.connect(("127.0.0.1", hport))
                silent.append(s)
            except OSError:
                s.close()
        for i in range(50):
            s = socket.socket()
            s.settimeout(2)
            s.bind(("127.0.0.2", 0))
            try:
                s.connect(("127.0.0.1", hport))
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                silent.append(s)
            except OSError:
                s.close()
        for wait in (2, 13):
            time.sleep(wait)
            print(f"hub after {'2' if wait == 2 else '15'} s of {len(silent)} silent connections: "
                  f"{fds(hub.pid)} descriptors, {rss_kib(hub.pid)} KiB RSS; "
                  f"/healthz from 127.0.0.3: {get(hport, '/healthz', '127.0.0.3')}; "
                  f"from 127.0.0.1: {get(hport, '/healthz', '127.0.0.1')}; "
                  f"still open: {still_open(silent)}")
        for s in silent:
            s.close()

        for shape, sources, request in (
                ("answered once, then idle on keep-alive, from 127.0.0.1", ["127.0.0.1"], True),
                ("silent, from 20 addresses", [f"127.0.3.{i}" for i in range(1, 21)], False)):
            time.sleep(1)  # the previous phase's sockets are released
            held = hold(hport, 1100, sources, request)
            time.sleep(2)
            print(f"hub with 1100 connections {shape}: {fds(hub.pid)} descriptors, "
                  f"{rss_kib(hub.pid)} KiB RSS; /healthz from 127.0.0.3: "
                  f"{get(hport, '/healthz', '127.0.0.3')}; still open: {still_open(held)}")
            for s in held:
                s.close()

        print(f"ingest at rest: {rss_kib(ingest.pid)} KiB RSS")
        bodies, answered = [], 0
        chunk = b"x" * 65536
        for i in range(100):
            s = socket.socket()
            s.settimeout(0.5)
            s.connect(("127.0.0.1", iport))
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(16):  # about 1 MiB, never finished
                    s.sendall(b"10000\r\n" + chunk + b"\r\n")
            except OSError:
                pass
            bodies.append(s)
        time.sleep(1)
        for s in bodies:
            try:
                if s.recv(64).startswith(b"HTTP/1.1 401"):
                    answered += 1
            except OSError:
                pass
        print(f"ingest with 100 unauthenticated ~1 MiB bodies in flight: {rss_kib(ingest.pid)} KiB RSS "
              f"(peak {peak_kib(ingest.pid)} KiB); answered 401 before the body ended: {answered}")
        for s in bodies:
            s.close()
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def hold(port, n, sources, request):
    """Opens n connections round-robin from `sources`; with `request`, each
    makes one keep-alive GET /healthz and reads its answer first."""
    held = []
    for i in range(n):
        s = socket.socket()
        s.settimeout(2)
        s.bind((sources[i % len(sources)], 0))
        try:
            s.connect(("127.0.0.1", port))
            if request:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b"ok\n"):
                    data = s.recv(512)
                    if not data:
                        raise OSError("closed")
                    answer += data
            held.append(s)
        except OSError:
            s.close()
    return held


def peak_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
