"""Outcomes committed while the next sends go out: a pipeline, with a bound on what it holds.

Recording each outcome before the next send made the dispatcher wait for the database once per
message. Under load the database is busy with inbound messages, so that wait, not the CPU, set
the relay rate. Here the dispatcher goes on sending while outcomes are written:

- After a slow send (a network call: longer than `SLOW_SEND_S`), its outcome is written at once,
  and the write overlaps the next send. The write is queued before the send's caller can react
  to the delivery, so an inbound message answering it finds it recorded.
- After a fast send, outcomes are gathered and written together, up to `limit` at a time: one
  unit of work and one statement for several sends, instead of one each.
- Outcomes that arrive while a write is in flight wait for the next write, which takes them all.

At most `limit` sent messages are ever uncommitted. A crash leaves at most that many, each marked
`maybe_sent` at the restart (SQLite) or when its lease runs out (PostgreSQL), and the platform is
asked (`find_sent`) before it goes again: nothing is doubled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from concierge.outbox.outcome import Outcome

# Sent messages whose outcome may be uncommitted at any moment, the one being sent included.
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
        self._in_flight: asyncio.Future[Any] | None = None
        self._in_flight_count = 0

    @property
    def uncommitted(self) -> int:
        """Outcomes known and not yet committed (waiting, or in the write in flight)."""
        return len(self._pending) + self._in_flight_count

    def add(self, outcome: Outcome, send_s: float) -> None:
        """An outcome known now, from a send that took `send_s` seconds: after a slow send it is written
        at once (unless a write is in flight: then with the next one); after a fast one it waits for company."""
        if outcome.recorded:
            return
        self._pending.append(outcome)
        if send_s >= SLOW_SEND_S and (self._in_flight is None or self._in_flight.done()):
            self._start()

    async def room(self) -> None:
        """Return once one more send keeps the uncommitted outcomes under the limit."""
        while self.uncommitted >= self.limit:
            await self._finish_in_flight()
            if self._pending:
                self._start()

    async def settle(self) -> list[Outcome]:
        """Wait for the write in flight; return the outcomes not given to any write (the caller writes them)."""
        await self._finish_in_flight()
        pending, self._pending = self._pending, []
        return pending

    def _start(self) -> None:
        if self._in_flight is not None:
            self._in_flight.result()  # done: a failed write fails the round (its items' leases then run out)
        self._in_flight, self._in_flight_count = self._write(self._pending), len(self._pending)
        self._pending = []

    async def _finish_in_flight(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            self._in_flight_count = 0
            await in_flight
