"""One send budget per platform for every process on PostgreSQL; the in-process bucket on SQLite."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiolimiter import AsyncLimiter
from sqlalchemy import text

import scheduling
from adapters.local.platform import LocalPlatform
from bench.fanout_setup import NOW, grant_all, populate
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock
from concierge.send_budget import SharedSendBudget
from tests.conftest import make_settings

RATE = 40.0  # sends per second, per platform, for all processes together
BURST = 2


class TimedPlatform(LocalPlatform):
    """Stands for the chat platform all processes send through: when each message arrived, and from whom."""

    def __init__(self, process: int, log: list[tuple[float, int, str]]) -> None:
        super().__init__()
        self.process = process
        self.log = log

    async def send(self, address, message):
        self.log.append((time.monotonic(), self.process, message.idempotency_key or ""))
        return await super().send(address, message)


def most_in_a_window(times: list[float], window_s: float) -> int:
    """The most sends that fall in any window of `window_s` seconds (each starting at a send)."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


async def deliver_with(url: str, processes: int, deliveries: int) -> list[tuple[float, int, str]]:
    """`processes` runtimes (each its own pool and dispatcher) on one database deliver a fan-out."""
    log: list[tuple[float, int, str]] = []
    settings = make_settings(url, digest_rate_per_s=RATE, digest_burst=BURST, digest_max_per_day=10)
    runtimes = [build_runtime(settings, {"local": TimedPlatform(number, log)}, clock=FrozenClock(NOW))
                for number in range(processes)]
    try:
        populate(runtimes[0].db, deliveries, platform="local")
        grant_all(runtimes[0].db, deliveries)
        schedulers = [scheduling.attach(runtime) for runtime in runtimes]
        for runtime in runtimes:
            runtime.dispatcher.batch_size = 4  # small claims: every process gets a share of the work
        assert await schedulers[0].tick() == deliveries

        async def drain(runtime) -> None:
            while await runtime.dispatcher.drain():
                pass

        await asyncio.wait_for(asyncio.gather(*(drain(runtime) for runtime in runtimes)), 60)
        return log
    finally:
        for scheduler in schedulers:
            scheduler.leadership.release()
        for runtime in runtimes:
            runtime.close()


@pytest.mark.parametrize("processes", [2, 3])
async def test_dispatchers_on_one_postgresql_database_share_one_rate_limit(postgres, processes):
    url = postgres.create_database(f"budget_{processes}", template="concierge_template")
    deliveries = 30 * processes
    log = await deliver_with(url, processes, deliveries)

    keys = Counter(key for _, _, key in log)
    assert len(keys) == deliveries and max(keys.values()) == 1, "each delivery sent once"
    senders = Counter(process for _, process, _ in log)
    assert set(senders) == set(range(processes)), f"every process sent a share: {senders}"
    times = [moment for moment, _, _ in log]
    # Within the budget in any window: one second's rate plus the burst (one send of slack for
    # the time between reserving a slot and the send reaching the platform).
    assert most_in_a_window(times, 1.0) <= RATE + BURST + 1
    assert most_in_a_window(times, 0.25) <= RATE * 0.25 + BURST + 1
    span = max(times) - min(times)
    assert (deliveries - BURST) / span <= RATE * 1.05, "together, the processes keep to the configured rate"


async def test_an_idle_budget_allows_its_burst_then_spaces_sends_by_the_interval(postgres):
    url = postgres.create_database("budget_gcra", template="concierge_template")
    runtime = build_runtime(make_settings(url), {"local": LocalPlatform()})
    try:
        budget = SharedSendBudget(runtime.db, "local", rate_per_s=10.0, burst=3)
        waits = [await budget.reserve() for _ in range(5)]
        assert all(wait <= 0 for wait in waits[:3]), waits  # the burst goes at once
        assert 0.05 < waits[3] < 0.15 and 0.15 < waits[4] < 0.25, waits  # then one every 0.1 s
        await asyncio.sleep(1.0)  # idle for longer than the burst takes to build up again: no more than it
        waits = [await budget.reserve() for _ in range(4)]
        assert all(wait <= 0 for wait in waits[:3]) and waits[3] > 0.05, waits
        other = SharedSendBudget(runtime.db, "slack", rate_per_s=10.0, burst=1)
        assert await other.reserve() <= 0, "each platform has its own budget"
        rows = await runtime.db.run(lambda session: session.execute(
            text("SELECT platform FROM sendbudget ORDER BY platform")).scalars().all())
        assert rows == ["local", "slack"]
    finally:
        runtime.close()


async def test_sqlite_keeps_the_in_process_bucket_and_postgresql_shares_one(database_url):
    runtime = build_runtime(make_settings(database_url, digest_rate_per_s=5.0, digest_burst=2),
                            {"local": LocalPlatform()})
    try:
        scheduling.attach(runtime)
        limiter = runtime.dispatcher.limiters["local"]
        if runtime.db.is_sqlite:
            assert isinstance(limiter, AsyncLimiter)
            started = time.monotonic()
            for _ in range(4):  # a burst of 2, then 5 a second
                await limiter.acquire()
            assert 0.3 < time.monotonic() - started < 1.0
        else:
            assert isinstance(limiter, SharedSendBudget)
            assert (limiter.platform, limiter.interval_s) == ("local", 0.2)
    finally:
        runtime.close()
