"""Issue 13 on Discord: a redelivered MESSAGE_CREATE has one effect through the core's own de-duplication.

The inbox (`inbox.record` raising `AlreadyHandled`) is what stops it, not only the unique outbox
key: an internal note queues nothing, so only the inbox stands between a redelivery and a second
transcript row.
"""

from __future__ import annotations

import logging

from sqlmodel import select

from concierge.records import InboxItem, Message
from tests.discord.harness import DiscordWorld


async def all_rows(world: DiscordWorld, model) -> list:
    return list(await world.bot.runtime.db.run(
        lambda session: session.exec(select(model).order_by(model.id)).all()))


async def test_a_message_create_delivered_twice_is_one_transcript_row_and_one_inbox_row(world, caplog):
    caplog.set_level(logging.WARNING)
    await world.slash("admin", f"member add <@{world.user_id('alice')}> premium alice")
    await world.slash("admin", f"expert add <@{world.user_id('bob')}> nutrition bob")
    question = await world.dm("alice", "Creatine or not?")
    world.gateway("MESSAGE_CREATE", question)  # the gateway sends the same event again (a resume)
    await world.settle()
    [thread] = world.fake.staff_threads()
    note = await world.write_in_thread("bob", thread, "note: ask about her kidneys first")
    world.gateway("MESSAGE_CREATE", note)
    await world.settle()
    await world.bot.concierge.told()

    transcript = [(m.direction, m.text) for m in await all_rows(world, Message)]
    assert transcript == [("in", "Creatine or not?"), ("internal", "ask about her kidneys first")]
    inbox = [item.event_id for item in await all_rows(world, InboxItem)
             if item.kind in ("member_message", "staff_reply")]
    assert inbox == [question["id"], note["id"]]
    assert world.bot_posts_after(note) == ["(internal, not sent)"], "bob was told once"
    assert world.dms("alice") == []
    assert sum("Creatine" in text for text in world.thread_texts(thread)) == 1
    # Recognised as a redelivery and let go, not an error that sends the catch-up after it.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
