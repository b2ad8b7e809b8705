"""The relay's combined reads (`concierge.relay_lookup`) say what the separate statements said."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from adapters.local.platform import LocalPlatform
from concierge.inbound import MemberMessage
from concierge.outbox.kinds import OutboxStatus
from concierge.people import expert_of, member_of
from concierge.platform import Address
from concierge.records import Conversation, Member, OutboxItem
from concierge.relay_lookup import (
    conversation_in_thread_with_unsent,
    expert_answering,
    member_locked,
    open_conversation_with_counts,
)
from concierge.tables import table_of
from tests.conftest import rows


async def test_a_relayed_message_holds_its_member_until_it_commits(runtime, desk):
    """Two messages of one member in parallel transactions (PostgreSQL) must not both open a conversation."""
    await desk.command("admin", "member add alice premium")

    def look(session):
        member = member_locked(session, "local", "alice")
        if runtime.db.is_sqlite:  # one database thread: nothing to lock, the row is the member's
            return member, member_of(session, "local", "alice")
        with runtime.db.engine.connect() as other:  # another transaction wants the member's row meanwhile
            other.execute(text("SET lock_timeout = '200ms'"))
            with pytest.raises(OperationalError, match="lock"):
                other.execute(select(table_of(Member)).where(table_of(Member).c.id == member.id).with_for_update())
        return member, member_of(session, "local", "alice")

    locked, plain = runtime.db.run_sync(look)
    assert locked is not None and tuple(locked) == tuple(plain)
    assert runtime.db.run_sync(lambda session: member_locked(session, "local", "nobody")) is None


async def test_the_expert_behind_a_staff_reply_is_read_as_before(runtime, desk):
    await desk.command("admin", "expert add bob nutrition")
    found, plain = runtime.db.run_sync(lambda session: (expert_answering(session, "local", "bob"),
                                                        expert_of(session, "local", "bob")))
    assert found is not None and tuple(found) == tuple(plain) and found.display_name == plain.display_name
    assert runtime.db.run_sync(lambda session: expert_answering(session, "local", "alice")) is None


async def test_the_open_conversation_comes_with_its_flood_count_and_whether_anything_is_unsent(runtime, desk, clock):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await runtime.concierge.handle(MemberMessage("m1", LocalPlatform.dm_address("alice"), "nutrition question"))
    [conversation] = rows(runtime, Conversation)
    member_id = conversation.member_id

    def found():
        return runtime.db.run_sync(lambda session: open_conversation_with_counts(session, member_id, clock.now()))

    first = found()
    assert (first.id, first.recent, first.unsent) == (conversation.id, 1, True)  # the card is not sent yet
    await desk.settle()
    assert found().unsent is False
    await runtime.concierge.handle(MemberMessage("m2", LocalPlatform.dm_address("alice"), "and another"))
    assert found().recent == 2
    clock.advance(120)  # the flood limit counts the last minute only
    assert found().recent == 0
    runtime.db.run_sync(lambda session: session.execute(update(table_of(OutboxItem)), {"status": OutboxStatus.SENT}))
    conversation = rows(runtime, Conversation)[0]
    thread = Address(conversation.staff_platform, conversation.staff_channel, "bob", conversation.staff_thread)
    in_thread = runtime.db.run_sync(lambda session: conversation_in_thread_with_unsent(session, thread))
    assert (in_thread.id, in_thread.unsent) == (conversation.id, False)


async def test_the_flood_count_reads_the_last_minute_not_the_whole_transcript(runtime, desk, clock):
    """A member's message counts their lines of the last minute through `ix_message_recent`
    (conversation, direction, time): its cost does not grow with the conversation's transcript.
    Without that index the database reads every line of the conversation to count a few."""
    from concierge.driver_select import _compile
    from concierge.relay_lookup import _OPEN_WITH_COUNTS

    await desk.command("admin", "member add alice premium")
    await runtime.concierge.handle(MemberMessage("m1", LocalPlatform.dm_address("alice"), "a question"))
    [conversation] = rows(runtime, Conversation)

    def plan(session) -> str:
        compiled = _compile(_OPEN_WITH_COUNTS, session, {"member_id": 0, "since": None})
        values = {"member_id": conversation.member_id, "since": clock.now()}
        params = {**compiled.fixed, **{name: compiled.bind.get(name, lambda v: v)(value)
                                       for name, value in values.items()}}
        driver = session.connection().connection.driver_connection
        cursor = driver.cursor()
        try:
            if runtime.db.is_sqlite:
                cursor.execute("EXPLAIN QUERY PLAN " + compiled.sql, tuple(params[name] for name in compiled.names))
                return "\n".join(row[-1] for row in cursor.fetchall())
            cursor.execute("SET LOCAL enable_seqscan = off")  # the tables are tiny: judge the indexes alone
            cursor.execute("EXPLAIN " + compiled.sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.close()

    found = runtime.db.run_sync(plan)
    assert "ix_message_recent" in found, found
    if runtime.db.is_sqlite:
        assert "COVERING INDEX ix_message_recent (conversation_id=? AND direction=? AND created_at>?)" in found, found
