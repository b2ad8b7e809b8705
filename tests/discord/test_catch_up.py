"""Nothing lost on the way in, on Discord: a message the database could not record, and what people
wrote while the bot was away, are read back from the channels' history and reach their reader once.

The gateway cannot be refused or asked again, so the bot reads back DMs and open staff threads on
every READY (`on_connect` takes the plan, `on_ready` reads), and a channel whose message could not
be recorded soon after. SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlmodel import select

from concierge.records import InboxItem
from tests.discord.conftest import discord_settings_for
from tests.discord.harness import DiscordWorld
from tests.support.discord import open_conversation, written_while_away


async def inbox_rows(world: DiscordWorld) -> int:
    return await world.bot.runtime.db.run(lambda session: len(session.exec(select(InboxItem)).all()))


def relayed(world: DiscordWorld, thread: int) -> list[str]:
    """What the thread shows of alice's messages (their first lines: a late one says so below)."""
    return [text.split("\n")[0] for text in world.thread_texts(thread) if text.startswith("alice: ")]


@contextlib.contextmanager
def database_down(world: DiscordWorld):
    """Every unit of work the bot's core starts fails, as when the database is unreachable."""
    calls = []

    async def down(work):  # noqa: ANN001, ANN202
        calls.append(work)
        raise ConnectionError("the database is unreachable")

    db = world.bot.runtime.db
    db.run = db.run_grouped = down  # the hot path's group commit too
    try:
        yield calls
    finally:
        del db.run, db.run_grouped  # the class's own again


@contextlib.asynccontextmanager
async def world_with(fake, database_url, clock, **discord_overrides):  # noqa: ANN001
    admin, settings = discord_settings_for(fake, database_url)
    world = DiscordWorld(fake, settings, clock, **discord_overrides)
    world.people["admin"] = admin
    await world.start()
    try:
        yield world
    finally:
        await world.stop()


# A message the database could not record.

async def test_a_message_the_database_could_not_record_reaches_staff_once_after_the_next_start(
        world, caplog):
    thread = await open_conversation(world)
    before = await inbox_rows(world)
    with database_down(world) as calls, caplog.at_level(logging.ERROR, "adapters.discord"):
        await world.dm("alice", "Are you there?")  # the listener returns: the gateway cannot be refused
    assert calls, "the core tried to record it"
    assert "could not be recorded" in caplog.text
    await world.settle()
    assert await inbox_rows(world) == before, "nothing recorded"
    assert relayed(world, thread) == []
    await world.restart()
    await world.ready()  # the catch-up reads the DM back
    assert relayed(world, thread) == ["alice: Are you there?"]
    await world.ready()  # a reconnect reads it once more: known, no second post
    assert relayed(world, thread) == ["alice: Are you there?"]


async def test_a_message_the_database_could_not_record_is_read_back_soon_without_a_restart(
        fake, database_url, clock):
    async with world_with(fake, database_url, clock, catch_up_retry_s=0.05) as world:
        thread = await open_conversation(world)
        with database_down(world) as calls:
            await world.dm("alice", "Are you there?")
            await asyncio.sleep(0.3)  # the database stays down: the read-back fails and waits longer
            tried = len(calls)
        assert tried >= 4, "the read-back was tried again while the database was down"
        await world.caught_up()
        assert relayed(world, thread) == ["alice: Are you there?"]
        await world.dm("alice", "Thanks")
        await world.settle()
        assert relayed(world, thread) == ["alice: Are you there?", "alice: Thanks"]


async def test_an_expert_reply_the_database_could_not_record_reaches_the_member_once(world):
    thread = await open_conversation(world)
    with database_down(world):
        await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    assert world.dms("alice") == []
    await world.restart()
    await world.ready()
    assert world.dms("alice") == ["Yes, an hour before."]


# What was written while the bot was away.

async def test_what_was_written_while_the_bot_was_away_arrives_once_in_order(world, clock):
    thread = await open_conversation(world)
    await world.stop()
    written_while_away(world, clock, thread)
    await world.start()
    assert relayed(world, thread) == [] and world.dms("alice") == []
    await world.ready()
    assert relayed(world, thread) == ["alice: one", "alice: two", "alice: three"]
    assert all("it arrived late" in text for text in world.thread_texts(thread)[-3:]), "staff see they are late"
    [answer] = world.dms("alice")
    assert answer.startswith("An hour before is fine.\n(Written ") and "reached you late" in answer
    await world.ready()  # a reconnect: everything is known
    assert relayed(world, thread) == ["alice: one", "alice: two", "alice: three"]
    assert len(world.dms("alice")) == 1


