"""The inbox: recorded before acknowledged, processing retried from the database, duplicates by message,
late arrivals marked, unknown send outcomes checked with the platform, crashes survived."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock
from concierge.inbound import MemberMessage, StaffReply
from concierge.inbox import STUCK_AFTER_ATTEMPTS, NotRecorded
from concierge.platform import Address
from concierge.records import InboxItem, OutboxItem
from tests.conftest import START, make_settings, rows
from tests.support.desk import enrol, failing_once


def dm(event_id: str, text: str, **extra) -> MemberMessage:
    return MemberMessage(event_id, LocalPlatform.dm_address("alice"), text, **extra)


async def test_a_message_whose_processing_fails_is_kept_and_processed_once_later(desk, runtime, platform, clock,
                                                                                 monkeypatch):
    await enrol(desk)
    failing_once(monkeypatch)
    receipt = await runtime.concierge.receive(dm("m1", "Question?"))
    assert receipt.status == "queued"
    [item] = rows(runtime, InboxItem, InboxItem.event_id == "m1")
    assert item.status == "pending" and item.attempts == 1 and item.payload["text"] == "Question?"
    await desk.settle()
    assert platform.threads_opened() == [], "not retried before its time"
    clock.advance(5)
    await desk.settle()
    assert [sent.message.text for sent in platform.threads_opened()] == ["Question?"]
    [item] = rows(runtime, InboxItem, InboxItem.event_id == "m1")
    assert item.status == "done" and item.payload == {}
    # The platform sends it again (a retry, the catch-up): no second effect.
    assert (await runtime.concierge.receive(dm("m1", "Question?"))).status == "duplicate"
    clock.advance(60)
    await desk.settle()
    assert len(platform.threads_opened()) == 1


async def test_an_event_that_cannot_be_recorded_is_refused(desk, runtime, monkeypatch):
    await enrol(desk)

    async def database_down(work):
        raise OSError("database is down")

    monkeypatch.setattr(runtime.db, "run", database_down)
    monkeypatch.setattr(runtime.db, "run_grouped", database_down)  # the hot path's group commit
    with pytest.raises(NotRecorded):
        await runtime.concierge.receive(dm("m1", "Question?"))


async def test_a_stuck_message_tells_the_member_once_and_staff_when_given_up(database_url, monkeypatch):
    clock = FrozenClock(START)
    platform = LocalPlatform()
    runtime = build_runtime(make_settings(database_url, inbox_max_attempts=5), {"local": platform}, clock=clock)
    try:
        from tests.contract.local_driver import LocalDriver

        desk = LocalDriver(runtime, platform)
        await enrol(desk)
        failing_once(monkeypatch, times=100)
        assert (await runtime.concierge.receive(dm("m1", "Question?"))).status == "queued"
        for _ in range(10):
            clock.advance(600)
            await desk.settle()
        [item] = rows(runtime, InboxItem, InboxItem.event_id == "m1")
        assert item.status == "failed" and item.attempts == 5 and "boom" in item.last_error
        on_it = [text for text in platform.dms_to("alice") if "We are on it" in text]
        assert len(on_it) == 1, platform.dms_to("alice")
        notices = [sent.message.text for sent in platform.sent if sent.address.channel == "concierge-staff"]
        assert len(notices) == 1 and "could not be processed" in notices[0] and "Question?" in notices[0]
        assert STUCK_AFTER_ATTEMPTS < 5
        stats = await desk.command("admin", "stats")
        assert "Inbound messages that could not be processed (kept for review, see `concierge doctor`): 1" in stats
    finally:
        runtime.close()


async def test_the_same_message_under_two_envelopes_has_one_effect(desk, runtime, platform):
    await enrol(desk)
    await runtime.concierge.receive(dm("D1:1700000000.000100", "Question?"))
    await runtime.concierge.receive(dm("D1:1700000000.000100", "Question?"))
    await desk.settle()
    assert len(platform.threads_opened()) == 1
    thread = platform.threads_opened()[0].ref.address.thread
    reply = StaffReply("C1:1700000001.000200", Address("local", "concierge-staff", "bob", thread), "Answer.")
    await runtime.concierge.receive(reply)
    await runtime.concierge.receive(reply)
    await desk.settle()
    assert platform.dms_to("alice") == ["Answer."]


async def test_late_messages_are_marked_for_staff_and_the_member(desk, runtime, platform, clock):
    await enrol(desk)
    await runtime.concierge.receive(dm("m1", "Written while you slept", written_at=clock.now() - timedelta(hours=2)))
    await runtime.concierge.receive(dm("m2", "Just now", written_at=clock.now()))
    await desk.settle()
    [card] = platform.threads_opened()
    assert "Written while you slept" in card.message.text
    assert "written 2026-11-25 07:00, received 2026-11-25 09:00 UTC: it arrived late" in card.message.text
    thread = card.ref.address.thread
    assert platform.thread_posts(thread)[-1] == "alice: Just now", "a message on time is not marked"
    await runtime.concierge.receive(StaffReply("r1", Address("local", "concierge-staff", "bob", thread), "Answer.",
                                               written_at=clock.now() - timedelta(minutes=30)))
    await desk.settle()
    [answer] = platform.dms_to("alice")
    assert answer.startswith("Answer.\n(Written 2026-11-25 08:30 UTC; it reached you late")


async def test_a_post_that_went_through_but_lost_its_answer_is_not_sent_again(desk, runtime, platform, clock):
    await enrol(desk)
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    thread = desk.threads()[0]
    platform.lose_next_answers(1)
    await desk.staff_writes("bob", thread, "Answer.")
    await desk.settle()
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.status == "pending" and item.maybe_sent
    clock.advance(5)
    await desk.settle()
    assert platform.dms_to("alice") == ["Answer."], "asked the platform instead of posting again"
    [item] = rows(runtime, OutboxItem, OutboxItem.kind == "post")
    assert item.status == "sent" and item.sent_message_id


async def test_a_card_that_went_through_but_lost_its_answer_opens_one_thread(desk, runtime, platform, clock):
    await enrol(desk)
    platform.lose_next_answers(1)
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    clock.advance(5)
    await desk.settle()
    await desk.member_writes("alice", "More.")
    await desk.settle()
    assert len(platform.threads_opened()) == 1
    thread = platform.threads_opened()[0].ref.address.thread
    assert platform.thread_posts(thread)[-1] == "alice: More.", "the follow-up went into the one thread"


CRASH_WHILE_PROCESSING = textwrap.dedent("""
    import asyncio, os, signal, sys
    import concierge.app
    from adapters.local.platform import LocalPlatform
    from concierge.bootstrap import build_runtime
    from concierge.inbound import CommandInvoked, MemberMessage
    from tests.conftest import make_settings

    async def main():
        runtime = build_runtime(make_settings(sys.argv[1]), {"local": LocalPlatform()})
        receive = runtime.concierge.receive
        await receive(CommandInvoked("c1", LocalPlatform.dm_address("admin"), ("member", "add", "alice", "premium")))
        real = concierge.app.member_message
        def crash_first(session, ctx, event):
            raise RuntimeError("processing failed")
        concierge.app.member_message = crash_first
        receipt = await receive(MemberMessage("m1", LocalPlatform.dm_address("alice"), "Question?"))
        assert receipt.status == "queued", receipt
        def die(session, ctx, event):
            os.kill(os.getpid(), signal.SIGKILL)  # recorded and claimed for processing: killed mid-way
        concierge.app.member_message = die
        runtime.inbox.backoff_base_s = 0
        for item in await runtime.db.run(lambda s: __import__("concierge.inbox").inbox.claim_due(
                s, runtime.concierge.clock.now().replace(year=2100), runtime.concierge.clock.now().replace(year=2100),
                ["local"])):
            await runtime.inbox.process(item)

    asyncio.run(main())
