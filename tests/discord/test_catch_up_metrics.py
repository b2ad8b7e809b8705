"""The Discord catch-up counts what it recovers: `concierge_catch_up_events_total{platform="discord"}`."""

from __future__ import annotations

from tests.support.discord import open_conversation
from tests.support.metrics import caught_up_on


async def test_what_was_read_back_after_downtime_is_counted_once(world, clock):
    thread = await open_conversation(world)
    await world.stop()
    clock.advance(600)
    for text in ("one", "two", "three"):
        world.dm_offline("alice", text)
        clock.advance(1)
    world.thread_message("bob", thread, "An hour before is fine.")  # no gateway event: the bot is away
    clock.advance(600)
    await world.start()
    await world.ready()
    assert world.dms("alice"), "caught up"
    assert caught_up_on(world.bot.runtime, "discord") == 4  # three DMs and the expert's reply
    await world.ready()  # a reconnect: everything is known, nothing more counted
    assert caught_up_on(world.bot.runtime, "discord") == 4
