"""Fan-out benchmark: deliver digests under a platform's rate limit, plan a million subscriptions.

1. 20,000 digest deliveries through the outbox to a loopback fake platform (a separate process)
   that allows `--rate` requests per second and answers 429 beyond it.
2. Plan 1,000,000 due subscriptions on SQLite (the scheduler's tick: outbox items written,
   next due times moved), timed.
3. The same planning done the naive way, one apscheduler job per subscription, at 100,000,
   against ours at 100,000.
4. 6,000 deliveries sent by 3 bot processes on one PostgreSQL database sharing one send budget,
   to the same kind of fake (see `bench.fanout_processes`).
The last two lines are:
    fanout: rate_ratio=<achieved/limit> 429s=<count> duplicates=<count> plan_1m_s=<seconds> naive_ratio=<naive/ours>
    fanout: processes=3 rate_ratio=<achieved/limit> 429s=<count> duplicates=<count>
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bench.fanout_setup import NOW, grant_all, populate
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock
from concierge.database import Database, upgrade
from concierge.digests.planner import plan_all_due
from concierge.platform import Address, MessageRef, Outbound, PlatformDown, RateLimited
from concierge.settings import Settings

BATCH = 50000


class HttpPlatform:
    """The `Platform` port over HTTP to the fake server."""

    name = "bench"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session: aiohttp.ClientSession | None = None

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        async with self.session.post(f"{self.base_url}/send",
                                     json={"key": message.idempotency_key, "user": address.user}) as response:
            if response.status == 429:
                raise RateLimited(float(response.headers.get("Retry-After", "1")))
            if response.status != 200:
                raise PlatformDown(f"HTTP {response.status}")
            body = await response.json()
            return MessageRef(address, body["id"])

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        return await self.send(channel, message)

    async def open_dm(self, user: Address) -> Address:
        return Address(self.name, f"D{user.user}", user.user)

    async def edit(self, ref: MessageRef, message: Outbound) -> None:
        return None


async def deliver(count: int, rate: float, folder: Path) -> dict:
    server = subprocess.Popen([sys.executable, "-m", "bench.fake_platform_server", "--rate", str(rate)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        url = f"sqlite:///{folder / 'deliver.db'}"
        upgrade(url)
        db = Database.from_url(url)
        populate(db, count)
        grant_all(db, count)
        settings = Settings(_env_file=None, database_url=SecretStr(url), digest_rate_per_s=rate,
                            digest_burst=max(1, int(rate / 20)), digest_max_per_day=10)
        platform = HttpPlatform(f"http://127.0.0.1:{port}")
        runtime = build_runtime(settings, {"bench": platform}, db=db, clock=FrozenClock(NOW))
        import scheduling

        scheduler = scheduling.attach(runtime)
        await scheduler.tick()
        while await runtime.dispatcher.drain():
            pass
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/stats") as response:
                stats = await response.json()
        if platform.session is not None:
            await platform.session.close()
        runtime.close()
        return stats
    finally:
        server.terminate()
        server.wait()


def plan_ours(count: int, folder: Path, name: str) -> float:
    url = f"sqlite:///{folder / name}"
    upgrade(url)
    db = Database.from_url(url)
    populate(db, count)
    started = time.perf_counter()
    total = asyncio.run(plan_all_due(db.run, NOW, limit=BATCH, max_per_day=3))
    elapsed = time.perf_counter() - started
    db.close()
    assert total == count, (total, count)
    return elapsed


def plan_naive(count: int, folder: Path) -> float:
    """One apscheduler job per subscription (a CronTrigger in the member's zone), each job
    planning its own subscription in its own transaction when it fires."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from sqlalchemy import select
    from sqlmodel import Session

    from concierge.digests.cadence import next_due
    from concierge.digests.subscriptions import cadence_of
    from concierge.records import DigestEdition, OutboxItem, Subscription

    url = f"sqlite:///{folder / 'naive.db'}"
    upgrade(url)
    db = Database.from_url(url)
    populate(db, count)
    subscriptions = db.run_sync(lambda session: session.execute(
        select(Subscription.id, Subscription.hour, Subscription.time_zone)).all())

    def plan_one(subscription_id: int) -> None:
        # The job knows only its subscription: it reads it, queues what is unseen, moves it on,
        # and commits, alone.
        def work(session: Session) -> None:
            subscription = session.get(Subscription, subscription_id)
            unseen = session.scalars(select(DigestEdition.id).where(
                DigestEdition.digest_id == subscription.digest_id,
                DigestEdition.id > subscription.last_edition_id)).all()
            for edition in unseen:
                session.add(OutboxItem(
                    key=f"digest:{edition:010d}:{subscription.member_id:012d}", kind="digest",
                    platform=subscription.platform,
                    address={"platform": subscription.platform, "user": subscription.user_id}, payload={},
                    next_attempt_at=NOW, created_at=NOW, member_id=subscription.member_id,
                    digest_id=subscription.digest_id, edition_id=edition))
                subscription.last_edition_id = edition
            subscription.next_due_at = next_due(cadence_of(subscription), NOW)

        db.run_sync(work)

    started = time.perf_counter()
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)
    jobs = [scheduler.add_job(plan_one, CronTrigger(hour=hour, minute=0, timezone=zone), args=[subscription_id])
            for subscription_id, hour, zone in subscriptions]
    for job in jobs:  # firing them (time cannot be waited for here): each runs its own transaction
        job.func(*job.args)
    elapsed = time.perf_counter() - started
    scheduler.shutdown(wait=False)
    db.close()
    return elapsed


