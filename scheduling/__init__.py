"""Digest scheduling: the periodic tick (apscheduler), leader election, the fan-out rate limiter."""

from __future__ import annotations


def attach(runtime):  # noqa: ANN001, ANN201
    """Give a runtime its digest scheduler and per-platform send limiters; returns the scheduler."""
    from scheduling.rate_limit import send_limiter
    from scheduling.ticker import DigestScheduler

    settings = runtime.concierge.settings
    for name in runtime.dispatcher.platforms:
        runtime.dispatcher.limiters[name] = send_limiter(settings.digest_rate_per_s, settings.digest_burst)
    return DigestScheduler(runtime.db, runtime.dispatcher, settings, runtime.concierge.clock)
