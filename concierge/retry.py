"""The one backoff rule of the outbox and the inbox: exponential, capped, with equal jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(attempts: int, base_s: float, cap_s: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds before try `attempts + 1`: base, doubling each try, at most `cap_s`; half of it jittered."""
    ceiling = min(cap_s, base_s * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + ceiling / 2 * jitter()
