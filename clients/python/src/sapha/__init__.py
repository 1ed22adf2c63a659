"""Sapha: an asyncio client for the Sapha hub's live legislative events.

- :class:`Client`: a resumable WebSocket subscription (``async for item in client.events()``).
- :func:`state`, :func:`state_then_subscribe`, :func:`snapshot_then_subscribe`: the state
  API, and a subscription that starts exactly where a state answer ends.

The protocol is docs/PROTOCOL.md and the state API docs/STATE.md of the Sapha repository.
"""

from .backoff import Backoff
from .client import Client
from .errors import SaphaError
from .position import Position, RecentIds
from .state import parse_etag, snapshot_then_subscribe, state, state_then_subscribe, state_url, state_with_epoch
from .urls import ID_PATTERN, bill_topic, http_base, is_valid_id, ws_url

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "Client",
    "ID_PATTERN",
    "Position",
    "RecentIds",
    "SaphaError",
    "bill_topic",
    "http_base",
    "is_valid_id",
    "parse_etag",
    "state_url",
    "snapshot_then_subscribe",
    "state",
    "state_then_subscribe",
    "state_with_epoch",
    "ws_url",
]
