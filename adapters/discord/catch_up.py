"""Catch-up: what members and staff wrote while the bot was away, read back from Discord's history.

The gateway replays missed events only within a short RESUME window, and an event the core could
not record (`NotRecorded`: the database was down) cannot be asked for again. So:

- When the gateway (re)identifies (`on_connect`, at READY) the core's `CatchUpPlan` is taken at
  once, before any message of the new session is recorded (live messages wait for it, briefly),
  so it still reaches back to before the downtime. Once `on_ready` fires, every known member DM
  channel and every open staff thread is read from `plan.since(place)` on
  (`GET /channels/{id}/messages?after=`, oldest first), in the background, one place after the
  other (discord.py paces the calls by Discord's rate-limit headers).
- A place whose message could not be recorded is read back the same way from that message on,
  `DISCORD_CATCH_UP_RETRY_S` later, then with doubling pauses while the database stays down.

Each message read back goes through the relay's own translation (`RelayCog.inbound_of`, and
`edit_of` for an edit of a DM already recorded) and `Concierge.receive`: one already recorded is
known by its message id and has no second effect.

Bots cannot list their DM channels: a DM channel no conversation names yet (a member's very first
DM, written while the bot was away) is read back only once that member writes again (Discord
then shows us the channel: `first_seen`). At most `CONCIERGE_CATCH_UP_HOURS` are read back (0
turns the catch-up off). An edit made while away is relayed when the edited message is read back
(written at or after the place's last recorded message); an edit of an older one is not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import discord

from adapters.discord.errors import neutral_errors
from concierge.app import NotRecorded
from concierge.inbound import Inbound
from concierge.platform import PlatformDown, PlatformError, RateLimited

if TYPE_CHECKING:  # pragma: no cover
    from adapters.discord.relay import RelayCog
    from concierge.catch_up import CatchUpPlan

log = logging.getLogger(__name__)

PLATFORM = "discord"
PLAN_WAIT_S = 10.0  # longest a live message waits for the plan of a new gateway session
RETRY_CAP_S = 300.0
ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Place:
    """A DM channel, or a staff thread inside its parent channel."""

    channel: str
    thread: str = ""

    @property
    def key(self) -> str:
        """The core's name for it (`CatchUpPlan.since`, `concierge.inbox.place_of`)."""
        return f"{self.channel}/{self.thread}" if self.thread else self.channel


