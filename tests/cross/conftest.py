"""Fixtures of the cross-platform tests: the fake Slack and the fake Discord, side by side."""

from __future__ import annotations

from tests.discord.conftest import fake  # noqa: F401 - the fake Discord (REST, and discord.py pointed at it)
from tests.slack.conftest import (
    fake_slack,  # noqa: F401 - the fake Slack (Web API)
    sqlite_url,  # noqa: F401, E402 - a migrated SQLite database
)
