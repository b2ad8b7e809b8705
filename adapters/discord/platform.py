"""DiscordPlatform: the core's `Platform` port on discord.py's HTTP client, raising the core's neutral errors."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import discord
from discord.http import handle_message_parameters

from adapters.discord.cards import card_view, embed_for
from adapters.discord.dm_channels import DmChannels
from adapters.discord.errors import neutral_errors
from adapters.discord.files import MAX_UPLOAD_BYTES, DiscordFiles, left_out
from adapters.discord.limits import MAX_CONTENT, split_message
from adapters.discord.mentions import NO_MENTIONS, allowed_mentions_for, content_with_mentions
from adapters.discord.part_matching import nonce_for, own_parts, part_content
from adapters.discord.settings import DiscordSettings
from concierge.platform import Address, MessageRef, Outbound, Unreachable

log = logging.getLogger(__name__)

NAME = "discord"
THREAD_NAME_CHARS = 100

ARCHIVED_THREAD = 50083  # "operation cannot be performed on an archived thread"
UNKNOWN_MESSAGE = 10008  # to a post with a nonce: the message of that nonce was deleted (a card taken back)
THREAD_EXISTS = 160004  # "a thread has already been created for this message"

RECENT_MESSAGES = 50  # how far back `find_sent` looks in the target channel


class DiscordPlatform:
    """Sends the core's messages through discord.py's HTTP client.

    Every message goes out with `allowed_mentions` that ping nobody but the users the core pages
    on purpose (`Outbound.mentions`, written as `<@id>` on the message's first line): a member's
    text never pings staff, @everyone or a role.
    Sends split over 2000 characters remember how far they got, so a retry after a failure in
    the middle continues instead of repeating the parts already posted.
    Each part carries a nonce made from the outbox's idempotency key (`enforce_nonce`): a retry
    within a few minutes gets Discord's first message back instead of a copy; later, `find_sent`
    looks for the message in the channel before the outbox sends it again.
    """

    name = NAME
    max_file_bytes = MAX_UPLOAD_BYTES

    def __init__(self, client: discord.Client, settings: DiscordSettings, files: DiscordFiles | None = None) -> None:
        self.client = client
        self.settings = settings
        self.files = files  # `Outbound.files` ride on the first part (see adapters.discord.files)
        self.dm_channels = DmChannels(settings.dm_open_interval_s, settings.dm_open_max_wait_s)
        self._progress: OrderedDict[tuple, list[str]] = OrderedDict()

    def share_budgets(self, budget: Callable[[str, float, int], Callable[[], Awaitable[float]]]) -> None:
        """Take the pace of opening DMs from a budget all the bot's processes share (given by the core
        on PostgreSQL: `budget(key, rate_per_s, burst)` returns its slot reservation)."""
        if self.settings.dm_open_interval_s > 0:
            self.dm_channels.reserve = budget("discord:open-dm", 1.0 / self.settings.dm_open_interval_s, 1)

    @property
    def http(self):  # noqa: ANN201 - discord.http.HTTPClient, whose TypedDict payloads are read here as JSON
        return self.client.http

    # The port.

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        """Post into a thread, a channel or a DM; a user-only address opens the DM first."""
        address, target = await self._target(address)
        if address.thread:
            await self._unarchive_if_known_archived(target)
        ids = await self._post_parts(target, message, in_thread=bool(address.thread))
        return MessageRef(address, ids[0])

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        """Post the card in the staff channel, then open a thread on that message.

        The thread carries the card's title as its name; text past 2000 characters continues
        inside the thread. Discord gives a thread started from a message the message's id.
        """
        key = self._thread_key(channel, message)
        done = self._progress.setdefault(key, [])
        self._trim_progress()
        parts = split_message(content_with_mentions(message) + left_out(self.files, message)) or [""]
        async with neutral_errors():
            if not done:
                starter = await self._create_message(channel.channel, parts[0], message, with_card=True,
                                                     first=True, part=0)
                done.append(str(starter["id"]))
            if len(done) < 2:
                try:
                    thread = await self.http.start_thread_with_message(
                        channel.channel,
                        done[0],
                        name=_thread_name(message),
                        auto_archive_duration=self.settings.thread_archive_minutes,
                    )
                except discord.HTTPException as error:
                    if error.code == THREAD_EXISTS:
                        # An earlier try opened it but its answer was lost: the thread has the card's id.
                        thread = {"id": done[0]}
                    elif error.status < 500 and error.status != 429:
                        # The card cannot get a thread: take it back so a retry posts a clean one.
                        with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, OSError):
                            await self.http.delete_message(channel.channel, done[0])
                        self._progress.pop(key, None)
                        raise
                    else:
                        raise
                done.append(str(thread["id"]))
            thread_id = done[1]
            while len(done) - 2 < len(parts) - 1:
                index = len(done) - 1
                posted = await self._create_message(thread_id, parts[index], message, with_card=False, part=index)
                done.append(str(posted["id"]))
        self._progress.pop(key, None)
        return MessageRef(
            Address(NAME, channel.channel, channel.user, thread_id, channel.workspace), done[0]
        )

    async def open_dm(self, user: Address) -> Address:
        """The DM channel with `user` (remembered; new ones are throttled)."""

        async def open_channel(user_id: str) -> str:
            async with neutral_errors():
                data = await self.http.start_private_message(int(user_id))
            return str(data["id"])

        channel = await self.dm_channels.channel_of(user.user, open_channel)
        return Address(NAME, channel, user.user)

    async def edit(self, ref: MessageRef, message: Outbound) -> None:
        """Replace the text and card of a message the bot sent (text beyond 2000 is cut)."""
        address = ref.address
        # A thread's starter message lives in the parent channel and shares the thread's id.
        in_thread = address.thread and address.thread != ref.message_id
        channel = address.thread if in_thread else address.channel
        content = content_with_mentions(message)
        text = content if len(content) <= MAX_CONTENT else content[: MAX_CONTENT - 1] + "…"
        embed = embed_for(message.card, message.text) if message.card else None
        view = card_view(message.card) if message.card else None
        params = handle_message_parameters(
            content=text or None, embed=embed, view=view, allowed_mentions=allowed_mentions_for(message)
        )
        async with neutral_errors():
            await self.http.edit_message(channel, ref.message_id, params=params)

    async def tell(self, address: Address, message: Outbound) -> None:
        """A word to a staff member where they wrote: a plain post in their thread, pinging nobody.

        The staff channel is staff-only, so this is as private as Discord allows outside an
        interaction. Not an outbox message: no nonce, no retry.
        """
        target = address.thread or address.channel
        if not target:
            raise Unreachable("an address with neither thread nor channel")
        quiet = replace(message, mentions=(), idempotency_key="")
        parts = split_message(quiet.text) or [""]
        async with neutral_errors():
            for index, part in enumerate(parts):
                await self._create_message(target, part, quiet, with_card=index == 0,
                                           in_thread=bool(address.thread), first=index == 0)

    async def find_sent(self, address: Address, message: Outbound, *, opens_thread: bool = False
                        ) -> MessageRef | None:
        """The message an earlier attempt posted, when it arrived; None when it did not.

        Discord keeps no nonce on a stored message, so this reads the target's recent messages
        and looks among the bot's own posts after the last message by anyone else (one by someone
        else after it would make it an older, identical message: sending again is the safe side,
        and a retry within Discord's nonce window gets the first post back anyway), matching the
        text of each part and the card's title and buttons.
        When only some parts arrived, the next `send`/`open_thread` continues after them.
        """
        parts = split_message(content_with_mentions(message) + left_out(self.files, message)) or [""]
        if not opens_thread:
            address, target = await self._target(address)
            found = [str(data["id"]) for data in await self._find_parts(target, parts, message, with_card=True)]
            if not found:
                return None
            if len(found) < len(parts):
                log.info("%d of %d parts of a message had reached %s: sending the rest",
                         len(found), len(parts), target)
                self._progress[("post", target, _fingerprint(message))] = found
                return None
            return MessageRef(address, found[0])
        cards = await self._find_parts(address.channel, parts[:1], message, with_card=True)
        if not cards:
            return None
        card = cards[0]
        done = [str(card["id"])]
        thread = str(card["thread"]["id"]) if card.get("thread") else ""
        if thread:
            done.append(thread)
            rest = await self._find_parts(thread, parts[1:], message, with_card=False)
            done += [str(data["id"]) for data in rest]
        if len(done) < len(parts) + 1:
            # The card arrived, not all that goes with it: `open_thread` opens the thread or posts the rest.
            log.info("a new conversation's card had reached %s, not all of it: completing it", address.channel)
            self._progress[self._thread_key(address, message)] = done
            return None
        return MessageRef(Address(NAME, address.channel, address.user, thread, address.workspace), done[0])

    # What the event side tells the platform.

    def remember_dm(self, user: str, channel: str) -> None:
        """A member wrote from this DM channel: no need to open it again."""
        self.dm_channels.remember(user, channel)

    # Internals.

    async def _target(self, address: Address) -> tuple[Address, str]:
        """The address (its DM opened when only the user is known) and the channel id to post in."""
        if address.thread:
            return address, address.thread
        if address.channel:
            return address, address.channel
        if address.user:
            address = await self.open_dm(address)
            return address, address.channel
        raise Unreachable("an address with neither channel nor user")

    @staticmethod
    def _thread_key(channel: Address, message: Outbound) -> tuple:
        return ("thread", channel.channel, _fingerprint(message))

    async def _post_parts(self, target: str, message: Outbound, *, in_thread: bool) -> list[str]:
        key = ("post", target, _fingerprint(message))
        done = self._progress.setdefault(key, [])
        self._trim_progress()
        parts = split_message(content_with_mentions(message) + left_out(self.files, message)) or [""]
        async with neutral_errors():
            while len(done) < len(parts):
                data = await self._create_message(
                    target, parts[len(done)], message, with_card=not done, in_thread=in_thread, first=not done,
                    part=len(done),
                )
                done.append(str(data["id"]))
        self._progress.pop(key, None)
        return done

    async def _create_message(
        self, channel: str, content: str, message: Outbound, *, with_card: bool, in_thread: bool = False,
        first: bool = False, part: int = 0,
    ) -> dict:
        """One part of `message`; only the first part (the one naming the paged users) may ping them."""
        card = message.card if with_card else None
        content = part_content(content, card)
        embed = embed_for(card, message.text) if card else None

        nonce = nonce_for(message.idempotency_key, part)
        store = self.files
        files = store.sorted_out(message)[0] if first and store and message.files else []

        async def post() -> dict:
            params = handle_message_parameters(
                files=store.files_for(files) if store and files else discord.utils.MISSING,
                content=content or None,
                embed=embed if embed is not None else discord.utils.MISSING,
                view=card_view(card) if card else discord.utils.MISSING,
                allowed_mentions=allowed_mentions_for(message) if first else NO_MENTIONS,
                nonce=nonce,  # discord.py adds enforce_nonce with it
            )
            return await self.http.send_message(channel, params=params)

        try:
            return await post()
        except discord.HTTPException as error:
            if nonce is not None and error.code == UNKNOWN_MESSAGE:
                # The bot deleted what it posted under this nonce (a card that could not get its
                # thread): Discord will not create that nonce again, so this post goes without.
                nonce = None
                return await post()
            if not (in_thread and error.code == ARCHIVED_THREAD):
                raise
        # The thread archived itself after a quiet spell; open it again and post.
        await self.http.edit_channel(channel, archived=False)
        return await post()

    async def _find_parts(self, target: str, parts: list[str], message: Outbound, *,
                          with_card: bool) -> list[dict[str, Any]]:
        """The leading `parts` of `message` among the bot's last posts in `target`, as Discord has them.

        Only the bot's posts after the last message by anyone else count (see `find_sent`); the
        newest run that starts with the first part is taken.
        """
        if not parts:
            return []
        async with neutral_errors():
            recent = await self.http.logs_from(target, RECENT_MESSAGES)  # newest first
        return own_parts(recent, self._by_me, parts, message, with_card=with_card)

    def _by_me(self, data: dict[str, Any]) -> bool:
        me = self.client.user.id if self.client.user else self.client.application_id
        return str((data.get("author") or {}).get("id")) == str(me)

    async def _unarchive_if_known_archived(self, thread_id: str) -> None:
        thread = self.client.get_channel(int(thread_id)) if thread_id.isdigit() else None
        if isinstance(thread, discord.Thread) and thread.archived and not thread.locked:
            async with neutral_errors():
                await self.http.edit_channel(thread_id, archived=False)

    def _trim_progress(self, capacity: int = 1000) -> None:
        while len(self._progress) > capacity:
            self._progress.popitem(last=False)


def _fingerprint(message: Outbound) -> tuple:
    return (message.text, repr(message.card), message.mentions)


def _thread_name(message: Outbound) -> str:
    name = message.card.title if message.card else (message.text.split("\n", 1)[0] or "conversation")
    name = " ".join(name.split()) or "conversation"
    return name if len(name) <= THREAD_NAME_CHARS else name[: THREAD_NAME_CHARS - 1] + "…"
