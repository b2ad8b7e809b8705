"""Fixtures: the loopback fake of Discord's REST API (Route.BASE points at it) and a bot wired to it."""

from __future__ import annotations

from contextlib import asynccontextmanager

import discord
import pytest

from tests.conftest import make_settings
from tests.discord.fake_discord import FakeDiscord
from tests.discord.harness import DiscordWorld


@pytest.fixture
async def fake(clock):
    """Discord's REST API on a loopback port; discord.py talks to it while the test runs.

    Its ids are snowflakes of the test's clock, so messages are written when the test says.
    """
    server = FakeDiscord(clock)
    base = await server.start()
    original = discord.http.Route.BASE
    discord.http.Route.BASE = base
    try:
        yield server
    finally:
        discord.http.Route.BASE = original
        await server.stop()


def discord_settings_for(fake: FakeDiscord, database_url: str, **overrides):
    """Core settings for a test: the admin is a Discord user, the staff channel the fake's."""
    admin = fake.add_user("admin")
    values = dict(admins=[f"discord:{admin['id']}"], staff_channel=str(fake.staff_channel_id))
    values.update(overrides)
    return admin, make_settings(database_url, **values)


@asynccontextmanager
async def running_world(fake: FakeDiscord, database_url: str, clock, **overrides):  # noqa: ANN001
    """A bot logged in to the fake, with the guild received, core settings `overrides` applied; stopped after."""
    admin, settings = discord_settings_for(fake, database_url, **overrides)
    discord_world = DiscordWorld(fake, settings, clock)
    discord_world.people["admin"] = admin
    await discord_world.start()
    try:
        yield discord_world
    finally:
        await discord_world.stop()


@pytest.fixture
async def world(fake, database_url, clock):
    """A bot logged in to the fake, with the guild received; stopped after the test."""
    async with running_world(fake, database_url, clock) as discord_world:
        yield discord_world
