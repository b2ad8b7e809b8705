"""DiscordPlatform: the core's `Platform` port on discord.py's HTTP client, raising the core's neutral errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import discord
from discord.http import handle_message_parameters

from adapters.discord.cards import card_view, embed_for
from adapters.discord.limits import MAX_CONTENT, split_message
from adapters.discord.settings import DiscordSettings
from concierge.platform import (
    Address,
    MessageRef,
    Outbound,
    PlatformDown,
    PlatformError,
    RateLimited,
    Unreachable,
)

log = logging.getLogger(__name__)

NAME = "discord"
THREAD_NAME_CHARS = 100

# Discord JSON error codes that mean the recipient cannot be reached: permanent for this message.
UNREACHABLE = {
    50007: "cannot send messages to this user (DMs closed or no shared server)",
    10003: "the channel no longer exists",
    10013: "the user no longer exists",
    50278: "the bot shares no server with this user",
}
ARCHIVED_THREAD = 50083  # "operation cannot be performed on an archived thread"
THREAD_EXISTS = 160004  # "a thread has already been created for this message"
OPENING_DMS_TOO_FAST = 40003
DM_TOO_FAST_BACKOFF_S = 60.0
CLOUDFLARE_BACKOFF_S = 60.0  # a 429 without Discord's body: wait rather than add to the ban count

NO_MENTIONS = discord.AllowedMentions.none()
MAX_MENTIONED_USERS = 100  # Discord's limit for allowed_mentions.users


def paged_users(message: Outbound) -> list[int]:
    """The user ids the core pages on purpose (`Outbound.mentions`): digits only, each once."""
    ids = dict.fromkeys(int(user) for user in message.mentions if str(user).isdigit())
    return list(ids)[:MAX_MENTIONED_USERS]


def allowed_mentions_for(message: Outbound) -> discord.AllowedMentions:
    """Exactly the paged users may be pinged; never @everyone, roles, or a replied-to author."""
    users = paged_users(message)
    if not users:
        return NO_MENTIONS
    return discord.AllowedMentions(everyone=False, roles=False, replied_user=False,
                                   users=[discord.Object(id=user) for user in users])


def content_with_mentions(message: Outbound) -> str:
    """The text with the paged users' `<@id>` on a first line of its own (so it lands in part one)."""
    users = paged_users(message)
    if not users:
        return message.text
    line = " ".join(f"<@{user}>" for user in users)
    return f"{line}\n{message.text}" if message.text else line


