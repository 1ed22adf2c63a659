"""The resume position: the last stream ``seq``, its epoch, and the recent event ids.

Pure bookkeeping with no I/O, so that the rules of docs/PROTOCOL.md ("Resume") can
be tested without a hub. :class:`sapha.Client` feeds it the hub's frames and yields
what it returns.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, List, Optional

Item = Dict[str, Any]


class RecentIds:
    """Remembers the last ``capacity`` event ids, forgetting the oldest first."""

    def __init__(self, capacity: int = 4096):
        self.capacity = max(1, int(capacity))
        self._ids: "OrderedDict[str, None]" = OrderedDict()

    def seen(self, event_id: str) -> bool:
        """True if ``event_id`` was seen; otherwise remember it and return False."""
        if event_id in self._ids:
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._ids)


class Position:
    """Where a client is in the stream, and which events it has already delivered.

    ``last_seq`` only grows, except after a stream reset (then it is set to
    ``first_seq - 1`` of the new stream, and a ``reset`` item says so). An event
    whose ``seq`` is not above ``last_seq``, or whose ``event_id`` was delivered
    recently, is dropped: the caller never sees a duplicate or a step back.
    """

    def __init__(self, since: Optional[int] = None, epoch: Optional[str] = None, dedupe_window: int = 4096):
        if since is not None and (not isinstance(since, int) or since < 0):
            raise ValueError("since must be a stream sequence (an int >= 0) or None")
        #: The last stream sequence delivered or known to be passed: the resume point.
        self.last_seq: Optional[int] = since
        #: The stream epoch ``last_seq`` belongs to.
        self.epoch: Optional[str] = epoch or None
        self.delivered = 0
        self.duplicates = 0
        self._recent = RecentIds(dedupe_window)
        self._welcome_epoch: Optional[str] = None

    def subscribe_request(self, request_id: str, topics: List[str]) -> Item:
        """The first ``subscribe`` of a connection: with ``since`` and ``epoch`` when resuming."""
        request: Item = {"op": "subscribe", "id": request_id, "topics": list(topics)}
        if self.last_seq is not None:
            request["since"] = self.last_seq
            if self.epoch:
                request["epoch"] = self.epoch
        return request

    def on_welcome(self, frame: Item) -> None:
        """Notes the epoch of the hub's ``welcome`` (adopted once the subscription is acked)."""
        self._welcome_epoch = frame.get("epoch") or None

    def on_subscribed(self, ack: Item, welcome: Item) -> List[Item]:
        """Handles the ack of the first subscribe; returns ``connected`` and maybe ``gap``/``reset``."""
        resumed = "since" in ack
        old_epoch = self.epoch
        new_epoch = ack.get("epoch") or self._welcome_epoch or old_epoch
        items: List[Item] = [
            {
                "type": "connected",
                "epoch": new_epoch,
                "session": welcome.get("session"),
                "head_seq": ack.get("seq"),
                "first_seq": welcome.get("first_seq"),
                "since": ack.get("since"),
                "recovered": ack.get("recovered") if resumed else None,
            }
        ]
        if resumed and ack.get("recovered") is False:
            since = ack["since"]
            first_seq = ack.get("first_seq") or 1
            epoch_changed = bool(old_epoch and ack.get("epoch") and ack["epoch"] != old_epoch)
            # History lost: the events in (since, first_seq) are gone. Reset: the
            # position does not exist in this stream (recreated or restored).
            kind = "reset" if first_seq <= since or epoch_changed else "gap"
            items.append({"type": kind, "since": since, "first_seq": first_seq, "head_seq": ack.get("seq"),
                          "old_epoch": old_epoch, "epoch": new_epoch})
            self.last_seq = max(0, first_seq - 1)
        elif not resumed:
            self.advance(ack.get("seq"))
        self.epoch = new_epoch
        return items

    def advance(self, seq: Any) -> None:
        """Moves the position forward to ``seq`` (an ack's or a ``live`` frame's), never back."""
        if isinstance(seq, int) and (self.last_seq is None or seq > self.last_seq):
            self.last_seq = seq

    def on_event(self, frame: Item, replayed: bool) -> Optional[Item]:
        """The item to deliver for an ``event`` frame, or None for a duplicate or a step back."""
        seq = frame.get("seq")
        if not isinstance(seq, int):
            return None
        event = frame.get("event")
        event_id = frame.get("event_id") or (event.get("event_id") if isinstance(event, dict) else None)
        if self.last_seq is not None and seq <= self.last_seq:
            self.duplicates += 1
            return None
        self.last_seq = seq
        if event_id and self._recent.seen(event_id):
            self.duplicates += 1
            return None
        self.delivered += 1
        return {
            "type": "event",
            "seq": seq,
            "topic": frame.get("topic"),
            "secondary_topic": frame.get("secondary_topic"),
            "event_id": event_id,
            "event": event,
            "replayed": replayed,
        }
