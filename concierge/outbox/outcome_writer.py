"""Outcomes committed while the next sends go out: a pipeline, with a bound on what it holds.

Recording each outcome before the next send made the dispatcher wait for the database once per
message. Under load the database is busy with inbound messages, so that wait, not the CPU, set
the relay rate. Here the dispatcher goes on sending while outcomes are written:

- After a slow send (a network call: longer than `SLOW_SEND_S`), its outcome is written at once,
  or as soon as the write in flight is done. The write is queued before the send's caller can
  react to the delivery, so an inbound message answering it finds it recorded.
- After a fast send, outcomes are gathered and written together, up to `limit` at a time: one
  unit of work and one statement for several sends, instead of one each.
- One write is in flight at a time; outcomes that arrive meanwhile go with the next one.
- When the dispatcher has nothing more to send at once, `flush` starts the write of what waits
  without waiting for it: the next messages handed over go out while it commits, not behind it.

Several sends may be under way at once (`room` counts each from the moment it lets it go until its
outcome is `add`ed). At most `limit` sent messages are ever uncommitted, those being sent
included. A crash leaves at most that many, each marked `maybe_sent` at the restart (SQLite) or
when its lease runs out (PostgreSQL), and the platform is asked (`find_sent`) before it goes
again: nothing is doubled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from concierge.outbox.outcome import Outcome

# Sent messages whose outcome may be uncommitted at any moment, those being sent included. After a
# crash each is looked for on the platform before it goes again (a history read: Tier 3 on Slack).
MAX_UNRECORDED = 8
# A send that took longer than this went over a network: its outcome is written at once.
SLOW_SEND_S = 0.002


class OutcomeWriter:
    """Writes outcomes through `write` (which queues a transaction and returns its future), one write in
    flight at a time; `room` holds the next send back while `limit` outcomes are uncommitted."""

    def __init__(self, write: Callable[[list[Outcome]], asyncio.Future[Any]], limit: int = MAX_UNRECORDED) -> None:
        if limit < 1:
            raise ValueError("the limit of uncommitted outcomes is at least one")
        self._write = write
        self.limit = limit
        self._pending: list[Outcome] = []
        self._writing: asyncio.Future[Any] | None = None
        self._writing_count = 0
        self._sending = 0  # sends `room` let go whose outcome is not added yet
        self._flush_wanted = False  # write what waits as soon as the write in flight is done
        self._failure: BaseException | None = None  # a write that failed, for the next caller to raise
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def uncommitted(self) -> int:
        """Sends under way, and outcomes known and not yet committed (waiting, or in the write in flight)."""
        return self._sending + len(self._pending) + self._writing_count

    async def room(self) -> None:
        """Return once one more send keeps the uncommitted outcomes within the limit, and count that send
        as under way until its outcome is `add`ed (or it is `abandon`ed). Raises a failed write, once."""
        while True:
            self._raise_failure()
            if self.uncommitted < self.limit:
                self._sending += 1
                return
            self.flush()  # what waits can only leave by being written
            await self._changed()

    def add(self, outcome: Outcome, send_s: float) -> None:
        """The outcome of a send `room` let go, known now, after `send_s` seconds: after a slow send it is
        written at once (or right after the write in flight); after a fast one it waits for company."""
        self._sending -= 1
        if not outcome.recorded:
            self._pending.append(outcome)
            if send_s >= SLOW_SEND_S:
                self.flush()
        self._notify()

    def abandon(self) -> None:
        """A send `room` let go was cut short (cancelled): its outcome will never be added."""
        self._sending -= 1
        self._notify()

    def flush(self) -> None:
        """Write what waits now, or as soon as the write in flight is done; without waiting for either."""
        if not self._pending or self._failure is not None:
            return
        if self._writing is not None:
            self._flush_wanted = True
            return
        self._flush_wanted = False
        self._writing, self._writing_count = self._write(self._pending), len(self._pending)
        self._pending = []
        self._writing.add_done_callback(self._written)

    async def settle(self) -> list[Outcome]:
        """Wait for the write in flight; return the outcomes not given to any write (the caller writes them).
        Raises a failed write, once."""
        while self._writing is not None:
            await self._changed()
        self._raise_failure()
        return self.take_waiting()

    def take_waiting(self) -> list[Outcome]:
        """The outcomes not given to any write yet, for the caller to write (without waiting for the one in flight)."""
        pending, self._pending = self._pending, []
        self._flush_wanted = False
        return pending

    def _written(self, write: asyncio.Future[Any]) -> None:
        self._writing, self._writing_count = None, 0
        if write.cancelled():
            self._failure = asyncio.CancelledError("the outcomes' write was cancelled")
        elif write.exception() is not None:
            # A failed write fails the round; its items' leases run out and the platform is asked before
            # they go again.
            self._failure = write.exception()
        if self._flush_wanted:
            self.flush()
        self._notify()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def _changed(self) -> None:
        """Wait until a send ends or a write is done."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