def neutral_error(error: BaseException) -> PlatformError:
    """The core's error for what discord.py or aiohttp raised."""
    if isinstance(error, discord.RateLimited):
        return RateLimited(error.retry_after, "Discord rate limit")
    if isinstance(error, discord.HTTPException):
        code, status = error.code, error.status
        detail = f"Discord {status} (code {code}): {error.text or 'no detail'}"
        if code in UNREACHABLE:
            return Unreachable(f"{UNREACHABLE[code]} (Discord error {code})")
        if code == OPENING_DMS_TOO_FAST:
            return RateLimited(DM_TOO_FAST_BACKOFF_S, "opening DMs too fast")
        if status == 429:
            retry_after = error.response.headers.get("Retry-After") if error.response is not None else None
            try:
                return RateLimited(float(retry_after), detail)
            except (TypeError, ValueError):
                return RateLimited(CLOUDFLARE_BACKOFF_S, detail)
        if status >= 500:
            return PlatformDown(detail)
        if status in (401, 403):
            # Token revoked or a permission missing in the staff channel: an admin can fix it, so
            # the outbox retries with backoff (bounded), never in a tight loop.
            log.error("Discord refused a request: %s", detail)
            return PlatformDown(detail)
        return Unreachable(detail)  # 400/404: this very request can never succeed
    if isinstance(error, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
        return PlatformDown(f"could not reach Discord: {type(error).__name__}")
    raise TypeError(f"not a Discord error: {error!r}")


@contextlib.asynccontextmanager
async def neutral_errors() -> AsyncIterator[None]:
    """Turn discord.py's and aiohttp's errors inside the block into the core's neutral errors."""
    try:
        yield
    except (discord.RateLimited, discord.HTTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
        raise neutral_error(error) from error


class DmChannels:
    """Remembers DM channel ids and spaces out the opening of new ones.

    Discord flags bots that open many DMs quickly, so a new DM waits for its slot; when the wait
    would be longer than `max_wait_s` it raises `RateLimited` and the outbox comes back later.
    """

    def __init__(
        self,
        interval_s: float,
        max_wait_s: float,
        *,
        capacity: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval_s = interval_s
        self.max_wait_s = max_wait_s
        self.capacity = capacity
        self.clock = clock
        self.sleep = sleep
        self.opened = 0  # DM channels opened through the API by this process
        self._known: OrderedDict[str, str] = OrderedDict()
        self._next_slot = float("-inf")
        self._lock = asyncio.Lock()

    def remember(self, user: str, channel: str) -> None:
        self._known[user] = channel
        self._known.move_to_end(user)
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)

    def known(self, user: str) -> str | None:
        return self._known.get(user)

    async def channel_of(self, user: str, open_channel: Callable[[str], Awaitable[str]]) -> str:
        """The DM channel id with `user`, opened with `open_channel` when not known yet."""
        if (known := self.known(user)) is not None:
            return known
        async with self._lock:
            if (known := self.known(user)) is not None:
                return known
            wait = self._next_slot - self.clock()
            if wait > self.max_wait_s:
                raise RateLimited(wait, "opening DMs is throttled")
            if wait > 0:
                await self.sleep(wait)
            self._next_slot = self.clock() + self.interval_s
            channel = await open_channel(user)
            self.opened += 1
            self.remember(user, channel)
            return channel


class DiscordPlatform:
    """Sends the core's messages through discord.py's HTTP client.

    Every message goes out with `allowed_mentions` that ping nobody but the users the core pages
    on purpose (`Outbound.mentions`, written as `<@id>` on the message's first line): a member's
    text never pings staff, @everyone or a role.
    Sends split over 2000 characters remember how far they got, so a retry after a failure in
    the middle continues instead of repeating the parts already posted.
    """

    name = NAME

    def __init__(self, client: discord.Client, settings: DiscordSettings) -> None:
        self.client = client
        self.settings = settings
        self.dm_channels = DmChannels(settings.dm_open_interval_s, settings.dm_open_max_wait_s)
        self._progress: OrderedDict[tuple, list[str]] = OrderedDict()

    @property
    def http(self):  # noqa: ANN201 - discord.http.HTTPClient
        return self.client.http

    # The port.

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        """Post into a thread, a channel or a DM; a user-only address opens the DM first."""
        if address.thread:
            target = address.thread
            await self._unarchive_if_known_archived(target)
        elif address.channel:
            target = address.channel
        elif address.user:
            address = await self.open_dm(address)
            target = address.channel
        else:
            raise Unreachable("an address with neither channel nor user")
        ids = await self._post_parts(target, message, in_thread=bool(address.thread))
        return MessageRef(address, ids[0])

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        """Post the card in the staff channel, then open a thread on that message.

        The thread carries the card's title as its name; text past 2000 characters continues
        inside the thread. Discord gives a thread started from a message the message's id.
        """
        key = ("thread", channel.channel, _fingerprint(message))
        done = self._progress.setdefault(key, [])
        parts = split_message(content_with_mentions(message)) or [""]
        async with neutral_errors():
            if not done:
                starter = await self._create_message(channel.channel, parts[0], message, with_card=True,
                                                     first=True)
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
                posted = await self._create_message(thread_id, parts[len(done) - 1], message, with_card=False)
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

    # What the event side tells the platform.

    def remember_dm(self, user: str, channel: str) -> None:
        """A member wrote from this DM channel: no need to open it again."""
        self.dm_channels.remember(user, channel)

    # Internals.

    async def _post_parts(self, target: str, message: Outbound, *, in_thread: bool) -> list[str]:
        key = ("post", target, _fingerprint(message))
        done = self._progress.setdefault(key, [])
        self._trim_progress()
        parts = split_message(content_with_mentions(message)) or [""]
        async with neutral_errors():
            while len(done) < len(parts):
                data = await self._create_message(
                    target, parts[len(done)], message, with_card=not done, in_thread=in_thread, first=not done
                )
                done.append(str(data["id"]))
        self._progress.pop(key, None)
        return done

    async def _create_message(
        self, channel: str, content: str, message: Outbound, *, with_card: bool, in_thread: bool = False,
        first: bool = False,
    ) -> dict:
        """One part of `message`; only the first part (the one naming the paged users) may ping them."""
        card = message.card if with_card else None
        if not content and card is None:
            content = "(empty message)"
        embed = embed_for(card, message.text) if card else None

        async def post() -> dict:
            params = handle_message_parameters(
                content=content or None,
                embed=embed if embed is not None else discord.utils.MISSING,
                view=card_view(card) if card else discord.utils.MISSING,
                allowed_mentions=allowed_mentions_for(message) if first else NO_MENTIONS,
            )
            return await self.http.send_message(channel, params=params)

        try:
            return await post()
        except discord.HTTPException as error:
            if not (in_thread and error.code == ARCHIVED_THREAD):
                raise
        # The thread archived itself after a quiet spell; open it again and post.
        await self.http.edit_channel(channel, archived=False)
        return await post()

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
