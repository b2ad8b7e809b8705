"""The outbox: retries with backoff, rate limits, permanent failures, order, leases, crashes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock
from concierge.outbox import OutboxDispatcher
from concierge.platform import PlatformDown, RateLimited, Unreachable
from concierge.records import InboxItem, OutboxItem
from tests.conftest import make_settings, rows


async def open_conversation(desk):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    return desk.threads()[0]


async def test_transient_failure_is_retried_with_backoff(desk, platform, runtime, clock):
    thread = await open_conversation(desk)
    platform.fail_next(PlatformDown("503"), PlatformDown("503"))
    await desk.staff_writes("bob", thread, "Answer.")
    await desk.settle()
    assert platform.dms_to("alice") == []
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.status == "pending" and item.attempts == 1
    delay = (item.next_attempt_at - clock.now()).total_seconds()
    assert 0.5 <= delay <= 1.0  # base 1 s with equal jitter
    await desk.settle()
    assert platform.dms_to("alice") == [], "not retried before its time"
    clock.advance(1.0)
    await desk.settle()
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.attempts == 2 and 1.0 <= (item.next_attempt_at - clock.now()).total_seconds() <= 2.0
    clock.advance(2.0)
    await desk.settle()
    assert platform.dms_to("alice") == ["Answer."]
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.status == "sent"


async def test_rate_limited_waits_for_retry_after_and_spends_no_attempt(desk, platform, runtime, clock):
    thread = await open_conversation(desk)
    platform.fail_next(RateLimited(30), RateLimited(30), RateLimited(30), RateLimited(30), RateLimited(30))
    await desk.staff_writes("bob", thread, "Answer.")
    for _ in range(5):
        await desk.settle()
        clock.advance(29)
        await desk.settle()
        assert platform.dms_to("alice") == []
        clock.advance(1)
    await desk.settle()
    assert platform.dms_to("alice") == ["Answer."]
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.attempts == 0 and item.status == "sent"


async def test_unreachable_member_is_reported_in_the_thread(desk, platform, runtime):
    thread = await open_conversation(desk)
    platform.fail_next(Unreachable("user has closed their DMs"))
    await desk.staff_writes("bob", thread, "Answer.")
    await desk.settle()
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.status == "failed" and "closed their DMs" in item.last_error
    assert platform.thread_posts(thread)[-1] == "Could not deliver to the member: user has closed their DMs"


async def test_gives_up_after_max_attempts_and_reports(desk, platform, runtime, clock):
    thread = await open_conversation(desk)
    platform.fail_next(*[PlatformDown("down")] * 4)  # make_settings: outbox_max_attempts=4
    await desk.staff_writes("bob", thread, "Answer.")
    for _ in range(6):
        await desk.settle()
        clock.advance(600)
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.status == "failed" and item.attempts == 4 and "gave up after 4 tries" in item.last_error
    assert platform.thread_posts(thread)[-1].startswith("Could not deliver to the member: gave up")


async def test_messages_of_a_conversation_keep_their_order(desk, platform, clock):
    thread = await open_conversation(desk)
    platform.fail_next(PlatformDown("blip"))
    for text in ("one", "two", "three"):
        await desk.staff_writes("bob", thread, text)
    await desk.settle()
    assert platform.dms_to("alice") == [], "later messages wait for the first"
    clock.advance(5)
    await desk.settle()
    assert platform.dms_to("alice") == ["one", "two", "three"]


async def test_follow_up_waits_for_the_thread_to_open(desk, platform, clock):
    await desk.command("admin", "member add alice premium")
    platform.fail_next(PlatformDown("blip"))
    await desk.member_writes("alice", "first")
    await desk.member_writes("alice", "second")
    await desk.settle()
    assert platform.sent == []
    clock.advance(5)
    await desk.settle()
    [thread] = desk.threads()
    assert platform.thread_posts(thread) == ["first", "alice: second"]


async def test_redelivered_event_has_one_effect(desk, runtime, platform):
    await desk.command("admin", "member add alice premium")
    for _ in range(3):
        await desk.member_writes("alice", "hello", event_id="Ev123")
    await desk.settle()
    assert len(platform.threads_opened()) == 1
    assert len(rows(runtime, InboxItem, InboxItem.event_id == "Ev123")) == 1


async def test_a_lease_left_by_a_dead_worker_is_taken_again_once(desk, runtime, platform, clock):
    thread = await open_conversation(desk)
    runtime.concierge.on_queued = lambda claimed, waiting: None  # claimed, then the worker dies
    await desk.staff_writes("bob", thread, "Answer.")
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.status == "sending"
    await desk.settle()
    assert platform.dms_to("alice") == [], "the lease still holds"
    clock.advance(61)
    await desk.settle()
    await desk.settle()
    assert platform.dms_to("alice") == ["Answer."]


async def test_the_running_dispatcher_is_woken_at_once(desk, runtime, platform):
    await desk.command("admin", "member add alice premium")
    runtime.dispatcher.poll_interval_s = 60  # only a wake-up can make it deliver in time
    task = asyncio.create_task(runtime.dispatcher.run())
    try:
        await asyncio.sleep(0.05)
        await desk.member_writes("alice", "Question?")
        for _ in range(100):
            if platform.threads_opened():
                break
            await asyncio.sleep(0.01)
        assert len(platform.threads_opened()) == 1
    finally:
        task.cancel()


CRASHING_WORKER = textwrap.dedent("""
    import asyncio, os, signal, sys
    from adapters.local.platform import LocalPlatform
    from concierge.bootstrap import build_runtime
    from concierge.inbound import MemberMessage, StaffReply, CommandInvoked
    from concierge.platform import Address
    from tests.conftest import make_settings

    class CrashingPlatform(LocalPlatform):
        async def send(self, address, message):
            if address.channel.startswith("dm-"):
                os.kill(os.getpid(), signal.SIGKILL)  # recorded in the outbox, never sent
            return await super().send(address, message)

    async def main():
        runtime = build_runtime(make_settings(sys.argv[1]), {"local": CrashingPlatform()})
        handle = runtime.concierge.handle
        await handle(CommandInvoked("c1", LocalPlatform.dm_address("admin"), ("member", "add", "alice", "premium")))
        await handle(CommandInvoked("c2", LocalPlatform.dm_address("admin"), ("expert", "add", "bob", "nutrition")))
        await handle(MemberMessage("m1", LocalPlatform.dm_address("alice"), "Question?"))
        await runtime.dispatcher.drain()
        await handle(StaffReply("r1", Address("local", "concierge-staff", "bob", "1"), "Answer."))
        if sys.argv[2] == "after-commit":
            os.kill(os.getpid(), signal.SIGKILL)  # committed and claimed, not yet sent
        await runtime.dispatcher.drain()

    asyncio.run(main())
