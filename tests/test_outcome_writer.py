"""Outcomes written while the next sends go out: gathered after fast sends, at once after slow ones,
never more than MAX_UNRECORDED uncommitted, and a crash with several uncommitted doubles nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.outbox import POST, begin_hand_off, end_hand_off, enqueue
from concierge.outbox.outcome import Sent
from concierge.outbox.outcome_writer import MAX_UNRECORDED, SLOW_SEND_S, OutcomeWriter
from concierge.outbox.queue import Claimed
from concierge.platform import Address, MessageRef, Outbound
from concierge.records import OutboxItem
from tests.conftest import make_settings, rows


def sent(number: int) -> Sent:
    address = Address("local", f"dm-m{number}", f"m{number}")
    return Sent(Claimed(number, POST, "local", address, Outbound("hi"), None), MessageRef(address, str(number)))


class Writes:
    """A stand-in database: each write is a future the test completes (or fails) when it likes."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], asyncio.Future[None]]] = []

    def __call__(self, outcomes):
        future = asyncio.get_running_loop().create_future()
        self.calls.append(([o.item.id for o in outcomes], future))
        return future

    def commit(self, index: int = -1) -> None:
        self.calls[index][1].set_result(None)


async def sent_through(writer: OutcomeWriter, number: int, send_s: float) -> None:
    """One send as the dispatcher makes it: room first, then its outcome."""
    await writer.room()
    writer.add(sent(number), send_s=send_s)


async def test_after_fast_sends_outcomes_wait_for_company():
    writes = Writes()
    writer = OutcomeWriter(writes)
    for number in range(5):
        await sent_through(writer, number, 0.0001)
    assert writes.calls == [], "nothing written per send"
    assert [o.item.id for o in await writer.settle()] == [0, 1, 2, 3, 4], "the caller writes them together"


async def test_after_a_slow_send_the_outcome_is_written_at_once_and_later_ones_right_after_the_write_in_flight():
    writes = Writes()
    writer = OutcomeWriter(writes)
    await sent_through(writer, 1, SLOW_SEND_S)
    assert [ids for ids, _ in writes.calls] == [[1]]
    await sent_through(writer, 2, SLOW_SEND_S)
    await sent_through(writer, 3, SLOW_SEND_S)
    assert [ids for ids, _ in writes.calls] == [[1]], "one write in flight at a time"
    writes.commit()
    await asyncio.sleep(0)  # the write's completion is told to the writer
    assert [ids for ids, _ in writes.calls] == [[1], [2, 3]], "the next write takes all that waited, at once"
    await sent_through(writer, 4, SLOW_SEND_S)
    writes.commit()
    await asyncio.sleep(0)
    assert [ids for ids, _ in writes.calls] == [[1], [2, 3], [4]]
    writes.commit()
    assert await writer.settle() == []
    assert writer.uncommitted == 0


async def test_flush_writes_what_waits_without_waiting_for_the_write():
    writes = Writes()
    writer = OutcomeWriter(writes)
    for number in range(3):
        await sent_through(writer, number, 0.0)
    writer.flush()
    assert [ids for ids, _ in writes.calls] == [[0, 1, 2]]
    await sent_through(writer, 3, 0.0)
    writer.flush()
    assert [ids for ids, _ in writes.calls] == [[0, 1, 2]], "one write in flight at a time"
    writes.commit()
    await asyncio.sleep(0)
    assert [ids for ids, _ in writes.calls] == [[0, 1, 2], [3]], "chained behind the write in flight"


async def test_the_next_send_waits_while_the_limit_is_uncommitted():
    writes = Writes()
    writer = OutcomeWriter(writes, limit=3)
    for number in range(3):
        await sent_through(writer, number, 0.0)
    waiting = asyncio.ensure_future(writer.room())
    await asyncio.sleep(0.01)
    assert not waiting.done(), "three uncommitted: no fourth send"
    assert [ids for ids, _ in writes.calls] == [[0, 1, 2]], "waiting, it writes what it holds"
    writes.commit()
    await asyncio.wait_for(waiting, 1)
    assert writer.uncommitted == 1, "the fourth send, under way"


