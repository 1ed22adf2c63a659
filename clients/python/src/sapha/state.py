"""The state API (docs/STATE.md), and "snapshot, then subscribe" on top of it."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, AsyncIterator, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

from .backoff import Backoff
from .client import Client
from .errors import SaphaError
from .position import Item
from .urls import bill_topic, http_base

#: Statuses worth another try: rate limited, or the hub still building its state.
RETRY_STATUS = (429, 503)


#: Query parameters: a value, or a list of values sent as repeated keys
#: (``{"stage": ["HOUSE_R1", "SENATE_R1"]}`` is ``stage=HOUSE_R1&stage=SENATE_R1``).
Params = Mapping[str, Union[str, int, Sequence[Union[str, int]]]]

#: What stays as it is in a path given by hand: URL syntax and ``%`` escapes.
_PATH_SAFE = "/?&=,:;@!$'()*+~%[]"


def state_url(base_http_url: str, path: str, params: Optional[Params] = None) -> str:
    """The URL of a state API ``path`` on a hub, with ``params`` added.

    Text in ``path`` is percent-encoded as UTF-8 where it is not already
    (``/v1/bills?q=ภาษี`` works as written; existing ``%`` escapes and URL syntax
    are kept); ``params`` are form-encoded, lists as repeated keys.
    """
    url = http_base(base_http_url) + "/" + urllib.parse.quote(path.lstrip("/"), safe=_PATH_SAFE)
    if params:
        pairs = [
            (key, str(v))
            for key, value in params.items()
            for v in (value if isinstance(value, (list, tuple)) else [value])
        ]
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(pairs)
    return url


async def state(
    base_http_url: str,
    path: str,
    *,
    params: Optional[Params] = None,
    token: Optional[str] = None,
    timeout: float = 10.0,
    attempts: int = 5,
) -> Dict[str, Any]:
    """GETs a state API path (``/v1/bills/b-2566-0123``) and returns its JSON body.

    ``path`` may carry a query as plain text (``/v1/bills?q=ภาษี``), or pass
    ``params={"q": "ภาษี", "stage": ["HOUSE_R1", "SENATE_R1"]}`` (see :func:`state_url`).
    The body carries ``seq``, the stream position it reflects. ``429`` and
    ``503 state_not_ready`` are retried with backoff, up to ``attempts`` tries; other
    failures raise :class:`SaphaError` with the hub's ``code`` (``not_found``,
    ``bad_parameter``, ...) and ``status``.
    """
    body, _ = await state_with_epoch(
        base_http_url, path, params=params, token=token, timeout=timeout, attempts=attempts
    )
    return body


async def state_with_epoch(
    base_http_url: str,
    path: str,
    *,
    params: Optional[Params] = None,
    token: Optional[str] = None,
    timeout: float = 10.0,
    attempts: int = 5,
) -> Tuple[Dict[str, Any], Optional[str]]:
    """As :func:`state`, plus the stream epoch of the answer (from its ``ETag``,
    ``"<epoch>-<seq>-<variant>"``), or None when the hub sent none."""
    url = state_url(base_http_url, path, params)
    backoff = Backoff(initial=0.2, maximum=2.0)
    for attempt in range(attempts):
        try:
            body, etag = await asyncio.to_thread(_get_json, url, token, timeout)
        except SaphaError as e:
            if e.status in RETRY_STATUS and attempt + 1 < attempts:
                await asyncio.sleep(backoff.delay(attempt))
                continue
            raise
        return body, parse_etag(etag)[0]
    raise SaphaError("http", f"GET {url}: no attempt made (attempts={attempts})")


def parse_etag(etag: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    """``'"1872f0c3a9b4e2d0-1042-9ffaf8ee51afdfd7"'`` → ``("1872f0c3a9b4e2d0", 1042)``
    (the epoch and the position; the rest names the representation). The older
    ``"<epoch>-<seq>"`` form is read too. ``(None, None)`` otherwise."""
    if not etag:
        return None, None
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    parts = value.strip('"').split("-")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].isdigit():
        return None, None
    return parts[0], int(parts[1])


def _get_json(url: str, token: Optional[str], timeout: float) -> Tuple[Any, Optional[str]]:
    """A blocking GET (run in a thread): the decoded JSON body and the ``ETag``."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response), response.headers.get("ETag")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        code = body.get("code") if isinstance(body, dict) and body.get("code") else "http"
        message = body.get("message") if isinstance(body, dict) and body.get("message") else f"HTTP {e.code} from {url}"
        raise SaphaError(code, message, status=e.code, body=body) from None
    except (urllib.error.URLError, OSError) as e:
        raise SaphaError("http", f"GET {url} failed: {e}") from None


async def state_then_subscribe(
    base_http_url: str,
    path: str,
    topics: Iterable[str],
    *,
    token: Optional[str] = None,
    ws_url: Optional[str] = None,
    **client_options: Any,
) -> AsyncIterator[Item]:
    """Yields the state at ``path`` first, then every event of ``topics`` after it.

    The first item is ``{"type": "state", "path", "seq", "epoch", "body"}``; the
    subscription then starts with ``since=seq`` and that epoch, so the events that
    follow are exactly those after the state: no gap, no duplicate. The remaining
    items are those of :meth:`Client.events`. ``client_options`` go to :class:`Client`.
    """
    body, epoch = await state_with_epoch(base_http_url, path, token=token)
    seq = body.get("seq") if isinstance(body, dict) else None
    if not isinstance(seq, int):
        raise SaphaError("bad_frame", f"the answer of {path} has no seq")
    yield {"type": "state", "path": path, "seq": seq, "epoch": epoch, "body": body}
    client = Client(ws_url or base_http_url, topics, since=seq, epoch=epoch, token=token, **client_options)
    events = client.events()
    try:
        async for item in events:
            yield item
    finally:
        await events.aclose()
        await client.close()


async def snapshot_then_subscribe(
    base_http_url: str,
    bill_id: str,
    **options: Any,
) -> AsyncIterator[Item]:
    """One bill: ``GET /v1/bills/{bill_id}``, then its events (topic ``bill.<id>``) after it.

    The first item is ``{"type": "state", "seq", "epoch", "body": {"seq", "bill"}, ...}``.
    Options as for :func:`state_then_subscribe`. An invalid id raises
    ``SaphaError('invalid_id')`` before any request.
    """
    topic = bill_topic(bill_id)
    async for item in state_then_subscribe(base_http_url, f"/v1/bills/{bill_id}", [topic], **options):
        yield item
