"""The client against a real hub: order, a hub restart mid-stream, snapshot then subscribe."""

import asyncio
import signal

import pytest

from collector import Collector
from hub import event_ids, scenario_lines
from sapha import Backoff, Client, SaphaError, snapshot_then_subscribe, state

# Every test is bounded by this (seconds), on top of the bounded waits inside it.
TEST_TIMEOUT = 90
FAST = Backoff(initial=0.05, maximum=0.5)
BILL = "b-2566-0001"


def run(coro):
    """Runs a test coroutine, failing it if it takes longer than TEST_TIMEOUT."""
    return asyncio.run(asyncio.wait_for(coro, TEST_TIMEOUT))


def connected(n=1):
    return lambda c: len(c.of("connected")) >= n


def has_events(n):
    return lambda c: len(c.events) >= n


def assert_exactly_once_in_order(events, lines):
    seqs = [e["seq"] for e in events]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), "seq must strictly increase"
    assert [e["event_id"] for e in events] == event_ids(lines), "every event once, in order"


def test_receives_events_in_order(stack):
    lines = scenario_lines()[:200]

    async def main():
        client = Client(stack.ws_url, ["bill.>"], backoff=FAST, max_attempts=5)
        c = Collector(client.events())
        await c.wait_for("connected", connected())
        first = c.of("connected")[0]
        assert first["epoch"], "the hub names the stream's epoch"
        assert first["since"] is None
        await asyncio.to_thread(stack.publish, lines)
        await c.wait_for("every event", has_events(len(lines)))
        await c.stop()

        events = c.events
        assert_exactly_once_in_order(events, lines)
        assert [e["seq"] for e in events] == list(range(1, len(lines) + 1))
        assert all(e["topic"].startswith("bill.") and e["event"]["kind"] == "bill.stage_changed" for e in events)
        assert client.last_seq == len(lines) and client.epoch == first["epoch"]

    run(main())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_hub_restart_mid_stream(stack, sig):
    lines = scenario_lines()[:400]
    paced, after = lines[:300], lines[300:]

    async def main():
        client = Client(stack.ws_url, ["bill.>"], backoff=FAST, max_attempts=50)
        c = Collector(client.events())
        await c.wait_for("connected", connected())
        player = stack.play_paced(paced)
        await c.wait_for("the first events", has_events(30))
        # Mid-stream: the player keeps publishing into NATS while no hub runs,
        # and the client keeps trying to reconnect.
        await asyncio.to_thread(stack.stop_hub, sig)
        assert player.poll() is None, "the player should still be publishing when the hub stops"
        await c.wait_for("a failed reconnect attempt", lambda c: any(d["attempt"] >= 2 for d in c.of("disconnected")))
        down_at = len(c.events)
        await asyncio.to_thread(stack.start_hub)
        await c.wait_for("the reconnect", connected(2))
        await asyncio.to_thread(player.wait, 30)
        await asyncio.to_thread(stack.publish, after)
        await c.wait_for("every event", has_events(len(lines)))
        await asyncio.sleep(0.3)  # anything extra (a duplicate) would show up now
        await c.stop()

        assert down_at < len(paced), "the hub was down mid-stream"
        assert_exactly_once_in_order(c.events, lines)
        resumed = c.of("connected")[-1]
        assert resumed["since"] is not None and resumed["recovered"] is True
        assert not c.of("gap") and not c.of("reset")
        assert any(e["replayed"] for e in c.events), "what was published while down was replayed"
        if sig == signal.SIGTERM:
            assert c.of("disconnected")[0]["code"] == 1001, "a hub shutting down says going away"
        assert client.stats["reconnects"] >= 2

    run(main())


