"""Relay benchmark: N members each sending M messages, each answered, through the core.

Prints two lines per backend:
    relay: backend=<sqlite|postgresql> per_s=<relays per second> p50_ms=<..> p99_ms=<..>
    relay: backend=<..> mode=concurrent per_s=<N> p50_ms=<A> p99_ms=<B> limit_per_s=<L> ratio=<per_s/L>
The first is one member at a time; the second many members at once (see `bench.relay_concurrent`:
the throughput flat out, the latencies at half that rate), with the storage limit measured on the
same database: bare transactions writing what a relay must record durably, at the same
concurrency. Lines before it give the latencies flat out and the CPU per relay and per bare write,
and the latencies of those bare writes offered at the paced run's rate (the storage's and the
machine's share of the relay's p99).
A relay is one message carried across (member -> staff thread, or expert -> member DM); its time
is the bot's own: from handing the inbound event to the core until the fake platform has it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from adapters.local.platform import LocalPlatform
from bench.relay_concurrent import measure_concurrent, measure_limit, measure_storage_paced
from concierge.bootstrap import build_runtime
from concierge.collector import freeze_startup_objects
from concierge.database import upgrade
from concierge.inbound import CommandInvoked, Inbound, MemberMessage, StaffReply
from concierge.platform import Address, MessageRef, Outbound
from concierge.settings import Settings
from concierge.testing.postgres import PostgresServer


class SignallingPlatform(LocalPlatform):
    """The in-memory platform, telling the benchmark when each message has arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        ref = await super().send(address, message)
        self.arrived.set()
        return ref

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        ref = await super().open_thread(channel, message)
        self.arrived.set()
        return ref


async def measure(url: str, members: int, messages: int) -> tuple[float, float, float]:
    """Relay through the running bot: the dispatcher loop delivers as it would in production."""
    platform = SignallingPlatform()
    # The flood limit is not what this measures: members here write far faster than people do.
    settings = Settings(_env_file=None, database_url=SecretStr(url), admins=["local:admin"],
                        member_messages_per_minute=1_000_000)
    runtime = build_runtime(settings, {"local": platform})
    freeze_startup_objects()  # as `serve` does
    admin = LocalPlatform.dm_address("admin")
    loop_task = asyncio.create_task(runtime.run_background())  # as `concierge run`: outbox, inbox poll, scheduler

    async def handle(event: Inbound) -> None:
        platform.arrived.clear()
        await runtime.concierge.handle(event)
        await asyncio.wait_for(platform.arrived.wait(), 10)

    try:
        await runtime.concierge.handle(CommandInvoked("setup-expert", admin, ("expert", "add", "bob", "nutrition")))
        names = [f"member{i}" for i in range(members)]
        threads: dict[str, str] = {}
        for name in names:
            await runtime.concierge.handle(CommandInvoked(f"setup-{name}", admin, ("member", "add", name, "premium")))
            await handle(MemberMessage(f"open-{name}", LocalPlatform.dm_address(name), "first question"))
            threads[name] = platform.sent[-1].ref.address.thread
        platform.sent.clear()

        latencies: list[float] = []
        gc.collect()
        started = time.perf_counter()
        for round_number in range(messages):
            for name in names:
                before = time.perf_counter()
                await handle(MemberMessage(f"m-{name}-{round_number}", LocalPlatform.dm_address(name),
                                           f"question {round_number}"))
                middle = time.perf_counter()
                await handle(StaffReply(f"r-{name}-{round_number}",
                                        Address("local", settings.staff_channel, "bob", threads[name]),
                                        f"answer {round_number}"))
                after = time.perf_counter()
                latencies += [middle - before, after - middle]
        elapsed = time.perf_counter() - started
        expected = 2 * members * messages
        if len(platform.sent) != expected:
            raise SystemExit(f"relay: delivered {len(platform.sent)} of {expected} messages")
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        return expected / elapsed, p50, p99
    finally:
        await runtime.stop_background(loop_task)
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--concurrent-members", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10, help="messages each concurrent member sends")
    parser.add_argument("--paced-per-s", type=float, default=None,
                        help="pace the latency run at this many relays a second, not at half the throughput "
                             "found (to compare two versions at the same load)")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as folder:
            server = None
            if backend == "sqlite":
                url = f"sqlite:///{Path(folder) / 'bench.db'}"
            else:
                server = PostgresServer().start()
                url = server.create_database("bench")
            try:
                upgrade(url)
                per_s, p50, p99 = asyncio.run(measure(url, args.members, args.messages))
                print(f"relay: backend={backend} per_s={per_s:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f}", flush=True)
                url = (f"sqlite:///{Path(folder) / 'concurrent.db'}" if server is None
                       else server.create_database("concurrent"))
                upgrade(url)
                settings = Settings(_env_file=None, database_url=SecretStr(url), admins=["local:admin"],
                                    member_messages_per_minute=1_000_000)
                found = asyncio.run(measure_concurrent(settings, args.concurrent_members, args.rounds,
                                                            paced_per_s=args.paced_per_s))
                limit, limit_cpu_us = asyncio.run(measure_limit(settings, found.conversations,
                                                                args.concurrent_members, 2 * args.rounds))
                storage_p50, storage_p99 = asyncio.run(measure_storage_paced(
                    settings, found.conversations, args.concurrent_members, 2 * args.rounds, found.paced_pause_s))
            finally:
                if server is not None:
                    server.stop()
        print(f"relay: backend={backend} saturated p50_ms={found.saturated_p50_ms:.1f} "
              f"p99_ms={found.saturated_p99_ms:.1f} cpu_us={found.cpu_us:.0f} limit_cpu_us={limit_cpu_us:.0f}",
              flush=True)
        print(f"relay: backend={backend} storage at the paced rate p50_ms={storage_p50:.2f} p99_ms={storage_p99:.2f}",
              flush=True)
        print(f"relay: backend={backend} mode=concurrent per_s={found.per_s:.0f} p50_ms={found.p50_ms:.2f} "
              f"p99_ms={found.p99_ms:.2f} limit_per_s={limit:.0f} ratio={found.per_s / limit:.2f}", flush=True)


if __name__ == "__main__":
    main()
