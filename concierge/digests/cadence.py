"""When a subscription is next due: the member's local hour, in their zone, across DST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, rrule

from concierge.durations import whole_number

CADENCES = ("daily", "weekly", "monthly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CadenceError(ValueError):
    """A cadence, day, hour, zone or quiet-hours value that does not make sense."""


@dataclass(frozen=True)
class Cadence:
    """How often and when, in local time, a member wants a digest."""

    every: str = "weekly"  # daily | weekly | monthly
    weekday: int = 0  # weekly: 0 = Monday
    day_of_month: int = 1  # monthly: 1..28 (every month has them)
    hour: int = 9
    time_zone: str = "UTC"
    quiet_start: int | None = None
    quiet_end: int | None = None

    def __post_init__(self) -> None:
        if self.every not in CADENCES:
            raise CadenceError(f"cadence must be one of {', '.join(CADENCES)}")
        if not 0 <= self.weekday <= 6:
            raise CadenceError("the day of the week must be mon..sun")
        if not 1 <= self.day_of_month <= 28:
            raise CadenceError("the day of the month must be 1..28")
        if not 0 <= self.hour <= 23:
            raise CadenceError("the hour must be 0..23")
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise CadenceError("quiet hours need a start and an end, e.g. 22-7")
        for bound in (self.quiet_start, self.quiet_end):
            if bound is not None and not 0 <= bound <= 23:
                raise CadenceError("quiet hours must be 0..23")
        zone(self.time_zone)

    def describe(self) -> str:
        when = {"daily": "every day", "weekly": f"every {WEEKDAYS[self.weekday]}",
                "monthly": f"on day {self.day_of_month} of each month"}[self.every]
        quiet = f", quiet {self.quiet_start}-{self.quiet_end}" if self.quiet_start is not None else ""
        return f"{when} at {self.hour:02d}:00 {self.time_zone}{quiet}"


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CadenceError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None


def _in_quiet_hours(hour: int, cadence: Cadence) -> bool:
    start, end = cadence.quiet_start, cadence.quiet_end
    if start is None or end is None or start == end:
        return False
    return start <= hour < end if start < end else hour >= start or hour < end


def hold_back(moment: datetime, cadence: Cadence) -> datetime:
    """`moment`, or the end of the member's quiet hours if it falls inside them (never dropped)."""
    if cadence.quiet_start is None or cadence.quiet_end is None:
        return moment
    local = moment.astimezone(zone(cadence.time_zone))
    if not _in_quiet_hours(local.hour, cadence):
        return moment
    end = local.replace(hour=cadence.quiet_end, minute=0, second=0, microsecond=0)
    if end <= local:
        end = (local + timedelta(days=1)).replace(hour=cadence.quiet_end, minute=0, second=0, microsecond=0)
    # Re-attach the zone to the wall-clock time: the offset may differ across a DST change.
    end = end.replace(tzinfo=None).replace(tzinfo=zone(cadence.time_zone))
    return end.astimezone(timezone.utc)


def next_due(cadence: Cadence, after: datetime) -> datetime:
    """The first delivery time strictly after `after` (UTC in, UTC out), quiet hours respected."""
    return _next_due_cached(cadence, after.astimezone(timezone.utc))


@lru_cache(maxsize=65536)
def _next_due_cached(cadence: Cadence, after: datetime) -> datetime:
    # Many subscriptions share a cadence and are planned at the same moment: the cache makes
    # planning a million of them cost a few hundred rule evaluations.
    tz = zone(cadence.time_zone)
    local_after = after.astimezone(tz)
    start = local_after.replace(hour=cadence.hour, minute=0, second=0, microsecond=0, tzinfo=None)
    start -= timedelta(days=1)
    if cadence.every == "daily":
        rule = rrule(DAILY, dtstart=start, byhour=cadence.hour)
    elif cadence.every == "weekly":
        rule = rrule(WEEKLY, dtstart=start, byweekday=cadence.weekday, byhour=cadence.hour)
    else:
        rule = rrule(MONTHLY, dtstart=start, bymonthday=cadence.day_of_month, byhour=cadence.hour)
    # The rule runs on wall-clock times; each is then placed in the zone, so 08:00 stays 08:00
    # local on both sides of a DST change (a time inside a spring-forward gap lands just after it).
    for wall in rule:
        moment = wall.replace(tzinfo=tz).astimezone(timezone.utc)
        if moment > after:
            return hold_back(moment, cadence)
    raise AssertionError("an infinite rule ended")


def parse_quiet(text: str) -> tuple[int, int]:
    """`22-7` -> (22, 7)."""
    start_text, sep, end_text = text.partition("-")
    start, end = whole_number(start_text, 0, 23), whole_number(end_text, 0, 23)
    if not sep or start is None or end is None:
        raise CadenceError("quiet hours look like 22-7 (from 22:00 to 07:00)")
    return start, end


def parse_weekday(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in WEEKDAYS:
        raise CadenceError("the day of the week must be mon..sun")
    return WEEKDAYS.index(key)
