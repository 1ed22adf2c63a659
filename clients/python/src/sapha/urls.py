"""URLs and ids: the hub's WebSocket URL from any base, and checked topic builders."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import SaphaError

#: Ids of bills and sittings: ASCII ``[a-z0-9_-]``, 1 to 64 bytes.
ID_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}\Z")


def is_valid_id(value: object) -> bool:
    """Whether ``value`` is a valid bill or sitting id. Check user input with it."""
    return isinstance(value, str) and ID_PATTERN.match(value) is not None


def bill_topic(bill_id: str) -> str:
    """``bill.<id>``, every event of one bill; raises ``SaphaError('invalid_id')`` otherwise.

    Never build a topic from raw input: an id of ``>`` or ``*`` would widen it.
    """
    if not is_valid_id(bill_id):
        raise SaphaError("invalid_id", f"{str(bill_id)[:80]!r} is not a bill id: use a-z, 0-9, '_' and '-', 1 to 64 characters")
    return f"bill.{bill_id}"


def ws_url(base: str) -> str:
    """The WebSocket URL of ``/v1/ws`` from a ``ws(s)://`` URL or an ``http(s)://`` base.

    Topics and the resume point are sent in the ``subscribe`` request, so ``topics``
    and ``since`` are removed from the query; ``batch=true`` is added (the client
    reads batch frames). Other parameters are kept.
    """
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise SaphaError("bad_option", f"url must be ws(s):// or http(s)://, not {base!r}")
    path = parts.path if parts.path not in ("", "/") else "/v1/ws"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("topics", "since", "epoch", "batch")]
    query.append(("batch", "true"))
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def http_base(base: str) -> str:
    """The ``http(s)://host[:port]`` origin of a hub, from an http(s) or ws(s) URL."""
    parts = urlsplit(base)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https"):
        raise SaphaError("bad_option", f"url must be http(s):// or ws(s)://, not {base!r}")
    return urlunsplit((scheme, parts.netloc, "", "", ""))
