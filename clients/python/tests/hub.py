"""A real Sapha stack for the tests: nats-server (JetStream) and `sapha hub` on free ports.

Binaries: ``SAPHA_NATS_SERVER``, else ``<repo>/.tools/bin/nats-server``, else ``nats-server``
on PATH; ``SAPHA_BIN``, else ``<repo>/target/debug/sapha`` (built with ``cargo build --bin
sapha`` when missing). Events are written with ``sapha publish`` / ``sapha play``.
Every wait is bounded; every process started is stopped by :meth:`Stack.close`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[3]
SCENARIOS = REPO / "scenarios"
READY_WAIT = 30.0
# The stream's byte limit. The publisher's default (10 GiB) is refused by a nats-server
# whose disk has less than about 14 GB free (JetStream offers 75% of it).
STREAM_MAX_BYTES = "100000000"


def find_nats_server() -> str:
    """The nats-server binary: env, then the repo's .tools, then PATH."""
    candidates = [os.environ.get("SAPHA_NATS_SERVER"), str(REPO / ".tools/bin/nats-server"), shutil.which("nats-server")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no nats-server: set SAPHA_NATS_SERVER or run scripts/nats-server.sh")


def find_sapha() -> str:
    """The sapha binary: env SAPHA_BIN, else target/debug/sapha, built if missing."""
    if os.environ.get("SAPHA_BIN"):
        return os.environ["SAPHA_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "sapha"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--quiet", "--bin", "sapha"], cwd=REPO, check=True, timeout=1800)
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check, timeout: float = READY_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} was not ready within {timeout}s")


def scenario_lines(name: str = "bills-generated.ndjson") -> List[str]:
    """The lines of a scenario file (one event each)."""
    return (SCENARIOS / name).read_text(encoding="utf-8").splitlines()


def event_ids(lines: List[str]) -> List[str]:
    return [json.loads(line)["event_id"] for line in lines]


class Stack:
    """nats-server and one hub (restartable on the same port), in a temp dir."""

    def __init__(self) -> None:
        self.sapha = find_sapha()
        self.work = Path(tempfile.mkdtemp(prefix="sapha-py-"))
        self.nats_port = free_port()
        self.nats_url = f"nats://127.0.0.1:{self.nats_port}"
        self.hub_port = free_port()
        self.http_url = f"http://127.0.0.1:{self.hub_port}"
        self.ws_url = f"ws://127.0.0.1:{self.hub_port}/v1/ws"
        self.nats: Optional[subprocess.Popen] = None
        self.hub: Optional[subprocess.Popen] = None
        self._files = 0
        self._background: List[subprocess.Popen] = []

    def _log(self, name: str):
        return open(self.work / f"{name}.log", "ab")

    def start(self) -> "Stack":
        """Starts nats-server, creates the (empty) stream, starts the hub."""
        self.nats = subprocess.Popen(
            [find_nats_server(), "-js", "-sd", str(self.work / "js"), "-p", str(self.nats_port), "-a", "127.0.0.1"],
            stdout=self._log("nats"), stderr=subprocess.STDOUT)
        wait_until("nats-server", lambda: socket.create_connection(("127.0.0.1", self.nats_port), 0.2).close() or True)
        self.publish([])  # creates the stream, so the hub starts on it
        self.start_hub()
        return self

    def start_hub(self) -> None:
        assert self.hub is None or self.hub.poll() is not None, "the hub is running"
        self.hub = subprocess.Popen(
            [self.sapha, "hub", "--listen", f"127.0.0.1:{self.hub_port}", "--nats-url", self.nats_url],
            stdout=self._log("hub"), stderr=subprocess.STDOUT)
        wait_until("the hub", self._hub_ready)

    def stop_hub(self, sig: int = signal.SIGTERM) -> None:
        """Stops the hub (SIGTERM: clients get 1001; SIGKILL: the sockets just die)."""
        if self.hub is not None and self.hub.poll() is None:
            self.hub.send_signal(sig)
            self.hub.wait(timeout=15)

    def _hub_ready(self) -> bool:
        if self.hub is not None and self.hub.poll() is not None:
            raise RuntimeError(f"the hub exited with {self.hub.returncode}; see {self.work}/hub.log")
        with urllib.request.urlopen(f"{self.http_url}/readyz", timeout=1) as r:
            return r.status == 200

    def _write(self, lines: List[str]) -> Path:
        self._files += 1
        path = self.work / f"events-{self._files}.ndjson"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    def _play(self) -> List[str]:
        return [self.sapha, "play", "--nats-url", self.nats_url, "--max-bytes", STREAM_MAX_BYTES]

    def publish(self, lines: List[str]) -> None:
        """Publishes events with `sapha play --speed 0` (which creates the stream) and waits."""
        subprocess.run([*self._play(), "--speed", "0", str(self._write(lines))],
                       stdout=self._log("publish"), stderr=subprocess.STDOUT, check=True, timeout=60)

    def play_paced(self, lines: List[str], speed: float = 4_000_000, max_gap: float = 0.02) -> subprocess.Popen:
        """Starts playing events paced by their own times (a day is ~20 ms); returns the process."""
        proc = subprocess.Popen(
            [*self._play(), "--speed", str(speed), "--max-gap-secs", str(max_gap), str(self._write(lines))],
            stdout=self._log("publish"), stderr=subprocess.STDOUT)
        self._background.append(proc)
        return proc

    def close(self, failed: bool = False) -> None:
        """Stops every process; on a failure keeps the logs and prints their ends."""
        for proc in [*self._background, self.hub, self.nats]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        if failed or os.environ.get("SAPHA_KEEP_LOGS"):
            for log in sorted(self.work.glob("*.log")):
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
                print(f"---- {log} (end) ----", *tail, sep="\n")
            print(f"logs kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