def test_snapshot_then_subscribe(stack):
    lines = scenario_lines()[:400]
    bill_lines = [line for line in lines if f'"aggregate_id":"{BILL}"' in line]
    assert len(bill_lines) == 12  # b-2566-0001 in the first 400 lines of the generated file (regenerated for issue 22: APPROVED stages shift the lines)

    async def main():
        await asyncio.to_thread(stack.publish, lines[:100])
        # Wait until the hub's state has taken in the first 100 events.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (await state(stack.http_url, f"/v1/bills/{BILL}"))["seq"] < 100:
            assert loop.time() < deadline, "the state did not reach seq 100"
            await asyncio.sleep(0.05)
        # The rest is published while the snapshot is taken and the subscription starts.
        player = stack.play_paced(lines[100:])
        c = Collector(snapshot_then_subscribe(stack.http_url, BILL, backoff=FAST, max_attempts=5))
        await c.wait_for("the state", lambda c: len(c.items) >= 1)
        snapshot = c.items[0]
        assert snapshot["type"] == "state"
        assert snapshot["seq"] >= 100 and snapshot["epoch"]
        bill = snapshot["body"]["bill"]
        assert bill["bill_id"] == BILL
        in_state = [entry["event_id"] for entry in bill["timeline"]]
        assert all(entry["seq"] <= snapshot["seq"] for entry in bill["timeline"])
        assert event_ids(bill_lines)[: len(in_state)] == in_state
        expected_later = event_ids(bill_lines)[len(in_state):]
        assert expected_later, "some of the bill's events come after the snapshot"

        await c.wait_for("the bill's later events", has_events(len(expected_later)))
        await asyncio.to_thread(player.wait, 30)
        await asyncio.sleep(0.5)  # anything extra (another bill's, a duplicate) would show up now
        await c.stop()

        events = c.events
        assert [e["event_id"] for e in events] == expected_later
        assert all(e["seq"] > snapshot["seq"] for e in events)
        assert all(e["topic"].startswith(f"bill.{BILL}.") for e in events)
        subscribed = c.of("connected")[0]
        assert subscribed["since"] == snapshot["seq"] and subscribed["recovered"] is True
        assert subscribed["epoch"] == snapshot["epoch"]

    run(main())


def test_close_ends_the_loop_and_a_refused_topic_is_fatal(stack):
    async def main():
        client = Client(stack.ws_url, ["bill.>"], backoff=FAST, max_attempts=5)
        c = Collector(client.events())
        await c.wait_for("connected", connected())
        await client.close()
        await c.wait_for("the end of the loop", lambda c: c._task.done(), timeout=5)
        assert c.error is None

        # The hub refuses the topic: reconnecting would not help, so events() raises.
        bad = Client(stack.ws_url, ["bill.B-1"], backoff=FAST, max_attempts=5)
        with pytest.raises(SaphaError) as refused:
            async for _ in bad.events():
                pass
        assert refused.value.code == "invalid_topic"

    run(main())


def test_gives_up_after_max_attempts(stack):
    async def main():
        stack.stop_hub()
        client = Client(stack.ws_url, ["bill.>"], backoff=FAST, max_attempts=3)
        items = []
        with pytest.raises(SaphaError) as gave_up:
            async for item in client.events():
                items.append(item)
        assert gave_up.value.code == "gave_up"
        assert [i["attempt"] for i in items] == [1, 2, 3]
        assert all(i["type"] == "disconnected" and i["delay"] <= FAST.maximum for i in items)

    run(main())


def test_state_takes_thai_and_lists(stack):
    async def main():
        # Before: UnicodeEncodeError unless the caller encoded the path by hand.
        as_written = await state(stack.http_url, "/v1/bills?q=ภาษี")
        with_params = await state(stack.http_url, "/v1/bills", params={"q": "ภาษี"})
        assert as_written["total"] == with_params["total"]
        both = await state(stack.http_url, "/v1/bills", params={"stage": ["ENACTED", "PROPOSED"]})
        commas = await state(stack.http_url, "/v1/bills?stage=ENACTED,PROPOSED")
        assert both["total"] == commas["total"]
        with pytest.raises(SaphaError) as bad:
            await state(stack.http_url, "/v1/bills", params={"sort": ["id", "moved_asc"]})
        assert bad.value.code == "bad_parameter" and bad.value.status == 400

    run(main())


def test_state_errors(stack):
    async def main():
        with pytest.raises(SaphaError) as missing:
            await state(stack.http_url, "/v1/bills/b-0000-0000")
        assert missing.value.code == "not_found" and missing.value.status == 404
        with pytest.raises(SaphaError) as bad:
            async for _ in snapshot_then_subscribe(stack.http_url, ">"):
                pass
        assert bad.value.code == "invalid_id"

    run(main())
