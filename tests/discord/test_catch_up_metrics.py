"""The Discord catch-up counts what it recovers: `concierge_catch_up_events_total{platform="discord"}`."""

from __future__ import annotations

from tests.support.discord import open_conversation, written_while_away
from tests.support.metrics import caught_up_on


async def test_what_was_read_back_after_downtime_is_counted_once(world, clock):
    thread = await open_conversation(world)
    await world.stop()
    written_while_away(world, clock, thread)
    await world.start()
    await world.ready()
    assert world.dms("alice"), "caught up"
    assert caught_up_on(world.bot.runtime, "discord") == 4  # three DMs and the expert's reply
    await world.ready()  # a reconnect: everything is known, nothing more counted
    assert caught_up_on(world.bot.runtime, "discord") == 4
