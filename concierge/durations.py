"""Numbers and durations people type, read one way everywhere: ASCII digits, within stated bounds.

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
        raise ValueError(f"{text!r} is out of range: from {_describe(shortest)} to {_describe(longest)}")
    return value


def _describe(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"
