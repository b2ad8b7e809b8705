"""DM channels with members: remembered once known, new ones opened at a steady pace."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from concierge.platform import RateLimited


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
        # Several processes on one PostgreSQL: the pace is theirs together (see `DiscordPlatform.share_budgets`).
        # Reserves the next slot of the shared pace and says in how many seconds it comes.
        self.reserve: Callable[[], Awaitable[float]] | None = None
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
            wait = self._next_slot - self.clock() if self.reserve is None else await self.reserve()
            if wait > self.max_wait_s:
                raise RateLimited(wait, "opening DMs is throttled")
            if wait > 0:
                await self.sleep(wait)
            self._next_slot = self.clock() + self.interval_s
            channel = await open_channel(user)
            self.opened += 1
            self.remember(user, channel)
            return channel
