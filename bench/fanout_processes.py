"""The digest fan-out from several bot processes on one PostgreSQL database, under one rate limit.

The fan-out is planned once (the scheduler's tick), then `processes` real processes each run a
runtime with its dispatcher and the digest send limiter the scheduler gives it (on PostgreSQL
one budget per platform, shared: see `concierge.send_budget`), all sending to one loopback fake
platform that answers 429 above the configured rate. Prints:
    fanout: processes=<n> rate_ratio=<achieved/configured> 429s=<count> duplicates=<count>
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import aiohttp
from pydantic import SecretStr
from sqlalchemy import text

from bench.fanout import HttpPlatform
from bench.fanout_setup import NOW, grant_all, populate
from concierge.bootstrap import build_runtime
from concierge.database import Database, upgrade
from concierge.digests.planner import plan_all_due
from concierge.settings import Settings
from concierge.testing.postgres import PostgresServer

UNSENT = text("SELECT count(*) FROM outboxitem WHERE status IN ('pending', 'sending', 'confirmed')")


def settings_for(url: str, rate: float) -> Settings:
    return Settings(_env_file=None, database_url=SecretStr(url), digest_rate_per_s=rate,
                    digest_burst=max(1, int(rate / 20)), digest_max_per_day=10)


async def worker(url: str, port: int, rate: float) -> None:
    """One bot process: its dispatcher delivers until nothing is left unsent (by any process)."""
    import scheduling

    platform = HttpPlatform(f"http://127.0.0.1:{port}")
    # The real clock: what was planned at NOW is due, and a 429's Retry-After runs out.
    runtime = build_runtime(settings_for(url, rate), {"bench": platform})
    scheduling.attach(runtime)  # the per-platform send limiters
    try:
        while True:
            if not await runtime.dispatcher.drain():
                if not await runtime.db.run(lambda session: session.execute(UNSENT).scalar()):
                    break
                await asyncio.sleep(0.05)
    finally:
        if platform.session is not None:
            await platform.session.close()
        runtime.close()


async def stats_of(port: int) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/stats") as response:
            return await response.json()


def run(processes: int, deliveries: int, rate: float) -> dict:
    """Plan `deliveries`, deliver them from `processes` processes; the fake platform's counts."""
    server = PostgresServer().start()
    fake = subprocess.Popen([sys.executable, "-m", "bench.fake_platform_server", "--rate", str(rate)],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(fake.stdout.readline())
        url = server.create_database("fanout")
        upgrade(url)
        db = Database.from_url(url)
        populate(db, deliveries)
        grant_all(db, deliveries)
        planned = asyncio.run(plan_all_due(db.run, NOW, limit=50000, max_per_day=10))
        db.close()
        assert planned == deliveries, (planned, deliveries)
        started = time.perf_counter()
        workers = [subprocess.Popen([sys.executable, "-m", "bench.fanout_processes", "--worker", url,
                                     "--port", str(port), "--rate", str(rate)]) for _ in range(processes)]
        for process in workers:
            if process.wait() != 0:
                raise SystemExit(f"fanout: a worker process failed ({process.returncode})")
        stats = asyncio.run(stats_of(port))
        stats["elapsed"] = time.perf_counter() - started
        return stats
    finally:
        fake.terminate()
        fake.wait()
        server.stop()


def line(processes: int, deliveries: int, rate: float) -> str:
    stats = run(processes, deliveries, rate)
    span = (stats["last"] - stats["first"]) if stats["accepted"] > 1 else 0.0
    achieved = (stats["accepted"] - 1) / span if span else 0.0
    if stats["accepted"] != deliveries:
        print(f"warning: {deliveries - stats['accepted']} deliveries missing", flush=True)
    return (f"fanout: processes={processes} rate_ratio={achieved / rate:.3f} 429s={stats['rejected_429']} "
            f"duplicates={stats['duplicates']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--deliveries", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.port, args.rate))
        return
    print(line(args.processes, args.deliveries, args.rate), flush=True)


if __name__ == "__main__":
    main()
