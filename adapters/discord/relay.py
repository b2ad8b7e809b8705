"""Messages in: a member's DMs and edits, and staff replies in staff-channel threads, handed to the core.

A message is recorded by the core or the core says it could not be (`NotRecorded`): the gateway
cannot be refused or asked to send it again, so such a message is read back from the channel's
history by the catch-up (`adapters.discord.catch_up`), soon after and on every (re)connect.
Live messages and messages read back go through the same translation (`inbound_of`, `edit_of`),
so both give the core the same event, named by the Discord message id: one effect however often
a message arrives.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.ext import commands

from adapters.discord.catch_up import DiscordCatchUp
from concierge.app import NotRecorded, Receipt
from concierge.inbound import Inbound, MemberMessage, StaffReply
from concierge.platform import Address

if TYPE_CHECKING:
    from adapters.discord.bot import ConciergeBot  # which adds this cog

log = logging.getLogger(__name__)

PEOPLE_WRITE = (discord.MessageType.default, discord.MessageType.reply)  # not joins, pins, thread notices
THREAD_TYPES = {10, 11, 12}  # announcement, public and private thread channel types


def edit_event_id(message: discord.Message) -> str:
    """One event id per edit of a message, so each edit is relayed once."""
    edited_at = message.edited_at or message.created_at
    return f"{message.id}:edit:{int(edited_at.timestamp() * 1000)}"


def is_dm(channel: object) -> bool:
    """A direct message with the bot: a DM channel, or a partial one read back by the catch-up."""
    return isinstance(channel, discord.DMChannel) or getattr(channel, "type", None) is discord.ChannelType.private


class RelayCog(commands.Cog):
    """Listens to messages; the message id is the event id, so a redelivered event is a no-op."""

    def __init__(self, bot: ConciergeBot, thread_cache: int = 10_000) -> None:
        self.bot = bot
        self._parents: OrderedDict[int, int | None] = OrderedDict()  # channel id -> thread parent (None: no thread)
        self._thread_cache = thread_cache
        self.catch_up = DiscordCatchUp(self)

    async def cog_unload(self) -> None:
        await self.catch_up.stop()
        try:  # the words to staff already under way are said before the bot goes
            await asyncio.wait_for(self.bot.concierge.told(), 10)
        except (TimeoutError, RuntimeError):
            pass

    @property
    def staff_channel(self) -> int:
        return int(self.bot.settings.staff_channel)

    @property
    def staff_channels(self) -> set[int]:
        """The staff channel and every specialty's own (CONCIERGE_SPECIALTY_CHANNELS)."""
        return {int(channel) for channel in self.bot.settings.staff_channels() if channel.isdigit()}

    # Live messages.

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if self.bot.intake.closed:
            return  # shutting down: read back by the catch-up of the next start
        with self.bot.intake.handling():
            event = await self.inbound_of(message)
            if event is None:
                return
            await self.catch_up.plan_taken()
            if await self.deliver(event) is not None and isinstance(event, MemberMessage):
                self.catch_up.first_seen(event)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if self.bot.intake.closed:
            return
        with self.bot.intake.handling():
            event = self.edit_of(payload.message)
            if event is None:
                return
            await self.catch_up.plan_taken()
            await self.deliver(event)

    async def deliver(self, event: Inbound) -> Receipt | None:
        """Hand a message to the core; one it could not record is left to the catch-up (logged)."""
        try:
            return await self.bot.concierge.receive(event)
        except NotRecorded as error:
            log.error("Discord message %s could not be recorded (%s); its channel is read back later",
                      event.event_id, error)
        except Exception:
            log.exception("Discord message %s failed; its channel is read back later", event.event_id)
        self.catch_up.missed(event)
        return None

    # The gateway's life: catch up on what was written while the bot was away.

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        # READY of a new session: nothing of it is recorded yet, so the plan read now still
        # reaches back to before the downtime (live messages wait for it, see `plan_taken`).
        self.catch_up.connected()

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # After an IDENTIFY (start, or a reconnect that could not resume). A RESUME replays the
        # events missed meanwhile, so `on_resumed` needs no catch-up.
        self.catch_up.ready()

    async def run_catch_up(self) -> None:
        """Catch up now and wait until it is done (tests; `on_ready` runs it in the background)."""
        task = self.catch_up.ready()
        if task is not None:
            await task

    # Translation, the same for live messages and messages read back.

    async def inbound_of(self, message: discord.Message) -> Inbound | None:
        """The core's event for a message, or None when it is not ours to relay."""
        if not self._written_by_a_person(message):
            return None
        author = str(message.author.id)
        if is_dm(message.channel):
            self.bot.platform.remember_dm(author, str(message.channel.id))
            return MemberMessage(
                event_id=str(message.id),
                address=Address("discord", str(message.channel.id), author),
                text=message.content,
                attachments=await self.bot.files.take_in(message),
                display_name=message.author.display_name,
                written_at=message.created_at,
            )
        guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
        wanted = self.bot.discord_settings.guild_id
        if guild_id is None or (wanted and guild_id != wanted):
            return None
        parent = await self._parent_of(message.channel)
        if parent is None or parent not in self.staff_channels:
            return None
        return StaffReply(
            event_id=str(message.id),
            address=Address("discord", str(parent), author, str(message.channel.id), str(guild_id)),
            text=message.content,
            attachments=await self.bot.files.take_in(message),
            written_at=message.created_at,
        )

    def edit_of(self, message: discord.Message) -> MemberMessage | None:
        """The core's event for a member's edit of a DM, or None (not a DM, or no edit time: an unfurl)."""
        if not is_dm(message.channel) or not self._written_by_a_person(message):
            return None
        if message.edited_at is None:
            return None  # Discord added a link preview: not an edit by the member
        self.bot.platform.remember_dm(str(message.author.id), str(message.channel.id))
        return MemberMessage(
            event_id=edit_event_id(message),
            address=Address("discord", str(message.channel.id), str(message.author.id)),
            text=message.content,
            attachments=(),  # the files went with the message (Discord's client cannot add any in an edit)
            display_name=message.author.display_name,
            edited=True,
            written_at=message.edited_at,
        )

    def remember_parent(self, thread_id: int, parent_id: int) -> None:
        """A thread whose parent is known from the records (the catch-up): no lookup needed."""
        self._parents.setdefault(thread_id, parent_id)
        self._trim_parents()

    async def _parent_of(self, channel: object) -> int | None:
        """The parent channel of a thread; None for anything that is not a thread."""
        if isinstance(channel, discord.Thread):
            return channel.parent_id
        if not isinstance(channel, discord.PartialMessageable):
            return None  # a channel the cache knows, not a thread
        # A thread the cache has not seen (it was archived when we connected, or we restarted).
        if channel.id in self._parents:
            return self._parents[channel.id]
        try:
            data: Mapping[str, Any] = await self.bot.http.get_channel(channel.id)  # any kind of channel
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError):
            log.warning("could not look up channel %s", channel.id, exc_info=True)
            return None
        parent = int(data["parent_id"]) if data.get("type") in THREAD_TYPES and data.get("parent_id") else None
        self._parents[channel.id] = parent
        self._trim_parents()
        return parent

    def _trim_parents(self) -> None:
        while len(self._parents) > self._thread_cache:
            self._parents.popitem(last=False)

    def _written_by_a_person(self, message: discord.Message) -> bool:
        return not message.author.bot and not message.webhook_id and message.type in PEOPLE_WRITE