async def test_sends_under_way_count_against_the_limit():
    """Several sends at once: each counts from `room` until its outcome is added, and the outcome until
    it is committed."""
    writes = Writes()
    writer = OutcomeWriter(writes, limit=3)
    for _ in range(3):
        await writer.room()  # three sends under way, none back yet
    fourth = asyncio.ensure_future(writer.room())
    await asyncio.sleep(0.01)
    assert not fourth.done(), "three sends under way: no fourth"
    writer.add(sent(0), send_s=0.0)
    await asyncio.sleep(0.01)
    assert not fourth.done(), "the first is back but its outcome is not committed"
    assert [ids for ids, _ in writes.calls] == [[0]], "waiting, it writes what it holds"
    writes.commit()
    await asyncio.wait_for(fourth, 1)
    fifth = asyncio.ensure_future(writer.room())
    await asyncio.sleep(0.01)
    assert not fifth.done()
    writer.abandon()  # a send cut short
    await asyncio.wait_for(fifth, 1)
    assert writer.uncommitted == 3


async def test_a_failed_write_fails_the_round_once():
    writes = Writes()
    writer = OutcomeWriter(writes, limit=2)
    await sent_through(writer, 1, SLOW_SEND_S)
    writes.calls[0][1].set_exception(RuntimeError("database gone"))
    await sent_through(writer, 2, 0.0)
    with pytest.raises(RuntimeError, match="database gone"):
        await writer.room()
    assert [o.item.id for o in await writer.settle()] == [2], "raised once; what waited is still there"


def queue_dms(runtime, count: int) -> None:
    now = runtime.concierge.clock.now()
    for number in range(count):
        runtime.db.run_sync(lambda session, n=number: enqueue(
            session, key=f"dm-{n}", kind=POST, address=LocalPlatform.dm_address(f"m{n}"),
            message=Outbound(f"message {n}"), now=now))


class Watching(LocalPlatform):
    """Counts, at each send, the messages it has that the database does not record as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.runtime = None
        self.most_uncommitted = 0

    async def send(self, address, message):
        committed = len(rows(self.runtime, OutboxItem, OutboxItem.status == "sent"))
        self.most_uncommitted = max(self.most_uncommitted, len(self.sent) + 1 - committed)  # + this one
        return await super().send(address, message)


async def test_at_most_the_limit_of_sends_is_ever_uncommitted(database_url, clock):
    platform = Watching()
    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    platform.runtime = runtime
    try:
        queue_dms(runtime, 30)
        assert await runtime.dispatcher.drain() == 30
        assert len(platform.sent) == 30
        assert len(rows(runtime, OutboxItem, OutboxItem.status == "sent")) == 30
        assert 2 <= platform.most_uncommitted <= MAX_UNRECORDED, platform.most_uncommitted
    finally:
        runtime.close()


async def test_a_crash_with_several_sends_uncommitted_doubles_none_of_them(database_url, clock):
    """The outcome writes are lost with the process: every message it sent is found on the platform
    by the next process and not sent again; the ones it never tried are sent once."""
    platform = LocalPlatform()  # the platform outlives the process, and remembers what it got
    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    queue_dms(runtime, 20)
    runtime.dispatcher._write_outcomes = lambda outcomes: asyncio.get_running_loop().create_future()  # never commits
    dying = asyncio.ensure_future(runtime.dispatcher.drain())
    for _ in range(200):
        if len(platform.sent) >= MAX_UNRECORDED:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(platform.sent) == MAX_UNRECORDED, "it stopped at the limit, waiting for its writes"
    dying.cancel()  # kill -9: nothing more is written
    runtime.close()

    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    try:
        if "postgresql" in database_url:
            clock.advance(3600)  # the dead process's leases ran out
        else:
            assert await runtime.dispatcher.release_own_leases() == 20
        await runtime.dispatcher.drain()
        assert sorted(sent.message.text for sent in platform.sent) == sorted(f"message {n}" for n in range(20))
        assert len(rows(runtime, OutboxItem, OutboxItem.status == "sent")) == 20
    finally:
        runtime.close()


async def test_stopping_writes_the_outcomes_it_knows_and_gives_back_the_rest(database_url, clock):
    platform = LocalPlatform()
    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    try:
        queue_dms(runtime, 10)
        original = platform.send

        async def send_then_stop(address, message):
            ref = await original(address, message)
            if len(platform.sent) == 3:
                runtime.dispatcher.stop()  # SIGTERM while sending the third
            return ref

        platform.send = send_then_stop
        await runtime.dispatcher.drain()
        statuses = sorted(item.status for item in rows(runtime, OutboxItem))
        assert statuses == ["pending"] * 7 + ["sent"] * 3
    finally:
        runtime.close()


async def wait_for(condition, seconds: float = 2.0) -> bool:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


async def test_the_running_dispatcher_records_what_it_sent_without_waiting_for_more_work(desk, runtime, platform):
    await desk.command("admin", "member add alice premium")
    runtime.dispatcher.poll_interval_s = 60  # no later round would write it
    task = asyncio.create_task(runtime.dispatcher.run())
    try:
        await desk.member_writes("alice", "Question?")
        assert await wait_for(lambda: platform.threads_opened())
        assert await wait_for(lambda: rows(runtime, OutboxItem, OutboxItem.kind == "open_thread",
                                           OutboxItem.status == "sent")), "its outcome was written"
    finally:
        task.cancel()


def claimed_dm(runtime, number: int):
    """A DM queued and claimed by its transaction, as the core's units hand them over."""
    now = runtime.concierge.clock.now()

    def work(session):
        begin_hand_off(session, now + timedelta(seconds=60))
        enqueue(session, key=f"dm-{number}", kind=POST, address=LocalPlatform.dm_address(f"m{number}"),
                message=Outbound(f"message {number}"), now=now)
        return end_hand_off(session).claimed

    return runtime.db.run_sync(work)


