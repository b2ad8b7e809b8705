"""The Slack platform: members DM the bot, experts answer in staff-channel threads, admins use /concierge.

Importing this package is cheap (no Slack SDK): `concierge run` asks every adapter whether it
is configured before choosing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Slack's upload limit, read by every process (see concierge.bootstrap.upload_limits); loads no SDK.
from adapters.slack.limits import MAX_FILE_BYTES as MAX_FILE_BYTES

if TYPE_CHECKING:  # annotations only: importing this package loads no SDK
    from adapters.slack.server import SlackConnection
    from concierge.settings import Settings


def is_configured() -> bool:
    """True when a bot token is set (environment or `.env`)."""
    import os

    from adapters.slack.settings import SlackSettings

    try:
        return SlackSettings().bot_token is not None
    except ValueError:  # another SLACK_* setting is malformed: `run` reports it
        return bool(os.environ.get("SLACK_BOT_TOKEN", "").strip())


async def run(settings: Settings, http: bool = False) -> None:
    """Serve Slack alone: Socket Mode with SLACK_APP_TOKEN, or HTTP mode (`http=True`) with SLACK_SIGNING_SECRET."""
    from adapters.slack.server import run as serve

    await serve(settings, http=http)


async def connect(settings: Settings, http: bool = False, **_options: object) -> SlackConnection:
    """Slack's `concierge.serve.Connection`, to serve beside other platforms from one runtime."""
    from adapters.slack.server import SlackConnection
    from adapters.slack.settings import SlackSettings

    return SlackConnection(settings, SlackSettings(), http=http)
