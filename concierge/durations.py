"""Numbers and durations: read one way everywhere (ASCII digits, within stated bounds), written one way.

`str.isdigit()` accepts "²" and "٣", which `int()` then refuses; a number past a database integer,
a date or a timedelta breaks later, where it is used. Every command argument that is a number or
a duration is read here, and anything out of bounds is refused before anything is stored.
"""

from __future__ import annotations

import re
from datetime import timedelta

MAX_ID = 2_147_483_647  # the largest number an integer column holds (PostgreSQL `integer`)
LONGEST = timedelta(days=3650)  # no duration a person types means more than ten years

_DURATION = re.compile(r"^\s*([0-9]{1,9})\s*([mhdw])\s*$", re.IGNORECASE)
_SHAPE = re.compile(r"^\s*[0-9]+\s*[mhdw]\s*$", re.IGNORECASE)  # any length: range is checked on parsing
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def whole_number(text: str, low: int, high: int) -> int | None:
    """`text` as a whole number from `low` to `high` (ASCII digits, an optional leading `#`); None otherwise."""
    text = (text or "").strip().removeprefix("#")
    if not text or len(text) > 10 or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_duration(text: str, *, shortest: timedelta = timedelta(minutes=1), longest: timedelta = LONGEST) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` -> a timedelta within [shortest, longest]; ValueError otherwise."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    value = timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))}) if int(match.group(1)) < 10**7 \
        else longest + timedelta(days=1)
    if not shortest <= value <= longest:
        raise ValueError(f"{text!r} is out of range: from {describe(shortest)} to {describe(longest)}")
    return value


def looks_like_duration(text: str) -> bool:
    """Whether `text` is shaped like a duration (`7d`, `12h`), in or out of range: as opposed to a date."""
    return _SHAPE.match(text or "") is not None


def describe(value: timedelta) -> str:
    """`4h`, `2d`, `30m`: a duration as a person types it (the largest whole unit)."""
    return describe_minutes(int(value.total_seconds() // 60))


def describe_minutes(minutes: int) -> str:
    """`240` -> `4h`, `2880` -> `2d`, `90` -> `90m` (a response target, a bound)."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def at_a_glance(delta: timedelta) -> str:
    """`1h05m`, `12m`, `2d03h`: how long someone has waited, in a queue line."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def hours_and_minutes(delta: timedelta) -> str:
    """`26h05m`: a wait in hours and minutes, however long (an escalation page)."""
    return f"{int(delta.total_seconds() // 3600)}h{int(delta.total_seconds() % 3600 // 60):02d}m"


def minutes_or_hours(minutes: float) -> str:
    """`45m` under two hours, else `2.5h` (a statistic)."""
    return f"{minutes:.0f}m" if minutes < 120 else f"{minutes / 60:.1f}h"
