"""Fixtures of the Slack adapter tests: the fake Slack, and the bot under test on SQLite or both backends."""

from __future__ import annotations

import shutil

import pytest

from adapters.slack.manifest import bot_scopes
from tests.slack.fake_slack import FakeSlack
from tests.slack.harness import start_bot


@pytest.fixture
async def fake_slack(clock):
    """A loopback Slack whose bot token holds exactly the manifest's scopes; its message ts follow `clock`."""
    fake = await FakeSlack(scopes=bot_scopes(), clock=clock).start()
    yield fake
    await fake.stop()


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    """A migrated SQLite database, for tests whose subject is not the database."""
    path = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def bot(sqlite_url, fake_slack, clock):
    running = await start_bot(sqlite_url, fake_slack, clock=clock)
    yield running
    await running.close()


@pytest.fixture
async def desk_bot(database_url, fake_slack, clock):
    """The bot under test on both backends, with the test's clock; closed after the test."""
    bot = await start_bot(database_url, fake_slack, clock=clock)
    try:
        yield bot
    finally:
        await bot.close()
