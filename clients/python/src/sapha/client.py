"""The WebSocket client: subscribe, resume, reconnect, and never deliver twice."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Dict, Iterable, Optional, Tuple

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from .backoff import Backoff
from .errors import SaphaError
from .position import Item, Position
from .urls import ws_url

log = logging.getLogger("sapha")

#: Close code of a hub shutting down: come back quickly.
GOING_AWAY = 1001
#: HTTP answers to the handshake that reconnecting cannot fix (docs/PROTOCOL.md).
FATAL_STATUS = {400: "bad_handshake", 401: "unauthorized", 403: "forbidden", 404: "not_found"}


class Client:
    """A resumable subscription to a Sapha hub's WebSocket (``/v1/ws``).

    ``async for item in client.events()`` yields dicts with a ``type``:

    - ``event``: ``seq``, ``topic``, ``secondary_topic``, ``event_id``, ``event``
      (docs/EVENTS.md) and ``replayed``. Each event once, ``seq`` always increasing.
    - ``connected``: subscribed on a (new) connection; ``epoch``, ``session``,
      ``head_seq``, ``since`` and ``recovered`` (None when not resuming).
    - ``live``: the replay after a resume is over; ``seq``.
    - ``gap``: the hub no longer holds the events after ``since``; it carries on
      from ``first_seq``. Reload what you missed from elsewhere.
    - ``reset``: the stream does not hold the position at all (recreated or
      restored; ``epoch`` changed): rebuild whatever you built from the stream.
      ``seq`` starts again from ``first_seq``.
    - ``disconnected``: the connection dropped; ``code``, ``reason``, ``attempt``,
      and ``delay`` (seconds) before the next attempt.
    - ``error``: a non-fatal error frame from the hub (``code``, ``message``).

    It reconnects by itself with capped exponential backoff and jitter, and
    resumes with ``since=last_seq`` and the epoch. It raises :class:`SaphaError`
    when the hub refuses the topics or the token (reconnecting would not help), or
    with code ``gave_up`` after ``max_attempts`` failed attempts in a row.
    Store ``last_seq`` and ``epoch`` after handling an event to resume a later run.
    """

    def __init__(
        self,
        url: str,
        topics: Iterable[str],
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        token: Optional[str] = None,
        *,
        max_attempts: Optional[int] = None,
        backoff: Optional[Backoff] = None,
        connect_timeout: float = 10.0,
        dedupe_window: int = 4096,
        connect_options: Optional[Dict[str, Any]] = None,
    ):
        self.url = ws_url(url)
        self.topics = list(topics)
        if not self.topics or not all(isinstance(t, str) and t for t in self.topics):
            raise ValueError("topics must be a non-empty list of topic filters")
        self.token = token
        #: Consecutive failed attempts before giving up; None: never give up.
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff()
        self.connect_timeout = connect_timeout
        self.connect_options = dict(connect_options or {})
        self.position = Position(since, epoch, dedupe_window)
        #: Counters: connects, reconnects, gaps, resets.
        self.stats = {"connects": 0, "reconnects": 0, "gaps": 0, "resets": 0}
        self._closed = False
        self._closing: Optional[asyncio.Event] = None
        self._ws = None
        self._iterating = False
        self._close: Tuple[int, str] = (1006, "")
        self._next_id = 0

    @property
    def last_seq(self) -> Optional[int]:
        """The resume point: the last stream sequence delivered or known to be passed."""
        return self.position.last_seq

    @property
    def epoch(self) -> Optional[str]:
        """The stream epoch ``last_seq`` belongs to."""
        return self.position.epoch

    async def close(self) -> None:
        """Stops for good: the ``events()`` loop ends (at once, even while it waits to reconnect)."""
        self._closed = True
        if self._closing is not None:
            self._closing.set()
        if self._ws is not None:
            await self._ws.close()

    async def events(self) -> AsyncIterator[Item]:
        """Connects, subscribes and yields items until :meth:`close` or a fatal error."""
        if self._iterating:
            raise RuntimeError("events() is already being iterated")
        self._iterating = True
        self._closing = asyncio.Event()
        attempt = 0
        try:
            while not self._closed:
                code, reason = 1006, ""
                self._close = (1006, "connection lost")
                try:
                    async with self._connect() as ws:
                        self._ws = ws
                        self.stats["connects"] += 1
                        async for item in self._serve(ws):
                            if item["type"] == "live" or (item["type"] == "connected" and item["since"] is None):
                                attempt = 0
                            yield item
                        code, reason = self._close
                except InvalidStatus as e:
                    status = e.response.status_code
                    if status in FATAL_STATUS:
                        raise SaphaError(_error_code(e.response.body, FATAL_STATUS[status]),
                                         f"the hub refused the connection with HTTP {status}", status=status) from e
                    code, reason = 1006, f"HTTP {status}"
                except ConnectionClosed as e:
                    code, reason = _close_of(e)
                except InvalidURI as e:
                    raise SaphaError("bad_option", str(e)) from e
                except (OSError, asyncio.TimeoutError, InvalidHandshake) as e:
                    code, reason = 1006, f"{type(e).__name__}: {e}"
                finally:
                    self._ws = None
                if self._closed:
                    return
                if self.max_attempts is not None and attempt >= self.max_attempts:
                    raise SaphaError("gave_up", f"no connection after {attempt} attempts (last: {code} {reason})")
                delay = self.backoff.delay(attempt, quick=code == GOING_AWAY)
                attempt += 1
                self.stats["reconnects"] += 1
                log.info("sapha: connection closed (%s %s); attempt %d in %.2fs", code, reason, attempt, delay)
                yield {"type": "disconnected", "code": code, "reason": reason, "attempt": attempt, "delay": delay}
                try:
                    await asyncio.wait_for(self._closing.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._iterating = False

    def _connect(self):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        options = {"open_timeout": self.connect_timeout, "subprotocols": ["sapha.v1.json"]}
        options.update(self.connect_options)
        return connect(self.url, additional_headers=headers, **options)

    async def _serve(self, ws) -> AsyncIterator[Item]:
        """One connection: welcome, subscribe, then frames until the socket closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        welcome = await self._recv(ws, deadline)
        if welcome is None:
            return
        if welcome.get("type") != "welcome":
            raise SaphaError("bad_frame", f"expected a welcome frame, got {welcome.get('type')!r}")
        self.position.on_welcome(welcome)
        self._next_id += 1
        request_id = f"s{self._next_id}"
        await ws.send(json.dumps(self.position.subscribe_request(request_id, self.topics)))
        subscribed = False
        live = False
        while True:
            frame = await self._recv(ws, None if subscribed else deadline)
            if frame is None:
                return
            kind = frame.get("type")
            if kind == "event":
                item = self.position.on_event(frame, replayed=not live)
                if item is not None:
                    yield item
            elif kind == "batch":
                for event in frame.get("events") or []:
                    item = self.position.on_event(event, replayed=not live)
                    if item is not None:
                        yield item
            elif kind == "ack" and frame.get("id") == request_id and not subscribed:
                subscribed = True
                live = "since" not in frame
                for item in self.position.on_subscribed(frame, welcome):
                    if item["type"] in ("gap", "reset"):
                        self.stats[item["type"] + "s"] += 1
                    yield item
            elif kind == "live":
                live = True
                self.position.advance(frame.get("seq"))
                yield {"type": "live", "seq": frame.get("seq")}
            elif kind == "error":
                if frame.get("id") == request_id:
                    # The topics themselves are refused: reconnecting would not help.
                    raise SaphaError(frame.get("code") or "error", frame.get("message") or "subscribe refused", body=frame)
                yield {"type": "error", "code": frame.get("code"), "message": frame.get("message"), "frame": frame}
            # Other frames (other acks, newer frame types) are ignored.

    async def _recv(self, ws, deadline: Optional[float]) -> Optional[Item]:
        """The next JSON frame, or None once the socket is closed (its close code then
        in ``self._close``). Times out at ``deadline``."""
        while True:
            try:
                if deadline is None:
                    message = await ws.recv()
                else:
                    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
                    message = await asyncio.wait_for(ws.recv(), timeout)
            except ConnectionClosed as e:
                self._close = _close_of(e)
                return None
            if isinstance(message, bytes):
                continue  # JSON protocol only
            try:
                frame = json.loads(message)
            except ValueError:
                log.warning("sapha: the hub sent a frame that is not JSON; ignored")
                continue
            if isinstance(frame, dict):
                return frame


def _close_of(closed: ConnectionClosed) -> Tuple[int, str]:
    """The close code and reason the hub sent, or 1006 when the connection just died."""
    if closed.rcvd is not None:
        return int(closed.rcvd.code), closed.rcvd.reason
    return 1006, "connection lost"


def _error_code(body: Any, default: str) -> str:
    """The ``code`` of a JSON error body, else ``default``."""
    try:
        return json.loads(body)["code"]
    except Exception:
        return default
