"""The Discord bot: intents and permissions it needs, its cogs, and wiring it to the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import discord
from discord.ext import commands

from adapters.discord.files import DiscordFiles
from adapters.discord.platform import DiscordPlatform
from adapters.discord.presses import CardPress, FormCog
from adapters.discord.relay import RelayCog
from adapters.discord.settings import DiscordSettings
from adapters.discord.slash import ConciergeTree, SlashCog
from concierge.app import Concierge
from concierge.bootstrap import Runtime, adapter_names, build_runtime, load_adapter
from concierge.clock import Clock
from concierge.database import Database
from concierge.serve import serve_connections, settings_for
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


class Intake:
    """The events the bot is handling now (messages, commands, presses); closed at shutdown.

    Once closed, new events are turned away: a message is left to the catch-up of the next start,
    a command or a press is answered "try again in a minute". `idle` waits for those under way.
    """

    def __init__(self) -> None:
        self.closed = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:  # a context manager around one event's hand-over
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def idle(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)


class ConciergeBot(commands.Bot):
    """A discord.py bot whose cogs translate between Discord and the concierge core.

    Attributes:
        settings: the core's settings (staff channel id, admins as `discord:<user id>`).
        discord_settings: the DISCORD_* settings.
        platform: the `Platform` port the outbox sends through.
        files: reads attachments into the file store, and sends stored files.
        runtime: the wired core, set before login (`create_bot`, or `DiscordConnection.start` for a
            runtime shared with other platforms); its background work runs elsewhere, once per process.
        intake: the events being handled (see `Intake`).
        users_as_text: render `user` options as text, so a person on another platform can be named
            (`slack:U0123`) beside a mention; see `spans_platforms`.
        catch_up_task: the latest catch-up after a (re)connect (see `adapters.discord.catch_up`).
    """

    def __init__(self, settings: Settings, discord_settings: DiscordSettings, *, users_as_text: bool = False) -> None:
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
        self.files = DiscordFiles.from_settings(settings)  # attachments in (the relay) and out (the platform)
        self.platform = DiscordPlatform(self, discord_settings, self.files)
        self.runtime: Runtime | None = None
        self.intake = Intake()
        self.users_as_text = users_as_text
        self.catch_up_task: asyncio.Task[None] | None = None

    @property
    def concierge(self) -> Concierge:
        if self.runtime is None:
            raise RuntimeError("the bot is not wired to a runtime; use create_bot()")
        return self.runtime.concierge

    async def setup_hook(self) -> None:
        # Card buttons are matched by their custom id's pattern: presses on cards sent before a
        # restart still reach the core without registering a view per conversation.
        self.add_dynamic_items(CardPress)
        await self.add_cog(RelayCog(self))
        await self.add_cog(FormCog(self))
        slash = SlashCog(self)
        await self.add_cog(slash)
        if self.discord_settings.sync_commands:
            await slash.sync_if_changed()

    async def on_message(self, message: discord.Message) -> None:
        """No text commands: the relay cog handles messages."""

    async def on_ready(self) -> None:
        if self.settings.staff_platform not in ("", "discord"):
            log.info("connected as %s; the staff channel is on %s", self.user, self.settings.staff_platform)
            return
        for channel in self.settings.staff_channels():  # the staff channel and each specialty's own
            staff = self.get_channel(int(channel)) if channel.isdigit() else None
            if staff is None:
                log.warning("connected as %s, but staff channel %s is not visible to the bot: run "
                            "`concierge discord doctor`", self.user, channel)
            else:
                log.info("connected as %s; staff channel #%s", self.user, staff)

    async def stop_taking_events(self, timeout: float = 10.0) -> None:
        """Turn new events away, stop the catch-up, and wait for the events under way to be handed over."""
        self.intake.closed = True
        relay = self.get_cog("RelayCog")
        if isinstance(relay, RelayCog):
            await relay.catch_up.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await self.intake.idle(timeout)


def create_bot(
    settings: Settings,
    discord_settings: DiscordSettings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    users_as_text: bool = False,
) -> ConciergeBot:
    """A bot wired to a fresh runtime of its own on the configured database (nothing connects yet)."""
    bot = ConciergeBot(settings, discord_settings, users_as_text=users_as_text)
    bot.runtime = build_runtime(settings, {bot.platform.name: bot.platform}, db=db, clock=clock)
    return bot


def startup_problems(settings: Settings, discord_settings: DiscordSettings) -> list[str]:
    """Settings that keep the bot from starting, each with how to fix it.

    The staff channels must be Discord channel ids only when the staff threads live on Discord.
    """
    problems = []
    if not discord_settings.configured():
        problems.append("DISCORD_TOKEN is not set (Developer Portal > your application > Bot > Reset Token).")
    if not discord_settings.guild_id:
        problems.append("DISCORD_GUILD_ID is not set (Developer Mode on, right-click the server > Copy Server ID).")
    if settings.staff_platform not in ("", "discord"):
        return problems  # the staff channels are another platform's: its adapter checks them
    if not settings.staff_channel.isdigit():
        problems.append(
            f"CONCIERGE_STAFF_CHANNEL must be the staff channel's id, not {settings.staff_channel!r} "
            "(right-click the channel > Copy Channel ID)."
        )
    for specialty, channel in settings.specialty_channels.items():
        if not channel.isdigit():
            problems.append(f"CONCIERGE_SPECIALTY_CHANNELS must give channel ids, not {channel!r} for {specialty} "
                            "(right-click the channel > Copy Channel ID).")
    return problems


def spans_platforms(settings: Settings) -> bool:
    """Whether the desk reaches past Discord: the staff channel is on another platform, or another
    platform's tokens are set (served by this process too, or by a second one)."""
    if settings.staff_platform not in ("", "discord"):
        return True
    return any(load_adapter(name).is_configured() for name in adapter_names() if name not in ("discord", "local"))


