"""The Discord bot: intents and permissions it needs, its cogs, and wiring it to the core."""

from __future__ import annotations

import asyncio
import logging
import discord
from discord.ext import commands

from adapters.discord.cards import CardButton
from adapters.discord.forms import FormCog
from adapters.discord.platform import DiscordPlatform
from adapters.discord.relay import RelayCog
from adapters.discord.settings import DiscordSettings
from adapters.discord.slash import ConciergeTree, SlashCog
from concierge.bootstrap import Runtime, build_runtime
from concierge.clock import Clock
from concierge.database import Database
from concierge.settings import Settings

log = logging.getLogger(__name__)


def intents() -> discord.Intents:
    """Guilds (channels, threads), DMs and staff messages, and message content.

    `message_content` is privileged: switch on "Message Content Intent" in the Developer Portal,
    or expert replies in staff threads arrive empty.
    """
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.dm_messages = True
    wanted.guild_messages = True
    wanted.message_content = True
    return wanted


def required_permissions() -> discord.Permissions:
    """Exactly what the code uses in the staff channel; the invite link asks for these."""
    return discord.Permissions(
        view_channel=True,  # see the staff channel and its threads
        send_messages=True,  # post conversation cards; unarchive a quiet thread
        embed_links=True,  # the card is an embed
        create_public_threads=True,  # one thread per conversation, opened on its card
        send_messages_in_threads=True,  # relay member messages and notices into the thread
        read_message_history=True,  # read threads back after downtime; look for a post whose outcome was lost
    )


class ConciergeBot(commands.Bot):
    """A discord.py bot whose cogs translate between Discord and the concierge core.

    Attributes:
        settings: the core's settings (staff channel id, admins as `discord:<user id>`).
        discord_settings: the DISCORD_* settings.
        platform: the `Platform` port the outbox sends through.
        runtime: the wired core (set by `create_bot`).
        catch_up_task: the latest catch-up after a (re)connect (see `adapters.discord.catch_up`).
    """

    def __init__(self, settings: Settings, discord_settings: DiscordSettings, *, run_outbox: bool = True) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,  # unused: the bot has no text commands
            help_command=None,
            intents=intents(),
            tree_cls=ConciergeTree,
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=discord_settings.max_ratelimit_timeout_s,
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
        )
        self.settings = settings
        self.discord_settings = discord_settings
        self.platform = DiscordPlatform(self, discord_settings)
        self.runtime: Runtime | None = None
        self.run_outbox = run_outbox
        self.catch_up_task: asyncio.Task[None] | None = None

    @property
    def concierge(self):  # noqa: ANN201 - concierge.app.Concierge
        if self.runtime is None:
            raise RuntimeError("the bot is not wired to a runtime; use create_bot()")
        return self.runtime.concierge

    async def setup_hook(self) -> None:
        # Card buttons are matched by their custom id's pattern: presses on cards sent before a
        # restart still reach the core without registering a view per conversation.
        self.add_dynamic_items(CardButton)
        await self.add_cog(RelayCog(self))
        await self.add_cog(FormCog(self))
        slash = SlashCog(self)
        await self.add_cog(slash)
        if self.run_outbox:
            await self.add_cog(OutboxCog(self))
        if self.discord_settings.sync_commands:
            await slash.sync_if_changed()

    async def on_message(self, message: discord.Message) -> None:
        """No text commands: the relay cog handles messages."""

    async def on_ready(self) -> None:
        for channel in self.settings.staff_channels():  # the staff channel and each specialty's own
            staff = self.get_channel(int(channel)) if channel.isdigit() else None
            if staff is None:
                log.warning("connected as %s, but staff channel %s is not visible to the bot: run "
                            "`concierge discord doctor`", self.user, channel)
            else:
                log.info("connected as %s; staff channel #%s", self.user, staff)


class OutboxCog(commands.Cog):
    """Owns the core's background work for as long as the bot runs: the outbox dispatcher and the
    digest scheduler (its periodic tick and per-platform send limiter), as `run_background` starts them."""

    def __init__(self, bot: ConciergeBot) -> None:
        self.bot = bot
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self.bot.runtime.run_background(), name="concierge-background")

    async def cog_unload(self) -> None:
        # A clean stop: the send and the event in flight finish and their outcomes are recorded.
        if self._task is not None:
            await self.bot.runtime.stop_background(self._task)


def create_bot(
    settings: Settings,
    discord_settings: DiscordSettings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    run_outbox: bool = True,
) -> ConciergeBot:
    """A bot wired to a fresh runtime on the configured database (nothing connects yet)."""
    bot = ConciergeBot(settings, discord_settings, run_outbox=run_outbox)
    bot.runtime = build_runtime(settings, {bot.platform.name: bot.platform}, db=db, clock=clock)
    return bot


def startup_problems(settings: Settings, discord_settings: DiscordSettings) -> list[str]:
    """Settings that keep the bot from starting, each with how to fix it."""
    problems = []
    if not discord_settings.configured():
        problems.append("DISCORD_TOKEN is not set (Developer Portal > your application > Bot > Reset Token).")
    if not discord_settings.guild_id:
        problems.append("DISCORD_GUILD_ID is not set (Developer Mode on, right-click the server > Copy Server ID).")
    if not settings.staff_channel.isdigit():
        problems.append(
            f"CONCIERGE_STAFF_CHANNEL must be the staff channel's id, not {settings.staff_channel!r} "
            "(right-click the channel > Copy Channel ID)."
        )
    for specialty, channel in settings.specialty_channels.items():
        if not channel.isdigit():
            problems.append(f"CONCIERGE_SPECIALTY_CHANNELS must give channel ids, not {channel!r} for {specialty} "
                            "(right-click the channel > Copy Channel ID).")
    if settings.staff_platform not in ("", "discord"):
        problems.append("CONCIERGE_STAFF_PLATFORM must be empty or 'discord' when the bot runs on Discord.")
    return problems


async def serve(settings: Settings, discord_settings: DiscordSettings | None = None) -> None:
    """Connect to Discord and relay until stopped."""
    discord_settings = discord_settings or DiscordSettings()
    problems = startup_problems(settings, discord_settings)
    if problems:
        raise SystemExit("Cannot start the Discord bot:\n- " + "\n- ".join(problems))
    bot = create_bot(settings, discord_settings)
    try:
        async with bot:
            await bot.start(discord_settings.token.get_secret_value())
    finally:
        bot.runtime.close()
