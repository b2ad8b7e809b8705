"""One runtime serving Slack and Discord, as `concierge run` wires it, fed by both fakes.

The Slack side is the real `SlackConnection` in HTTP mode (signed requests into the bolt app, the
loopback Web API); the Discord side is the real bot of a `DiscordConnection`, logged in to the fake
REST API and fed gateway payloads through discord.py's connection state. Both hand their events
to the same core, and one outbox sends to both: `settle` runs what both started until all is quiet.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.discord.bot import DiscordConnection
from adapters.slack.server import SlackConnection
from concierge.bootstrap import Runtime, build_runtime
from concierge.serve import settings_for
from tests.conftest import make_settings
from tests.discord.fake_discord import FakeDiscord
from tests.discord.harness import DiscordWorld, quiesce
from tests.slack.fake_slack import FakeSlack
from tests.slack.harness import ADMIN, STAFF, BotUnderTest, slack_settings

PLATFORMS = ("slack", "discord")


@dataclass
class CrossWorld:
    """Members on `members_on`, staff on the other platform, one runtime for both."""

    members_on: str
    runtime: Runtime
    slack: BotUnderTest
    discord: DiscordWorld

    @property
    def staff_on(self) -> str:
        return "discord" if self.members_on == "slack" else "slack"

    async def settle(self) -> None:
        """Until quiet: what both platforms' events started, Discord's events back, the outbox to both."""
        for _ in range(50):
            await quiesce()
            events = self.discord.fake.take_gateway_events()
            for name, data in events:
                self.discord.gateway(name, data)
            await self.slack.listeners.idle(timeout=10)
            sent = await self.runtime.drain()
            if not events and not sent:
                await quiesce()
                return
        raise AssertionError("the bot never settled")


def cross_settings(members_on: str, fake_slack: FakeSlack, fake: FakeDiscord, database_url: str,
                   **overrides: Any):
    """Core settings: the staff channel and the admin on the staff platform; returns (settings, Discord admin)."""
    discord_admin = fake.add_user("admin")
    if members_on == "discord":  # staff on Slack
        values: dict[str, Any] = dict(staff_platform="slack", staff_channel=STAFF, admins=[f"slack:{ADMIN}"])
    else:  # staff on Discord
        values = dict(staff_platform="discord", staff_channel=str(fake.staff_channel_id),
                      admins=[f"discord:{discord_admin['id']}"])
    values.update(overrides)
    return settings_for(make_settings(database_url, **values), list(PLATFORMS)), discord_admin


@contextlib.asynccontextmanager
async def cross_world(members_on: str, fake_slack: FakeSlack, fake: FakeDiscord, database_url: str, clock,  # noqa: ANN001
                      **overrides: Any) -> AsyncIterator[CrossWorld]:
    settings, discord_admin = cross_settings(members_on, fake_slack, fake, database_url, **overrides)
    slack = SlackConnection(settings, slack_settings(fake_slack), http=True)  # HTTP mode on a free port
    discord_world = DiscordWorld(fake, settings, clock)
    discord_world.people["admin"] = discord_admin
    # Both platforms served: Discord names people as text, so `slack:U...` fits (in `concierge run`,
    # `spans_platforms` sees Slack's tokens; here they are not in the environment).
    discord = DiscordConnection(settings, discord_world.discord_settings, users_as_text=True)
    runtime = build_runtime(settings, {"slack": slack.platform, "discord": discord.platform}, clock=clock)
    discord.bot.runtime = runtime
    requests = aiohttp.ClientSession()  # what the test's people send to Slack's HTTP endpoint
    try:
        await slack.start(runtime)
        await discord_world.start(discord.bot)
        slack_side = BotUnderTest(slack.listeners, fake_slack, None, slack.port, requests, slack.session)
        yield CrossWorld(members_on, runtime, slack_side, discord_world)
    finally:
        await slack.stop()
        await discord_world.stop()
        await slack.close()
        await requests.close()
        runtime.close()
