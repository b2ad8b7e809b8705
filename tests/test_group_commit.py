"""Group commit: units queued at once share a transaction; a failing one fails alone; nothing waits for a poll."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.database import Database
from concierge.inbound import MemberMessage, StaffReply
from concierge.platform import Address, Outbound
from tests.conftest import make_settings


@pytest.fixture
def db(database_url):
    database = Database.from_url(database_url)
    database.run_sync(lambda session: session.execute(text("CREATE TABLE jot (word VARCHAR(20) PRIMARY KEY)")))
    yield database
    database.close()


def jot(word: str):
    def work(session):
        session.execute(text("INSERT INTO jot (word) VALUES (:word)"), {"word": word})
        return word.upper()

    return work


def words(db: Database) -> list[str]:
    return db.run_sync(lambda session: session.execute(text("SELECT word FROM jot ORDER BY word")).scalars().all())


async def test_units_queued_together_share_commits_and_each_gets_its_own_result(db):
    results = await asyncio.gather(*(db.run_grouped(jot(f"w{number:03d}")) for number in range(100)))
    assert results == [f"W{number:03d}" for number in range(100)]
    assert words(db) == [f"w{number:03d}" for number in range(100)]
    assert 1 <= db._group.groups < 50, "most units shared a transaction"


async def test_a_failing_unit_fails_alone_and_the_rest_of_its_group_commits(db):
    def broken(session):
        session.execute(text("INSERT INTO jot (word) VALUES ('half-done')"))
        raise ValueError("the core failed")

    units = [jot("a1"), jot("a2"), broken, jot("a3"), jot("a1")]  # the last one breaks the unique key too
    results = await asyncio.gather(*(db.run_grouped(unit) for unit in units), return_exceptions=True)
    assert results[:2] == ["A1", "A2"] and results[3] == "A3"
    assert isinstance(results[2], ValueError) and isinstance(results[4], Exception)
    assert words(db) == ["a1", "a2", "a3"], "the failing units' writes were rolled back, the others kept"


async def test_a_result_is_given_only_once_it_is_committed(db):
    await db.run_grouped(jot("durable"))
    other = Database.from_url(str(db.engine.url.render_as_string(hide_password=False)))
    try:
        assert words(other) == ["durable"], "another connection sees it as soon as the caller is answered"
    finally:
        other.close()


async def test_a_conversation_back_and_forth_never_waits_for_the_outbox_poll(database_url):
    """A member's next message queued while the answer before it is being recorded goes out at once.

    With a poll of a minute, a message left for a scan nobody asks for would time out here: the
    group runner must not overtake an outcome being recorded (SQLite), and a hand-off that had
    to wait behind an unsent item asks for a scan (PostgreSQL, where they run side by side).
    """
    platform = LocalPlatform()
    runtime = build_runtime(make_settings(database_url, member_messages_per_minute=1000), {"local": platform})
    runtime.dispatcher.poll_interval_s = 60.0
    admin = LocalPlatform.dm_address("admin")
    loop = asyncio.create_task(runtime.dispatcher.run())
    arrived = asyncio.Event()
    original_send, original_open = platform.send, platform.open_thread

    async def send(address: Address, message: Outbound):
        ref = await original_send(address, message)
        arrived.set()
        return ref

    async def open_thread(channel: Address, message: Outbound):
        ref = await original_open(channel, message)
        arrived.set()
        return ref

    platform.send, platform.open_thread = send, open_thread

    async def relayed(event) -> None:
        arrived.clear()
        await runtime.concierge.handle(event)
        await asyncio.wait_for(arrived.wait(), 5)

    try:
        from concierge.inbound import CommandInvoked

        await runtime.concierge.handle(CommandInvoked("c1", admin, ("expert", "add", "bob", "nutrition")))
        await runtime.concierge.handle(CommandInvoked("c2", admin, ("member", "add", "ann", "premium")))
        await relayed(MemberMessage("open", LocalPlatform.dm_address("ann"), "first question"))
        thread = platform.sent[-1].ref.address.thread
        for number in range(30):
            await relayed(MemberMessage(f"m{number}", LocalPlatform.dm_address("ann"), f"question {number}"))
            await relayed(StaffReply(f"r{number}", Address("local", "concierge-staff", "bob", thread), "answer"))
        assert len(platform.sent) == 61
    finally:
        runtime.dispatcher.stop()
        await loop
        runtime.close()