def measured(part: str, count: int, folder: Path) -> tuple[float, float]:
    """Run one planning part in a process of its own: (seconds, that process's peak memory in MB)."""
    result = subprocess.run([sys.executable, "-m", "bench.fanout", "--part", part, "--count", str(count),
                             "--folder", str(folder)], capture_output=True, text=True, check=True)
    seconds, peak = result.stdout.split()
    return float(seconds), float(peak)


def part(name: str, count: int, folder: Path) -> None:
    seconds = plan_ours(count, folder, f"{name}-{count}.db") if name == "ours" else plan_naive(count, folder)
    print(f"{seconds:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deliveries", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--plan", type=int, default=1_000_000)
    parser.add_argument("--compare", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=3, help="bot processes of the PostgreSQL run")
    parser.add_argument("--processes-deliveries", type=int, default=6000)
    args = parser.parse_args()
    if args.part:
        part(args.part, args.count, args.folder)
        return
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        started = time.perf_counter()
        stats = asyncio.run(deliver(args.deliveries, args.rate, folder))
        span = (stats["last"] - stats["first"]) if stats["accepted"] > 1 else 0.0
        achieved = (stats["accepted"] - 1) / span if span else 0.0
        print(f"deliver: sent={stats['accepted']} of {args.deliveries} in {span:.1f} s, "
              f"{achieved:.1f}/s at a limit of {args.rate:.0f}/s, 429s={stats['rejected_429']} "
              f"duplicates={stats['duplicates']} ({time.perf_counter() - started:.0f} s with set-up)", flush=True)
        plan_1m, peak_mb = measured("ours", args.plan, folder)
        print(f"plan: {args.plan} subscriptions in {plan_1m:.1f} s, peak memory {peak_mb:.0f} MB "
              "(set-up included)", flush=True)
        ours, _ = measured("ours", args.compare, folder)
        naive, naive_mb = measured("naive", args.compare, folder)
        print(f"compare at {args.compare}: ours {ours:.1f} s, one apscheduler job each {naive:.1f} s "
              f"(peak memory {naive_mb:.0f} MB)", flush=True)
    if stats["accepted"] != args.deliveries:
        print(f"warning: {args.deliveries - stats['accepted']} deliveries missing", flush=True)
    print(f"fanout: rate_ratio={achieved / args.rate:.3f} 429s={stats['rejected_429']} "
          f"duplicates={stats['duplicates']} plan_1m_s={plan_1m:.1f} "
          f"naive_ratio={naive / ours:.1f}", flush=True)
    # Several processes on one PostgreSQL database, under the one rate limit they share.
    from bench.fanout_processes import line

    print(line(args.processes, args.processes_deliveries, args.rate), flush=True)


if __name__ == "__main__":
    main()
