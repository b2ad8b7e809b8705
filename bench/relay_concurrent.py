"""Relay under concurrency, against the storage limit measured on the same database.

`measure_concurrent` drives `members` members at once through the running bot: each writes,
waits until the staff thread has the message, gets an answer, waits until the DM has it, and
so on for `rounds` rounds. A relay's time is from handing the event to the core until the
platform has that message. Run flat out (each member writes again the moment the answer is
back) this gives the throughput; but then every relay queues behind the other members' (by
Little's law the latency is members / throughput, whatever the bot does), so the latencies
reported are those of a second run at half that rate, members pausing between messages.

`measure_limit` is what the storage can do with the same concurrency, the same engine settings
and the same database threads: bare transactions that insert and commit what one relay must
record durably (its inbox row, its outbox row and its transcript row), nothing else.

`measure_storage_paced` gives the latencies' counterpart: those bare writes offered at the paced
run's rate, the same members pausing the same way, grouped as the bot's writes are. Its p99 is
the storage's and the machine's share of the relay's: the disk's syncs, the host's pauses.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import insert
from sqlmodel import Session

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.collector import freeze_startup_objects
from concierge.database import Database
from concierge.inbound import CommandInvoked, Inbound, MemberMessage, StaffReply
from concierge.inbox import record
from concierge.outbox import ITEMS, THREAD_POST
from concierge.platform import Address, MessageRef, Outbound
from concierge.relay import record_message
from concierge.settings import Settings

SETTLE_S = 2.0  # between the saturated and the paced run: two checkpoint intervals


class KeyedPlatform(LocalPlatform):
    """The in-memory platform, resolving a future per message (by its outbox idempotency key).

    It counts what arrives and keeps only the last one's reference, not every message as the
    playground's platform does: a real platform's memory is not the bot's, and 24,000 retained
    messages made the benchmark's own full garbage collections (up to 46 ms) the slowest relays.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.delivered = 0
        self.last: MessageRef | None = None

    def expect(self, key: str) -> asyncio.Future[float]:
        future = self.waiting[key] = asyncio.get_running_loop().create_future()
        return future

    def _arrived(self, message: Outbound, ref: MessageRef) -> None:
        self.sent.clear()
        self.delivered += 1
        self.last = ref
        future = self.waiting.pop(message.idempotency_key or "", None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        ref = await super().send(address, message)
        self._arrived(message, ref)
        return ref

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        ref = await super().open_thread(channel, message)
        self._arrived(message, ref)
        return ref


def percentiles(latencies: list[float]) -> tuple[float, float]:
    latencies = sorted(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies) * 1000, p99 * 1000


@dataclass
class Concurrent:
    """What `measure_concurrent` found."""

    per_s: float  # relays per second with every member writing again as soon as answered (saturated)
    p50_ms: float  # latencies at half that rate (members pausing between messages)
    p99_ms: float
    saturated_p50_ms: float  # latencies while saturated: queueing, by Little's law members / per_s
    saturated_p99_ms: float
    cpu_us: float  # CPU per relay while saturated, every thread of the process
    conversations: list[int]
    paced_pause_s: float  # each member's mean pause between relays in the paced run


async def measure_concurrent(settings: Settings, members: int, rounds: int, load: float = 0.5,
                             paced_per_s: float | None = None) -> Concurrent:
    """`members` members at once: first saturated (each writes again as soon as the answer is
    back), then paced at `load` times the rate found (each pauses a random while between
    relays, as people do): the throughput of the first, the latencies of both.

    `paced_per_s` paces the second run at that rate instead. Comparing two versions of the bot,
    use it: at `load` times its own throughput, a version that is slower when saturated is
    measured at a lighter load, and its latencies look better than they are."""
    platform = KeyedPlatform()
    runtime = build_runtime(settings, {"local": platform})
    freeze_startup_objects()  # as `serve` does
    admin = LocalPlatform.dm_address("admin")
    # The bot's background work runs as in `concierge run`: the outbox, the inbox worker's poll, the scheduler.
    loop_task = asyncio.create_task(runtime.run_background())
    pauses = random.Random(7)

    async def relay(event: Inbound, key: str) -> float:
        arrived = platform.expect(key)
        before = time.perf_counter()
        await runtime.concierge.handle(event)
        return (await arrived) - before  # a lost message ends the phase's wait (below), not a timer per relay

    try:
        await runtime.concierge.handle(CommandInvoked("setup-expert", admin, ("expert", "add", "bob", "nutrition")))
        names = [f"member{i}" for i in range(members)]
        threads: dict[str, str] = {}
        for name in names:
            await runtime.concierge.handle(CommandInvoked(f"setup-{name}", admin, ("member", "add", name, "premium")))
            await relay(MemberMessage(f"open-{name}", LocalPlatform.dm_address(name), "first question"),
                        "in:local:open-" + name)
            if platform.last is None:
                raise SystemExit("relay: the first question opened no thread")
            threads[name] = platform.last.address.thread

        async def member(name: str, phase: str, pause_s: float) -> list[float]:
            spent = []
            staff = Address("local", settings.staff_channel, "bob", threads[name])
            for number in range(rounds):
                for event, key in ((MemberMessage(f"{phase}m-{name}-{number}", LocalPlatform.dm_address(name),
                                                  f"question {number}"), f"in:local:{phase}m-{name}-{number}"),
                                   (StaffReply(f"{phase}r-{name}-{number}", staff, f"answer {number}"),
                                    f"reply:local:{phase}r-{name}-{number}")):
                    if pause_s:
                        await asyncio.sleep(pauses.expovariate(1 / pause_s))
                    spent.append(await relay(event, key))
            return spent

        async def phase(name: str, pause_s: float) -> tuple[float, float, list[float]]:
            platform.delivered = 0
            gc.collect()
            started, cpu = time.perf_counter(), time.process_time()
            # One timeout for the phase: a timer per relay (wait_for) cost the event loop a tenth of a relay.
            results = await asyncio.wait_for(
                asyncio.gather(*(member(member_name, name, pause_s) for member_name in names)), 300)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            if platform.delivered != 2 * members * rounds:
                raise SystemExit(f"relay: delivered {platform.delivered} of {2 * members * rounds} messages")
            return elapsed, cpu, [value for spent in results for value in spent]

        expected = 2 * members * rounds
        elapsed, cpu, saturated = await phase("s", 0.0)
        per_s = expected / elapsed
        # The overload ends: what it left (a long write-ahead log being checkpointed, SQLite) settles
        # before the paced run, which measures a steady half load, not the way down from saturation.
        await asyncio.sleep(SETTLE_S)
        # Each member waits about members / rate between relays, so that together they offer that rate.
        pause_s = members / (paced_per_s or load * per_s)
        _, _, paced = await phase("p", pause_s)
        conversations = await runtime.db.run(lambda session: [
            row[0] for row in session.execute(ITEMS.select().with_only_columns(ITEMS.c.conversation_id)
                                              .where(ITEMS.c.conversation_id.is_not(None)).distinct())])
        return Concurrent(per_s, *percentiles(paced), *percentiles(saturated), cpu / expected * 1e6, conversations,
                          pause_s)
    finally:
        await runtime.stop_background(loop_task)
        runtime.close()


_INSERT_ITEM = insert(ITEMS)  # built once, as the bot's own statements are


def durable_write(session: Session, number: int, conversation_id: int, now: datetime) -> None:
    """What one relay must record durably: its inbox row, its outbox row, its transcript row."""
    event = MemberMessage(f"limit-{number}", LocalPlatform.dm_address(f"limit{conversation_id}"), "question")
    record(session, event, now)
    session.execute(_INSERT_ITEM, {
        "key": f"limit:{number}", "kind": THREAD_POST, "platform": "local",
        "address": {"platform": "local", "channel": "staff", "thread": "1"}, "payload": {"text": "question"},
        "conversation_id": conversation_id, "status": "sent", "lease_until": None, "attempts": 0,
        "next_attempt_at": now, "last_error": "", "created_at": now,
    })
    record_message(session, conversation_id=conversation_id, direction="in", author="limit", text="question",
                   now=now)


async def measure_limit(settings: Settings, conversations: list[int], concurrency: int,
                        per_writer: int) -> tuple[float, float]:
    """Bare durable writes per second, `concurrency` writers at once, through the bot's `Database`;
    and the CPU µs each took (every thread of this process: the event loop's and the database's)."""
    db = Database.from_url(settings.database_url.get_secret_value(), synchronous=settings.sqlite_synchronous)
    numbers = itertools.count()
    now = datetime.now(timezone.utc)

    async def writer(index: int) -> None:
        conversation_id = conversations[index % len(conversations)]
        for _ in range(per_writer):
            number = next(numbers)
            await db.run(lambda session, n=number: durable_write(session, n, conversation_id, now))

    try:
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(writer(index) for index in range(concurrency)))
        count = concurrency * per_writer
        return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6
    finally:
        db.close()


async def measure_storage_paced(settings: Settings, conversations: list[int], members: int, writes: int,
                                pause_s: float) -> tuple[float, float]:
    """The bare durable writes of `measure_limit`, offered as the paced run offers relays: `members`
    writers, each pausing a random while (mean `pause_s`) before each of its `writes` writes, grouped
    as the bot's writes are. Returns their p50 and p99 in ms."""
    db = Database.from_url(settings.database_url.get_secret_value(), synchronous=settings.sqlite_synchronous)
    numbers = itertools.count(1_000_000_000)  # after `measure_limit`'s event ids
    now = datetime.now(timezone.utc)
    pauses = random.Random(7)

    async def writer(index: int) -> list[float]:
        conversation_id = conversations[index % len(conversations)]
        spent = []
        for _ in range(writes):
            await asyncio.sleep(pauses.expovariate(1 / pause_s))
            number = next(numbers)
            before = time.perf_counter()
            await db.run_grouped(lambda session, n=number: durable_write(session, n, conversation_id, now))
            spent.append(time.perf_counter() - before)
        return spent

    try:
        gc.collect()
        results = await asyncio.gather(*(writer(index) for index in range(members)))
        return percentiles([value for spent in results for value in spent])
    finally:
        db.close()
