"""Messages in: a member's DMs and edits, and staff replies in staff-channel threads, handed to the core."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from adapters.discord.limits import split_message
from concierge.inbound import Attachment, Inbound, MemberMessage, StaffReply
from concierge.platform import Address

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
PEOPLE_WRITE = (discord.MessageType.default, discord.MessageType.reply)  # not joins, pins, thread notices
THREAD_TYPES = {10, 11, 12}  # announcement, public and private thread channel types


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    return tuple(Attachment(item.filename, item.url, item.size) for item in message.attachments)


def edit_event_id(message: discord.Message) -> str:
    """One event id per edit of a message, so each edit is relayed once."""
    edited_at = message.edited_at or message.created_at
    return f"{message.id}:edit:{int(edited_at.timestamp() * 1000)}"


class RelayCog(commands.Cog):
    """Listens to messages; the message id is the event id, so a redelivered event is a no-op."""

    def __init__(self, bot: Any, thread_cache: int = 10_000) -> None:
        self.bot = bot
        self._parents: OrderedDict[int, int | None] = OrderedDict()  # channel id -> thread parent (None: no thread)
        self._thread_cache = thread_cache

    @property
    def staff_channel(self) -> int:
        return int(self.bot.settings.staff_channel)

    @property
    def staff_channels(self) -> set[int]:
        """The staff channel and every specialty's own (CONCIERGE_SPECIALTY_CHANNELS)."""
        return {int(channel) for channel in self.bot.settings.staff_channels() if channel.isdigit()}

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        event = await self.inbound_of(message)
        if event is None:
            return
        reply = await self.bot.concierge.handle(event)
        if isinstance(event, StaffReply) and reply is not None:
            await self._answer_in_thread(message, reply.text)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        if not isinstance(message.channel, discord.DMChannel) or not self._written_by_a_person(message):
            return
        if message.edited_at is None:
            return  # Discord added a link preview: not an edit by the member
        self.bot.platform.remember_dm(str(message.author.id), str(message.channel.id))
        await self.bot.concierge.handle(MemberMessage(
            event_id=edit_event_id(message),
            address=Address("discord", str(message.channel.id), str(message.author.id)),
            text=message.content,
            attachments=attachments_of(message),
            display_name=message.author.display_name,
            edited=True,
        ))

    async def inbound_of(self, message: discord.Message) -> Inbound | None:
        """The core's event for a message, or None when it is not ours to relay."""
        if not self._written_by_a_person(message):
            return None
        author = str(message.author.id)
        if isinstance(message.channel, discord.DMChannel):
            self.bot.platform.remember_dm(author, str(message.channel.id))
            return MemberMessage(
                event_id=str(message.id),
                address=Address("discord", str(message.channel.id), author),
                text=message.content,
                attachments=attachments_of(message),
                display_name=message.author.display_name,
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
            attachments=attachments_of(message),
        )

    async def _parent_of(self, channel: Any) -> int | None:
        """The parent channel of a thread; None for anything that is not a thread."""
        if isinstance(channel, discord.Thread):
            return channel.parent_id
        if not isinstance(channel, discord.PartialMessageable):
            return None  # a channel the cache knows, not a thread
        # A thread the cache has not seen (it was archived when we connected, or we restarted).
        if channel.id in self._parents:
            return self._parents[channel.id]
        try:
            data = await self.bot.http.get_channel(channel.id)
        except (discord.HTTPException, aiohttp.ClientError, OSError):
            log.warning("could not look up channel %s", channel.id, exc_info=True)
            return None
        parent = int(data["parent_id"]) if data.get("type") in THREAD_TYPES and data.get("parent_id") else None
        self._parents[channel.id] = parent
        while len(self._parents) > self._thread_cache:
            self._parents.popitem(last=False)
        return parent

    def _written_by_a_person(self, message: discord.Message) -> bool:
        return not message.author.bot and not message.webhook_id and message.type in PEOPLE_WRITE

    async def _answer_in_thread(self, message: discord.Message, text: str) -> None:
        """Staff get the core's private answer as a reply under their message (staff-only channel)."""
        try:
            await message.reply(split_message(text)[0] if text else "(done)", mention_author=False,
                                allowed_mentions=NO_MENTIONS)
        except (discord.HTTPException, OSError):
            log.warning("could not answer in thread %s", message.channel.id, exc_info=True)
