"""The fan-out's rate limit: a token bucket per platform (aiolimiter)."""

from __future__ import annotations

from aiolimiter import AsyncLimiter


def send_limiter(rate_per_s: float, burst: int) -> AsyncLimiter:
    """At most `burst` sends at once, refilled at `rate_per_s`: a leaky bucket of that size."""
    return AsyncLimiter(max_rate=burst, time_period=burst / rate_per_s)
