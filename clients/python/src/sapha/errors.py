"""Errors raised by the Sapha client."""

from __future__ import annotations

from typing import Any, Optional


class SaphaError(Exception):
    """An error from the hub or the client, with a stable machine-readable ``code``.

    Hub codes are those of docs/PROTOCOL.md (``invalid_topic``, ``forbidden_topic``,
    ``unauthorized``, ...). The client's own: ``gave_up`` (``max_attempts`` reached),
    ``bad_frame`` (the hub broke the protocol), ``http`` (a state API request failed).
    """

    def __init__(self, code: str, message: str, *, status: Optional[int] = None, body: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        #: The HTTP status, for errors that came with one.
        self.status = status
        #: The decoded JSON error body (or frame), when there was one.
        self.body = body
