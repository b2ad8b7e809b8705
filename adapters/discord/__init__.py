"""The Discord adapter: member DMs to staff-channel threads, `/concierge` app commands, card buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING

# Discord's upload limit, read by every process (importing it loads no SDK): a process serving another
# platform checks a file bound for Discord against it when relaying (see concierge.bootstrap.upload_limits).
from adapters.discord.limits import MAX_FILE_BYTES as MAX_FILE_BYTES

if TYPE_CHECKING:  # annotations only: importing this package loads no SDK
    from adapters.discord.bot import DiscordConnection
    from concierge.settings import Settings



def is_configured() -> bool:
    """Whether a Discord bot token is set (environment or .env); imports no SDK."""
    from adapters.discord.settings import DiscordSettings

    return DiscordSettings().configured()


async def run(settings: Settings, http: bool = False) -> None:
    """Connect to the Discord gateway and relay until stopped (Discord has no HTTP events mode)."""
    if http:
        raise SystemExit("--http is for Slack; the Discord bot always connects through the gateway.")
    from adapters.discord.bot import serve

    await serve(settings)


async def connect(settings: Settings, **_options: object) -> DiscordConnection:
    """Discord's `concierge.serve.Connection`, to serve beside other platforms from one runtime.

    Discord has no HTTP events mode: `--http` is Slack's.
    """
    from adapters.discord.bot import DiscordConnection, spans_platforms
    from adapters.discord.settings import DiscordSettings

    return DiscordConnection(settings, DiscordSettings(), users_as_text=spans_platforms(settings))