@dataclass
class CatchUpCounts:
    """What one round did: places read, messages read, messages new to the core, places that failed.

    `again` holds the places to read again (and from when): the database could not record, or
    Discord failed for a while.
    """

    places: int = 0
    read: int = 0
    new: int = 0
    failed_places: int = 0
    again: dict[str, tuple[Place, datetime]] = field(default_factory=dict)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class DiscordCatchUp:
    """Reads back DMs and open staff threads after (re)connecting, and places whose message was not recorded."""

    def __init__(self, relay: RelayCog) -> None:
        self.relay = relay
        self.bot = relay.bot
        self._plan: asyncio.Task[CatchUpPlan | None] | None = None  # taken at the last (re)connect
        self._plan_used: asyncio.Task[CatchUpPlan | None] | None = None
        self._full_wanted = False
        self._missed: dict[str, tuple[Place, datetime, int]] = {}  # key -> place, read from, generation
        self._generation = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._dms_seen: set[str] = set()  # DM channels not in this session's plan, read back already

    @property
    def enabled(self) -> bool:
        return self.bot.settings.catch_up_hours > 0

    # What the relay tells it.

    def connected(self) -> None:
        """The gateway (re)identified: take the plan now, before anything of this session is recorded."""
        if self.enabled:
            self._plan = asyncio.create_task(self._read_plan(), name="concierge-catch-up-plan")
            self._dms_seen = set()

    async def plan_taken(self) -> None:
        """Wait (at most `PLAN_WAIT_S`) until the plan of this gateway session is read."""
        pending = self._plan
        if pending is not None and not pending.done():
            await asyncio.wait({pending}, timeout=PLAN_WAIT_S)

    def ready(self) -> asyncio.Task[None] | None:
        """Catch up in the background (the bot's `catch_up_task`); None when the catch-up is off."""
        if not self.enabled:
            log.info("catch-up is off (CONCIERGE_CATCH_UP_HOURS=0)")
            return None
        self._full_wanted = True
        return self._ensure_running(soon=False)

    def first_seen(self, event: Inbound) -> None:
        """A member wrote from a DM channel the plan did not know: read it back too, once this session.

        Bots cannot list their DM channels, so what a new member wrote there while the bot was
        away is only found now that Discord showed us the channel.
        """
        taken = self._plan
        plan = taken.result() if taken is not None and taken.done() and not taken.cancelled() else None
        channel = event.address.channel
        if plan is None or event.address.thread or channel in plan.dm_channels or channel in self._dms_seen:
            return
        self._dms_seen.add(channel)
        place = Place(channel)
        known = self._missed.get(place.key)
        since = min(_utc(plan.oldest), known[1]) if known else _utc(plan.oldest)
        self._missed[place.key] = (place, since, next(self._generation))
        self._ensure_running(soon=False)

    def missed(self, event: Inbound) -> None:
        """A message could not be recorded: read its place back from it on, soon."""
        written = getattr(event, "written_at", None)
        if not self.enabled or written is None:
            log.error("Discord message %s is lost: the catch-up is off", event.event_id)
            return
        address = event.address
        place = Place(address.channel, address.thread)
        since = _utc(written) - ONE_MS
        known = self._missed.get(place.key)
        if known is not None:
            since = min(since, known[1])
        self._missed[place.key] = (place, since, next(self._generation))
        self._ensure_running(soon=True)

    async def stop(self) -> None:
        for task in (self._task, self._plan):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # The background work.

    def _ensure_running(self, *, soon: bool) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(soon), name="concierge-catch-up")
            self.bot.catch_up_task = self._task
        elif not soon:
            self._wake.set()  # a reconnect: no need to wait out a pause
        return self._task

    async def _loop(self, soon: bool) -> None:
        first = self.bot.discord_settings.catch_up_retry_s
        delay = first
        if soon:
            await self._pause(delay)
        while self._full_wanted or self._missed:
            self._wake.clear()
            full, self._full_wanted = self._full_wanted, False
            plan = await self._plan_for_round() if full else None
            snapshot = {key: value for key, value in self._missed.items()}
            counts = await self.run(plan, {key: (place, since) for key, (place, since, _) in snapshot.items()})
            plan_failed = full and plan is None
            if plan_failed:
                self._full_wanted = True
            for key, (_, _, generation) in snapshot.items():
                current = self._missed.get(key)
                if current is not None and current[2] == generation:
                    del self._missed[key]
            for key, (place, since) in counts.again.items():
                known = self._missed.get(key)
                self._missed[key] = (place, min(since, known[1]) if known else since, next(self._generation))
            log.info("catch-up: read %d messages in %d places, %d new; %d places failed, %d to read again",
                     counts.read, counts.places, counts.new, counts.failed_places, len(counts.again))
            self.bot.concierge.metrics.count_caught_up("discord", counts.new)
            if not (self._full_wanted or self._missed):
                return
            delay = first if not (plan_failed or counts.again) else min(delay * 2, RETRY_CAP_S)
            await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _plan_for_round(self) -> CatchUpPlan | None:
        """The plan taken at the last (re)connect, or a fresh one when that was used already."""
        taken = self._plan
        if taken is not None and taken is not self._plan_used:
            self._plan_used = taken
            return await taken
        return await self._read_plan()

    async def _read_plan(self) -> CatchUpPlan | None:
        try:
            return await self.bot.concierge.catch_up_plan(PLATFORM)
        except Exception as error:
            log.error("catch-up: could not read the plan from the database (%s); trying again later", error)
            return None

    # One round.

    async def run(self, plan: CatchUpPlan | None, extra: dict[str, tuple[Place, datetime]] | None = None
                  ) -> CatchUpCounts:
        """Read back the plan's places (DMs first, then threads) and `extra` ones from the given times.

        Stops at the first message the core cannot record (the rest is to be read again).
        """
        counts = CatchUpCounts()
        oldest = self.bot.concierge.clock.now() - timedelta(hours=self.bot.settings.catch_up_hours)
        places: dict[str, tuple[Place, datetime]] = {}
        if plan is not None:
            for channel in plan.dm_channels:
                places[channel] = (Place(channel), _utc(plan.since(channel)))
            for thread in plan.threads:
                places[thread.place] = (Place(thread.channel, thread.thread), _utc(plan.since(thread.place)))
        for key, (place, since) in (extra or {}).items():
            since = max(_utc(since), oldest)
            if key in places:
                since = min(since, places[key][1])
            places[key] = (place, since)
        todo = list(places.items())
        for index, (key, (place, since)) in enumerate(todo):
            try:
                read, new = await self._read_place(place, since)
            except NotRecorded as error:
                log.error("catch-up: the database cannot record what it reads (%s); trying again later", error)
                counts.again.update(dict(todo[index:]))
                break
            except (PlatformDown, RateLimited) as error:
                log.warning("catch-up: could not read %s now (%s); trying again later", key, error)
                counts.failed_places += 1
                counts.again[key] = (place, since)
                continue
            except PlatformError as error:
                log.warning("catch-up: cannot read %s (%s)", key, error)
                counts.failed_places += 1
                continue
            except Exception:
                log.exception("catch-up: reading %s failed; trying again later", key)
                counts.failed_places += 1
                counts.again[key] = (place, since)
                continue
            counts.places += 1
            counts.read += read
            counts.new += new
        return counts

    async def _read_place(self, place: Place, since: datetime) -> tuple[int, int]:
        """Hand every message of `place` written after `since` to the core, oldest first; (read, new)."""
        channel = self._channel(place)
        if channel is None:
            return 0, 0
        # The snowflake of `since` less one: a message in that very millisecond is read again
        # (and recognised) rather than missed.
        after = discord.Object(id=max(discord.utils.time_snowflake(since) - 1, 0))
        history = channel.history(limit=None, after=after, oldest_first=True)
        read = new = 0
        while True:
            async with neutral_errors():
                message = await anext(history, None)
            if message is None:
                return read, new
            read += 1
            new += await self._receive(message, dm=not place.thread)

    def _channel(self, place: Place) -> discord.DMChannel | discord.Thread | discord.PartialMessageable | None:
        if not place.channel.isdigit() or (place.thread and not place.thread.isdigit()):
            log.warning("catch-up: %s is not a Discord channel", place.key)
            return None
        if not place.thread:
            cached = self.bot.get_channel(int(place.channel))
            if isinstance(cached, discord.DMChannel):
                return cached
            return self.bot.get_partial_messageable(int(place.channel), type=discord.ChannelType.private)
        thread_id = int(place.thread)
        cached = self.bot.get_channel(thread_id)
        if isinstance(cached, discord.Thread):
            return cached
        self.relay.remember_parent(thread_id, int(place.channel))  # from the records: no lookup
        return self.bot.get_partial_messageable(thread_id, guild_id=self.bot.discord_settings.guild_id or None,
                                                type=discord.ChannelType.public_thread)

    async def _receive(self, message: discord.Message, *, dm: bool) -> int:
        """The message to the core as a live one would go; 1 when it was new to the core (NotRecorded raises)."""
        event = await self.relay.inbound_of(message)
        if event is None:
            return 0
        receipt = await self.bot.concierge.receive(event)
        if receipt.status != "duplicate":
            return 1
        edit = self.relay.edit_of(message) if dm and message.edited_at is not None else None
        if edit is None:
            return 0
        # Known already: an edit made while we were away is relayed as a live edit would be.
        return int((await self.bot.concierge.receive(edit)).status != "duplicate")