class DiscordConnection:
    """Discord's side of a running bot (`concierge.serve.Connection`): the bot and its `DiscordPlatform`
    first, then, attached to the shared runtime, logged in (cogs, command sync) and on the gateway."""

    def __init__(self, settings: Settings, discord_settings: DiscordSettings, *, users_as_text: bool = False) -> None:
        problems = startup_problems(settings, discord_settings)
        if problems:
            raise SystemExit("Cannot start the Discord bot:\n- " + "\n- ".join(problems))
        self.discord_settings = discord_settings
        self.bot = ConciergeBot(settings, discord_settings, users_as_text=users_as_text)
        self.platform = self.bot.platform
        self._gateway: asyncio.Task[None] | None = None

    async def start(self, runtime: Runtime) -> None:
        self.bot.runtime = runtime
        await self.bot.login(self.discord_settings.token.get_secret_value())
        self._gateway = asyncio.create_task(self.bot.connect(), name="discord-gateway")

    async def wait(self) -> None:
        if self._gateway is not None:
            await asyncio.shield(self._gateway)  # cancelling the wait leaves the gateway running

    async def stop(self) -> None:
        await self.bot.stop_taking_events()

    def connected(self) -> bool:
        """On the gateway, READY received and the websocket open (`/readyz`)."""
        ws = self.bot.ws
        return self.bot.is_ready() and not self.bot.is_closed() and ws is not None and ws.open

    async def close(self) -> None:
        # Cogs unload (the catch-up stops, private words under way are said), then the gateway and HTTP close.
        await self.bot.close()
        if self._gateway is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._gateway  # it ends once the bot is closed; a failure was raised by `wait`
        # discord.py's wait for the guilds of a READY (up to 2 s) outlives `close`, and would then
        # dispatch `ready` to a closed bot: ended here, so the process stops with nothing running.
        ready = getattr(self.bot._connection, "_ready_task", None)
        if ready is not None and not ready.done():
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready


async def serve(settings: Settings, discord_settings: DiscordSettings | None = None) -> None:
    """Serve Discord alone: connect to the gateway and relay until stopped."""
    settings = settings_for(settings, ["discord"])
    connection = DiscordConnection(settings, discord_settings or DiscordSettings(),
                                   users_as_text=spans_platforms(settings))
    await serve_connections(settings, [connection])
