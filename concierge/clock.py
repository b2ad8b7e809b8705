"""The time source of the core, replaceable in tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def utc_now() -> datetime:
    """Now, timezone-aware, in UTC (the form the records store)."""
    return datetime.now(timezone.utc)


class Clock:
    """Real time."""

    def now(self) -> datetime:
        return utc_now()


class FrozenClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utc_now()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
