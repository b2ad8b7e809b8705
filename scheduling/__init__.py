"""Digest scheduling: the periodic tick (apscheduler), leader election, the fan-out rate limiter."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the package imports apscheduler when attached
    from concierge.bootstrap import Runtime
    from scheduling.ticker import DigestScheduler


def attach(runtime: Runtime) -> DigestScheduler:
    """Give a runtime its digest scheduler and per-platform send limiters (one budget per platform for all
    processes on PostgreSQL, see `concierge.send_budget`); returns the scheduler."""
    from concierge.send_budget import send_limiter
    from scheduling.ticker import DigestScheduler

    settings = runtime.concierge.settings
    for name in runtime.dispatcher.platforms:
        runtime.dispatcher.limiters[name] = send_limiter(
            runtime.db, name, settings.digest_rate_per_s, settings.digest_burst)  # shared on PostgreSQL
    return DigestScheduler(runtime.db, runtime.dispatcher, settings, runtime.concierge.clock)
