"""The catch-up counts what it recovers: `concierge_catch_up_events_total{platform="slack"}`."""

from __future__ import annotations

from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.support.metrics import caught_up_on
from tests.support.slack import catch_up, running


def caught_up(bot) -> float:  # noqa: ANN001
    return caught_up_on(bot.runtime, "slack")


async def test_messages_read_back_after_downtime_are_counted_once(sqlite_url, fake_slack, clock):
    async with running(sqlite_url, fake_slack, clock) as bot:
        driver = SlackDriver(bot)
        await setup_desk(driver)
        await driver.member_writes("alice", "How long should I rest after a marathon?")
        await driver.settle()
    fake_slack.write(dm_channel("alice"), user_id("alice"), "Also: is swimming fine meanwhile?")
    fake_slack.write(dm_channel("alice"), user_id("alice"), "And cycling?")
    clock.advance(20 * 60)
    async with running(sqlite_url, fake_slack, clock) as bot:
        assert (await catch_up(bot)).new == 2
        assert caught_up(bot) == 2
        assert (await catch_up(bot)).new == 0  # read again (a reconnect): nothing new, nothing counted
        assert caught_up(bot) == 2