async def test_a_message_delivered_live_and_read_back_again_reaches_staff_once(world):
    thread = await open_conversation(world)
    await world.dm("alice", "And after the race?")
    await world.settle()
    dm = world.dm_channel("alice")
    await world.ready()
    [read] = world.fake.calls_to("GET", rf"/channels/{dm}/messages")
    assert "after" in read.query, "the DM was read back from where the records stop"
    assert relayed(world, thread) == ["alice: And after the race?"]


async def test_a_message_delivered_twice_by_the_gateway_reaches_staff_once(world):
    thread = await open_conversation(world)
    message = await world.dm("alice", "And after the race?")
    world.gateway("MESSAGE_CREATE", message)
    await world.settle()
    assert relayed(world, thread) == ["alice: And after the race?"]


async def test_an_edit_made_while_the_bot_was_away_is_relayed_once(world, clock):
    thread = await open_conversation(world)
    message = await world.dm("alice", "Is tea fine?")
    await world.settle()
    await world.stop()
    clock.advance(60)
    world.fake.write({**message, "content": "Is green tea fine?", "edited_timestamp": clock.now().isoformat()})
    await world.start()
    await world.ready()
    await world.ready()
    assert relayed(world, thread) == ["alice: Is tea fine?", "alice: (edited) Is green tea fine?"]


async def test_the_plan_is_taken_when_the_gateway_connects_before_live_messages_move_it(world, clock):
    thread = await open_conversation(world)
    await world.stop()
    clock.advance(60)
    world.dm_offline("alice", "one")  # while the bot is away
    clock.advance(60)
    await world.start()
    concierge = world.bot.concierge
    read_plan = concierge.catch_up_plan

    async def slow_plan(platform):  # noqa: ANN001, ANN202 - a busy database
        await asyncio.sleep(0.2)
        return await read_plan(platform)

    concierge.catch_up_plan = slow_plan
    before = world.connect(guild_ready_timeout=0.3)  # READY: the plan is taken; on_ready comes later
    await world.dm("alice", "two")  # live, before on_ready: it waits for the plan, so "one" is still read back
    await world.caught_up(before)
    assert sorted(relayed(world, thread)) == ["alice: one", "alice: two"]


async def test_a_staff_thread_read_back_needs_no_channel_lookup(world, clock):
    thread = await open_conversation(world)
    await world.stop()
    world.thread_message("bob", thread, "Yes, an hour before.")
    await world.start()
    await world.ready()
    assert world.dms("alice") == ["Yes, an hour before."]
    assert world.fake.calls_to("GET", rf"/channels/{thread}") == [], "the thread's parent came from the records"


async def test_no_catch_up_when_it_is_switched_off(fake, database_url, clock):
    admin, settings = discord_settings_for(fake, database_url, catch_up_hours=0)
    world = DiscordWorld(fake, settings, clock)
    world.people["admin"] = admin
    await world.start()
    try:
        await open_conversation(world)
        world.dm_offline("alice", "one")
        world.connect()
        await asyncio.sleep(0.2)
        await world.settle()
        assert world.bot.catch_up_task is None
        assert world.fake.calls_to("GET", r"/channels/\d+/messages") == []
    finally:
        await world.stop()


async def test_a_new_members_first_dm_written_while_away_is_read_back_once_they_write_again(world, clock):
    await open_conversation(world)
    await world.slash("admin", f"member add <@{world.user_id('carol')}> premium carol")
    await world.stop()
    world.dm_offline("carol", "My first question")  # a DM channel the records do not name yet
    clock.advance(120)
    await world.start()
    await world.ready()
    staff = world.fake.staff_channel_id
    assert not [post for post in world.fake.posts_in(staff) if "My first question" in post["content"]], (
        "bots cannot list their DM channels: not found yet")
    await world.dm("carol", "Hello?")  # Discord shows us the channel now
    await world.caught_up()
    [thread] = [int(post["id"]) for post in world.fake.posts_in(staff) if post["content"].endswith("Hello?")]
    texts = world.thread_texts(thread)
    assert [text for text in texts if "My first question" in text] == [
        "carol: My first question\n(written 2026-11-25 09:00, received 2026-11-25 09:02 UTC: it arrived late)"]
    await world.dm("carol", "Thanks")
    await world.settle()
    assert len(world.fake.calls_to("GET", rf"/channels/{world.dm_channel('carol')}/messages")) == 1, (
        "read back once, when first seen")


async def test_a_catch_up_the_database_cannot_serve_yet_is_tried_again(fake, database_url, clock):
    async with world_with(fake, database_url, clock, catch_up_retry_s=0.05) as world:
        thread = await open_conversation(world)
        await world.stop()
        world.dm_offline("alice", "one")
        await world.start()
        with database_down(world) as calls:
            before = world.connect()
            await asyncio.sleep(0.3)  # the plan cannot be read: tried again, later and later
            assert len(calls) >= 2 and not world.bot.catch_up_task.done()
        await world.caught_up(before)
        assert relayed(world, thread) == ["alice: one"]
