"""The client's bookkeeping without a hub: resume position, gaps, resets, backoff, URLs."""

import pytest

from sapha import Backoff, Position, SaphaError, bill_topic, parse_etag, state_url, ws_url


def event(seq, event_id=None):
    return {"type": "event", "seq": seq, "topic": "bill.b-1.stage", "event_id": event_id or f"e-{seq}", "event": {}}


def test_fresh_start_subscribes_without_since_and_takes_the_ack_position():
    p = Position()
    assert p.subscribe_request("s1", ["bill.>"]) == {"op": "subscribe", "id": "s1", "topics": ["bill.>"]}
    p.on_welcome({"epoch": "e1"})
    items = p.on_subscribed({"seq": 42, "subscriptions": 1}, {"session": "s", "first_seq": 1})
    assert [i["type"] for i in items] == ["connected"]
    assert p.last_seq == 42 and p.epoch == "e1"
    assert p.subscribe_request("s2", ["bill.>"]) == {"op": "subscribe", "id": "s2", "topics": ["bill.>"], "since": 42, "epoch": "e1"}


def test_events_never_repeat_or_go_back():
    p = Position(since=10)
    assert p.on_event(event(10), False) is None  # already passed
    assert p.on_event(event(11), False)["seq"] == 11
    assert p.on_event(event(11), False) is None
    assert p.on_event(event(9, "e-old"), False) is None
    assert p.on_event(event(12, "e-11"), False) is None  # same event id, a re-publish
    assert p.last_seq == 12 and p.delivered == 1 and p.duplicates == 4


def test_history_lost_is_a_gap():
    p = Position(since=5, epoch="e1")
    p.on_welcome({"epoch": "e1"})
    items = p.on_subscribed({"since": 5, "recovered": False, "first_seq": 20, "seq": 30, "epoch": "e1"}, {})
    assert [i["type"] for i in items] == ["connected", "gap"]
    assert items[1]["first_seq"] == 20
    assert p.last_seq == 19


def test_a_position_beyond_the_stream_is_a_reset():
    p = Position(since=500, epoch="e1")
    items = p.on_subscribed({"since": 500, "recovered": False, "first_seq": 1, "seq": 30, "epoch": "e1"}, {})
    assert items[1]["type"] == "reset"
    assert p.last_seq == 0
    assert p.on_event(event(1), True)["seq"] == 1  # the new stream's events are delivered


def test_another_epoch_is_a_reset_even_with_more_events():
    p = Position(since=5, epoch="old")
    items = p.on_subscribed({"since": 5, "recovered": False, "first_seq": 9, "seq": 900, "epoch": "new"}, {})
    assert items[1]["type"] == "reset" and items[1]["old_epoch"] == "old"
    assert p.epoch == "new"


def test_recovered_resume_keeps_the_position():
    p = Position(since=5, epoch="e1")
    items = p.on_subscribed({"since": 5, "recovered": True, "first_seq": 1, "seq": 9, "epoch": "e1"}, {})
    assert [i["type"] for i in items] == ["connected"] and p.last_seq == 5


def test_backoff_grows_is_capped_and_jittered():
    top = Backoff(initial=0.5, maximum=4.0, factor=2.0, jitter=0.5, random=lambda: 0.0)
    assert [top.delay(a) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert top.delay(10_000) == 4.0
    assert top.delay(5, quick=True) == 0.5
    low = Backoff(initial=0.5, maximum=4.0, jitter=0.5, random=lambda: 1.0)
    assert low.delay(3) == 2.0


def test_urls_and_ids():
    assert ws_url("https://hub.example.org") == "wss://hub.example.org/v1/ws?batch=true"
    assert ws_url("ws://h:8080/v1/ws?topics=x&since=3&token=t") == "ws://h:8080/v1/ws?token=t&batch=true"
    assert bill_topic("b-2566-0123") == "bill.b-2566-0123"
    for bad in (">", "*", "B-1", "", "a.b", "x" * 65):
        with pytest.raises(SaphaError):
            bill_topic(bad)
    assert parse_etag('"18ec6849-1042"') == ("18ec6849", 1042)
    assert parse_etag('"18ec6849-1042-9ffaf8ee51afdfd7"') == ("18ec6849", 1042)
    assert parse_etag('W/"18ec6849-1042-9ffaf8ee51afdfd7"') == ("18ec6849", 1042)
    assert parse_etag(None) == (None, None)


def test_state_urls_encode_text_once():
    base = "http://h:8080"
    thai = "%E0%B8%A0%E0%B8%B2%E0%B8%A9%E0%B8%B5"
    # Text written as is, or already encoded: the same URL, ASCII only.
    assert state_url(base, "/v1/bills?q=ภาษี") == f"{base}/v1/bills?q={thai}"
    assert state_url(base, f"/v1/bills?q={thai}") == f"{base}/v1/bills?q={thai}"
    assert state_url(base, "v1/bills?stage=A,B&limit=5") == f"{base}/v1/bills?stage=A,B&limit=5"
    # params: form-encoded, lists as repeated keys, after a query in the path.
    assert (
        state_url(base, "/v1/bills", {"q": "ภาษี อากร", "stage": ["A", "B"], "limit": 5})
        == f"{base}/v1/bills?q={thai}+%E0%B8%AD%E0%B8%B2%E0%B8%81%E0%B8%A3&stage=A&stage=B&limit=5"
    )
    assert state_url(base, "/v1/bills?sort=id", {"limit": 2}) == f"{base}/v1/bills?sort=id&limit=2"
    state_url(base, "/v1/bills?q=ภาษี").encode("ascii")