async def test_the_next_hand_off_goes_out_while_the_last_outcome_is_being_written(runtime, platform):
    """The dispatcher does not wait for an outcome's commit before sending what was handed over next."""
    writes: list[list[int]] = []

    def hanging_write(outcomes):  # a database that takes its time to commit
        writes.append([outcome.item.id for outcome in outcomes])
        return asyncio.get_running_loop().create_future()

    runtime.dispatcher._write_outcomes = hanging_write
    runtime.dispatcher.poll_interval_s = 60
    task = asyncio.create_task(runtime.dispatcher.run())
    try:
        runtime.dispatcher.hand_over(claimed_dm(runtime, 1), set())
        assert await wait_for(lambda: writes), "the first outcome's write started"
        runtime.dispatcher.hand_over(claimed_dm(runtime, 2), set())
        assert await wait_for(lambda: len(platform.dms_to("m2")) == 1), \
            "the second went out while the first one's outcome was being written"
        assert platform.dms_to("m1") == ["message 1"]
    finally:
        task.cancel()


async def test_a_claim_sees_the_outcomes_committed_waiting_for_the_write_only_where_it_must(runtime, database_url):
    """A claim must not find sent messages unsent. On PostgreSQL writes run side by side, so it waits for the
    write in flight; on SQLite the one database thread runs units in the order queued, so the claim is
    queued behind that write at once instead of waiting for it first."""
    writes: list[asyncio.Future] = []
    claims_queued_with_the_write_done: list[bool] = []

    def held_write(outcomes):
        writes.append(asyncio.get_running_loop().create_future())
        return writes[-1]

    record_run = runtime.dispatcher._record_run

    def spying_record_run(work):
        claims_queued_with_the_write_done.append(writes[-1].done())
        return record_run(work)

    runtime.dispatcher._write_outcomes = held_write
    runtime.dispatcher._scan_wanted = False  # a hand-off alone: its outcome is written, not claimed with
    runtime.dispatcher.hand_over(claimed_dm(runtime, 1), set())
    assert await runtime.dispatcher.deliver_due(scan=False, settle=False) == 1
    assert len(writes) == 1 and not writes[0].done(), "the outcome's write is in flight"
    runtime.dispatcher._record_run = spying_record_run
    scanning = asyncio.ensure_future(runtime.dispatcher.deliver_due(scan=True, settle=False))
    await asyncio.sleep(0.05)
    if "sqlite" in database_url:
        assert claims_queued_with_the_write_done == [False], "queued behind the write, not after it"
    else:
        assert claims_queued_with_the_write_done == [], "waiting for the write"
    writes[0].set_result([])
    await asyncio.wait_for(scanning, 5)
    assert len(claims_queued_with_the_write_done) == 1
