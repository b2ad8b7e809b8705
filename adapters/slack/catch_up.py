"""Catch-up after downtime: what people wrote while the bot was stopped or disconnected, read back from Slack.

The Events API does not replay what was written while nobody acknowledged it (Slack gives up
after three retries). On start and after each Socket Mode reconnect the bot asks the core for a
`CatchUpPlan`, lists its DM channels (`users.conversations`, so a member's first DM is found
too), and reads each DM's history and each open staff thread's replies from where the records
stop (`plan.since`), at most `CONCIERGE_CATCH_UP_HOURS` back. Every message goes through the same
translation as a live event (`SlackListeners.message_inbound`) and `Concierge.receive`, oldest
first per place: a message already recorded is recognised by its `<channel>:<ts>` id and has no
second effect, so reading too much costs API calls, never a doubled message.

History methods are Tier 3 (50+ calls a minute; 1 a minute for commercially distributed apps
outside the Marketplace): calls are paced by a limiter (`SLACK_CATCH_UP_PER_MIN`) and a 429 is
waited out for its `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiolimiter import AsyncLimiter

from adapters.slack.files import with_files
from adapters.slack.platform import PLATFORM, datetime_to_ts
from concierge.inbox import NotRecorded
from concierge.platform import PlatformError, RateLimited

if TYPE_CHECKING:  # pragma: no cover
    from adapters.slack.listeners import SlackListeners

log = logging.getLogger(__name__)

PAGE_SIZE = 200  # messages per history page (Slack may return fewer)
MAX_RATE_LIMITED_WAITS = 5  # per call: a 429 this often in a row gives the place up until the next catch-up

Page = tuple[list[dict[str, Any]], str]


@dataclass
class CatchUpCounts:
    """What one catch-up did: messages read, places (DM channels and threads) read, messages new to us."""

    read: int = 0
    places: int = 0
    new: int = 0
    failed_places: int = 0


class SlackCatchUp:
    """Reads back DMs and open staff threads after downtime and hands every message to the core.

    Args:
        listeners: the running bot (its translation, its core, its Web API platform).
        per_minute: history calls allowed per minute (Slack's Tier 3: 50).
    """

    def __init__(self, listeners: SlackListeners, *, per_minute: float = 50) -> None:
        self.listeners = listeners
        self.platform = listeners.platform
        self.concierge = listeners.concierge
        self.limiter = AsyncLimiter(max(per_minute, 1), 60)
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests may shorten Retry-After waits

    async def run(self) -> CatchUpCounts:
        """One catch-up; stops early (logged) when the database cannot record what it reads."""
        counts = CatchUpCounts()
        if self.concierge.settings.catch_up_hours <= 0:
            log.info("catch-up is off (CONCIERGE_CATCH_UP_HOURS=0)")
            return counts
        taken = self.listeners.taken_plan()
        plan = await taken if taken is not None else await self.concierge.catch_up_plan(PLATFORM)
        try:
            dms = sorted(set(plan.dm_channels) | set(await self._dm_channels()))
        except PlatformError as error:
            log.warning("catch-up could not list the bot's DM channels (%s); reading the known ones", error)
            dms = sorted(plan.dm_channels)
        bot_user_id = await self._bot_user_id()
        try:
            for channel in dms:
                since = datetime_to_ts(plan.since(channel))
                await self._read_place(channel, "im", since, bot_user_id, counts, self._history_of(channel, since))
            for thread in plan.threads:
                since = datetime_to_ts(plan.since(thread.place))
                await self._read_place(thread.channel, "channel", since, bot_user_id, counts,
                                       self._replies_of(thread.channel, thread.thread, since))
        except NotRecorded as error:
            log.error("catch-up stopped: could not record a message (%s); the next start or reconnect resumes", error)
        log.info("caught up: %d messages read in %d channels, %d new%s", counts.read, counts.places, counts.new,
                 f" ({counts.failed_places} could not be read)" if counts.failed_places else "")
        self.concierge.metrics.count_caught_up(PLATFORM, counts.new)
        return counts

    def _history_of(self, channel: str, since: str) -> Callable[[str], Awaitable[Page]]:
        """Reads one page of a DM channel's messages after `since`, from a cursor."""
        return lambda cursor: self.platform.history_page(channel, oldest=since, cursor=cursor, limit=PAGE_SIZE)

    def _replies_of(self, channel: str, thread: str, since: str) -> Callable[[str], Awaitable[Page]]:
        """Reads one page of a staff thread's replies after `since`, from a cursor."""
        return lambda cursor: self.platform.replies_page(channel, thread, oldest=since, cursor=cursor, limit=PAGE_SIZE)

    async def _bot_user_id(self) -> str | None:
        """The bot's own user id, so its posts are skipped as a live event's are (they also carry bot_id)."""
        try:
            return await self.platform.bot_user_id()
        except PlatformError:
            return None

    async def _dm_channels(self) -> list[str]:
        channels: list[str] = []
        async for page in self._pages(lambda cursor: self.platform.dm_channels_page(cursor=cursor, limit=PAGE_SIZE)):
            channels += [channel["id"] for channel in page if channel.get("id")]
        return channels

    async def _read_place(self, channel: str, channel_type: str, since: str, bot_user_id: str | None,
                          counts: CatchUpCounts, read_page: Callable[[str], Awaitable[Page]]) -> None:
        """Every message of one DM or thread after `since` (a ts), handed over oldest first."""
        messages: list[dict[str, Any]] = []
        try:
            async for page in self._pages(read_page):
                messages += page
        except PlatformError as error:
            log.warning("catch-up could not read %s: %s", channel, error)
            counts.failed_places += 1
            return  # the next catch-up tries again; the other places are read meanwhile
        counts.places += 1
        for message in sorted(messages, key=lambda found: _ts_key(found.get("ts", ""))):
            if _ts_key(message.get("ts", "")) <= _ts_key(since):
                continue  # a thread's parent: conversations.replies lists it whatever `oldest` says
            counts.read += 1
            # The same translation as a live event: a history message lacks only its channel.
            event = {**message, "channel": channel, "channel_type": channel_type}
            inbound = self.listeners.message_inbound({}, event, bot_user_id)
            if inbound is None:
                continue
            receipt = await self.concierge.receive(await with_files(self.listeners.platform.files, inbound))
            if receipt.status != "duplicate":
                counts.new += 1

    async def _pages(self, read_page: Callable[[str], Awaitable[Page]]) -> AsyncIterator[list[dict[str, Any]]]:
        """The pages of a cursor-paginated call, each call paced; a 429 waits its Retry-After and tries again."""
        cursor = ""
        while True:
            for waits in range(MAX_RATE_LIMITED_WAITS + 1):
                await self.limiter.acquire()
                try:
                    items, cursor = await read_page(cursor)
                    break
                except RateLimited as error:
                    if waits == MAX_RATE_LIMITED_WAITS:
                        raise
                    log.info("catch-up rate limited by Slack: waiting %g s", error.retry_after)
                    await self.sleep(error.retry_after)
            yield items
            if not cursor:
                return


def _ts_key(ts: str) -> tuple[int, int]:
    """A Slack ts as a sortable pair (seconds, microseconds): ts strings do not sort as floats do."""
    seconds, _, micros = str(ts).partition(".")
    try:
        return int(seconds or 0), int((micros or "0").ljust(6, "0")[:6])
    except ValueError:
        return 0, 0
