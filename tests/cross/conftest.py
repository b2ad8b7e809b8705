"""Fixtures of the cross-platform tests: the fake Slack and the fake Discord, side by side."""

from __future__ import annotations

import pytest
import yarl
from discord.gateway import DiscordWebSocket

from tests.discord.conftest import fake  # noqa: F401 - the fake Discord (REST, and discord.py pointed at it)
from tests.slack.conftest import (
    fake_slack,  # noqa: F401 - the fake Slack (Web API)
    sqlite_url,  # noqa: F401, E402 - a migrated SQLite database
)
from tests.slack.harness import SIGNING_SECRET
from tests.support.net import free_port


@pytest.fixture
def environment(fake, fake_slack, monkeypatch, tmp_path):  # noqa: F811 - the fixtures imported above
    """Both platforms' tokens in the environment (no .env), Discord's gateway at the fake's websocket."""
    monkeypatch.chdir(tmp_path)
    fake.clock = fake_slack.clock = None  # the bot runs on real time here: so do both platforms' ids
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    port = free_port()
    for name, value in {"DISCORD_TOKEN": fake.token, "DISCORD_GUILD_ID": str(fake.guild_id),
                        "SLACK_BOT_TOKEN": fake_slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                        "SLACK_API_URL": fake_slack.api_url, "CONCIERGE_HTTP_HOST": "127.0.0.1",
                        "CONCIERGE_HTTP_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    for name in ("SLACK_APP_TOKEN", "CONCIERGE_STAFF_PLATFORM", "CONCIERGE_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    return f"http://127.0.0.1:{port}"