""")


@pytest.mark.parametrize("moment", ["after-commit", "during-send"])
async def test_crash_between_recorded_and_sent_is_delivered_once_by_a_new_process(database_url, moment):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    worker = subprocess.run([sys.executable, "-c", CRASHING_WORKER, database_url, moment], cwd=root,
                            capture_output=True, text=True, timeout=60)
    assert worker.returncode == -9, worker.stderr

    clock = FrozenClock()  # the worker ran on real time
    platform = LocalPlatform()
    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    try:
        # What `dispatcher.run()` does first: on SQLite (one process per file) the dead
        # process's leases are void at once; on PostgreSQL other workers may be alive, so the
        # lease must run out first.
        released = await runtime.dispatcher.release_own_leases()
        if "postgresql" in database_url:
            assert released == 0
            await runtime.dispatcher.drain()
            assert platform.dms_to("alice") == [], "the dead worker's lease still holds"
            clock.advance(3600)  # the lease (60 s) has run out
        else:
            assert released == 1
        await runtime.dispatcher.drain()
        await runtime.dispatcher.drain()
        assert platform.dms_to("alice") == ["Answer."]
        [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
        assert item.status == "sent"
        # A third process finds nothing left to send.
        again = LocalPlatform()
        other = build_runtime(make_settings(database_url), {"local": again}, clock=clock)
        try:
            assert await other.dispatcher.drain() == 0
            assert again.sent == []
        finally:
            other.close()
    finally:
        runtime.close()


async def test_two_workers_on_postgresql_deliver_each_item_once(postgres, clock):
    """SKIP LOCKED: two dispatchers on one database split the work, never doubling it."""
    import uuid

    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}", template="concierge_template")
    first, second = LocalPlatform(), LocalPlatform()
    runtime = build_runtime(make_settings(url), {"local": first}, clock=clock)
    other = OutboxDispatcher(runtime.db, {"local": second}, clock=clock, batch_size=5)
    runtime.dispatcher.batch_size = 5
    try:
        from tests.contract.local_driver import LocalDriver

        driver = LocalDriver(runtime, first)
        people = [f"m{i}" for i in range(40)]
        for person in people:
            await driver.command("admin", f"member add {person} premium")
        runtime.concierge.on_queued = lambda claimed, waiting: None  # queued by a process now gone
        for person in people:
            await driver.member_writes(person, f"question from {person}")
        clock.advance(120)  # its leases ran out: the work is up for grabs
        await asyncio.gather(runtime.dispatcher.drain(), other.drain())
        opened = [sent.message.text for sent in first.threads_opened() + second.threads_opened()]
        assert sorted(opened) == sorted(f"question from {person}" for person in people)
        assert first.threads_opened() and second.threads_opened(), "both workers took a share"
    finally:
        runtime.close()


async def test_a_dispatcher_leaves_other_platforms_items_alone(desk, runtime, platform, clock):
    """Two processes, one per platform, can share a database: each sends only its own."""
    from concierge.outbox import POST, enqueue
    from concierge.platform import Address, Outbound

    runtime.db.run_sync(lambda session: enqueue(session, key="other-1", kind=POST,
                                                address=Address("elsewhere", "C1", "U1"),
                                                message=Outbound("for the other process"), now=clock.now()))
    assert await runtime.dispatcher.drain() == 0
    [item] = rows(runtime, OutboxItem)
    assert item.status == "pending" and item.attempts == 0
    other = LocalPlatform(name="elsewhere")
    second = OutboxDispatcher(runtime.db, {"elsewhere": other}, clock=clock)
    assert await second.drain() == 1
    assert [sent.message.text for sent in other.sent] == ["for the other process"]
