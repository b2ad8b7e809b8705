"""Per-platform send budgets: shared by every process on PostgreSQL, in-process on SQLite.

A platform's rate limit is per bot token, not per process: three processes each sending at the
configured rate would send at three times it. On PostgreSQL the budget therefore lives in one
row per platform (`sendbudget`), and each send reserves the next free slot with one atomic
statement (GCRA, the "generic cell rate algorithm"): `next_free` moves on by one interval per
send, never from further back than `burst` intervals ago, so an idle budget allows a burst of
`burst` sends and then one every `1/rate` seconds, whichever process asks. The sender sleeps
until its slot. Times are the database server's, so the processes' clocks need not agree.

SQLite deployments are one process: an in-process token bucket (aiolimiter) does the same.
"""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter
from sqlalchemy import text
from sqlmodel import Session

from concierge.database import Database
from concierge.outbox import SendLimiter

# One statement, atomic under the row lock: creates the platform's row the first time.
# `slot` is when this send may go: the earliest free one, at the earliest `burst` intervals back.
_RESERVE = text("""
    INSERT INTO sendbudget AS budget (platform, next_free)
    VALUES (:platform, clock_timestamp() - make_interval(secs => :window) + make_interval(secs => :interval))
    ON CONFLICT (platform) DO UPDATE
    SET next_free = greatest(budget.next_free, clock_timestamp() - make_interval(secs => :window))
                    + make_interval(secs => :interval)
    RETURNING extract(epoch FROM budget.next_free - make_interval(secs => :interval) - clock_timestamp())
""")


class SharedSendBudget:
    """A platform's send budget in PostgreSQL, shared by every process that sends through it."""

    def __init__(self, db: Database, platform: str, rate_per_s: float, burst: int) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("the rate must be positive and the burst at least 1")
        self.db = db
        self.platform = platform
        self.interval_s = 1.0 / rate_per_s
        self.window_s = (burst - 1) * self.interval_s  # how far back an idle budget's next slot may be

    def reserve_sync(self, session: Session) -> float:
        """Take the next free slot in the caller's transaction; seconds until it (<= 0: now)."""
        wait = session.execute(_RESERVE, {"platform": self.platform, "window": self.window_s,
                                          "interval": self.interval_s}).scalar_one()
        return float(wait)

    async def reserve(self) -> float:
        """Take the next free slot (committed at once); seconds until it."""
        return await self.db.run(self.reserve_sync)

    async def acquire(self) -> None:
        wait = await self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)


def in_process_limiter(rate_per_s: float, burst: int) -> AsyncLimiter:
    """At most `burst` sends at once, refilled at `rate_per_s`: a leaky bucket of that size."""
    return AsyncLimiter(max_rate=burst, time_period=burst / rate_per_s)


def send_limiter(db: Database, platform: str, rate_per_s: float, burst: int) -> SendLimiter:
    """The budget for sends through `platform`: shared through PostgreSQL, else in this process."""
    if db.engine.dialect.name == "postgresql":
        return SharedSendBudget(db, platform, rate_per_s, burst)
    return in_process_limiter(rate_per_s, burst)