""")


async def test_kill_9_between_receipt_and_processing_is_processed_once_after_restart(database_url):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    worker = subprocess.run([sys.executable, "-c", CRASH_WHILE_PROCESSING, database_url], cwd=root,
                            capture_output=True, text=True, timeout=60)
    assert worker.returncode == -9, worker.stderr

    clock = FrozenClock()  # the dead process ran on real time; its lease ran until 2100
    platform = LocalPlatform()
    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    try:
        [item] = rows(runtime, InboxItem, InboxItem.event_id == "m1")
        assert item.status == "processing"
        await runtime.drain()
        assert platform.threads_opened() == [], "another process's lease holds"
        clock.advance((item.lease_until - clock.now()).total_seconds() + 1)
        await runtime.drain()
        await runtime.drain()
        assert [sent.message.text for sent in platform.threads_opened()] == ["Question?"]
        [item] = rows(runtime, InboxItem, InboxItem.event_id == "m1")
        assert item.status == "done"
        again = LocalPlatform()
        other = build_runtime(make_settings(database_url), {"local": again}, clock=clock)
        try:
            assert await other.drain() == 0 and again.sent == []
        finally:
            other.close()
    finally:
        runtime.close()


async def test_a_reply_under_a_card_whose_answer_was_lost_waits_for_it(desk, runtime, platform, clock):
    """Slack took the card but its answer was lost; the expert answers under it at once: the reply
    waits in the inbox until the outbox has confirmed the card, then reaches the member once."""
    await enrol(desk)
    platform.lose_next_answers(1)
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    [card] = platform.threads_opened()
    thread = card.ref.address.thread
    receipt = await runtime.concierge.receive(
        StaffReply("r1", Address("local", "concierge-staff", "bob", thread), "Answer."))
    assert receipt.status == "queued"
    for _ in range(6):
        clock.advance(30)
        await desk.settle()
    assert platform.dms_to("alice") == ["Answer."]
    assert len(platform.threads_opened()) == 1
    [item] = rows(runtime, InboxItem, InboxItem.event_id == "r1")
    assert item.status == "done"


async def test_chatter_in_a_thread_no_conversation_has_is_not_ours(desk, runtime, platform):
    await enrol(desk)
    receipt = await runtime.concierge.receive(
        StaffReply("r1", Address("local", "concierge-staff", "bob", "999"), "Lunch?"))
    assert receipt.status == "done" and receipt.reply is None


async def test_a_lone_surrogate_or_a_nul_does_not_keep_a_message_from_being_recorded(desk, runtime, platform):
    await enrol(desk)
    receipt = await runtime.concierge.receive(dm("m1", "Broken \ud800 emoji and a \x00 NUL"))
    await desk.settle()
    assert receipt.status == "done"
    assert platform.threads_opened()[0].message.text == "Broken \ufffd emoji and a  NUL"


async def test_the_catch_up_plan_reads_the_events_received_within_its_window(desk, runtime, clock):
    """The plan's newest message per place comes from the events received since its oldest time:
    a place written to only before that is read back from that time anyway."""
    from concierge.inbox import last_written

    await enrol(desk)
    await runtime.concierge.receive(dm("m1", "Before the window.", written_at=clock.now()))  # received at START
    clock.advance(3 * 3600)
    # Received now, written two hours ago: a message the catch-up read back from the history.
    await runtime.concierge.receive(StaffReply("r1", Address("local", "staff", "bob", "t1"), "Read back.",
                                               written_at=START + timedelta(hours=1)))
    since = clock.now() - timedelta(hours=1)
    seen = await runtime.db.run(lambda session: last_written(session, "local", since))
    assert seen == {"staff/t1": START + timedelta(hours=1)}, seen
