"""Several sends at once: a platform's round trip must not bound a process to a few messages a second.

Up to `outbox_send_concurrency` messages are under way at once, each to a different place; the
messages to one place go one after the other, in the order they were queued. Stopping lets the
sends under way finish and gives back the rest.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.outbox import POST, OutboxDispatcher, enqueue
from concierge.platform import Address, MessageRef, Outbound
from concierge.records import OutboxItem
from tests.conftest import make_settings, rows

ROUND_TRIP_S = 0.03


class SlowPlatform(LocalPlatform):
    """Each send takes a network's round trip; it notes how many are under way, in all and per place."""

    def __init__(self) -> None:
        super().__init__()
        self.under_way: Counter[str] = Counter()
        self.most_at_once = 0
        self.most_to_one_place = 0

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        place = address.channel or address.user
        self.under_way[place] += 1
        self.most_at_once = max(self.most_at_once, sum(self.under_way.values()))
        self.most_to_one_place = max(self.most_to_one_place, self.under_way[place])
        try:
            await asyncio.sleep(ROUND_TRIP_S)
            return await super().send(address, message)
        finally:
            self.under_way[place] -= 1


def queue(runtime, messages: list[tuple[str, str]]) -> None:
    """(member, text) DMs, queued in this order, each in a transaction of its own."""
    now = runtime.concierge.clock.now()
    for number, (member, text) in enumerate(messages):
        runtime.db.run_sync(lambda session, n=number, m=member, t=text: enqueue(
            session, key=f"dm-{n}", kind=POST, address=LocalPlatform.dm_address(m), message=Outbound(t), now=now))


@pytest.fixture
def slow_runtime(database_url, clock):
    def build(concurrency: int):
        platform = SlowPlatform()
        runtime = build_runtime(make_settings(database_url, outbox_send_concurrency=concurrency),
                                {"local": platform}, clock=clock)
        built.append(runtime)
        return runtime, platform

    built: list = []
    yield build
    for runtime in built:
        runtime.close()


async def test_messages_to_different_places_go_out_together_up_to_the_setting(slow_runtime):
    runtime, platform = slow_runtime(4)
    queue(runtime, [(f"m{n}", f"message {n}") for n in range(12)])
    assert await runtime.dispatcher.drain() == 12
    assert platform.most_at_once == 4, "four under way at once, never more"
    assert sorted(sent.message.text for sent in platform.sent) == sorted(f"message {n}" for n in range(12))
    assert len(rows(runtime, OutboxItem, OutboxItem.status == "sent")) == 12


async def test_one_at_a_time_when_set_so(slow_runtime):
    runtime, platform = slow_runtime(1)
    queue(runtime, [(f"m{n}", f"message {n}") for n in range(5)])
    assert await runtime.dispatcher.drain() == 5
    assert platform.most_at_once == 1


async def test_messages_to_one_place_keep_their_order_and_go_one_at_a_time(slow_runtime):
    runtime, platform = slow_runtime(4)
    queue(runtime, [("alice", "a1"), ("bob", "b1"), ("alice", "a2"), ("carol", "c1"), ("alice", "a3"),
                    ("bob", "b2"), ("alice", "a4")])
    assert await runtime.dispatcher.drain() == 7
    assert platform.most_at_once >= 3, "the three places went out together"
    assert platform.most_to_one_place == 1, "never two at once to one place"
    assert platform.dms_to("alice") == ["a1", "a2", "a3", "a4"]
    assert platform.dms_to("bob") == ["b1", "b2"]


async def test_stopping_lets_the_sends_under_way_finish_and_gives_back_the_rest(slow_runtime):
    runtime, platform = slow_runtime(4)
    queue(runtime, [(f"m{n}", f"message {n}") for n in range(12)])
    original = platform.send

    async def send_then_stop(address, message):
        sending = asyncio.ensure_future(original(address, message))
        await asyncio.sleep(ROUND_TRIP_S / 2)
        runtime.dispatcher.stop()  # SIGTERM while the first four sends are under way
        return await sending

    platform.send = send_then_stop
    await runtime.dispatcher.drain()
    statuses = Counter(item.status for item in rows(runtime, OutboxItem))
    assert statuses == {"sent": 4, "pending": 8}, "the four under way were sent and recorded; the rest given back"
    assert len(platform.sent) == 4


def test_the_concurrency_is_bounded_by_what_a_crash_may_leave_unrecorded(database_url, clock):
    with pytest.raises(ValueError, match="from 1 to 8"):
        OutboxDispatcher(None, {}, clock=clock, concurrency=9)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_settings(database_url, outbox_send_concurrency=0)
