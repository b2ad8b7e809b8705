"""Several bot processes on one PostgreSQL database: relay throughput, nothing doubled, nothing lost.

For 1, 2 and 4 processes, on a fresh database each time: members with an open conversation
(their staff threads opened beforehand), then `rounds` rounds of a message from every member
and an expert's answer to each. The events come from a loopback fake platform
(`bench.scale_platform`) that hands each event to whichever process asks first, in batches; each
process is a real bot runtime (inbox worker, outbox dispatcher, scheduler) feeding the events to
`Concierge.receive` and sending through the fake. Prints one line per run, then the speedup:
    scale: processes=<n> per_s=<relays per second> duplicates=<D> lost=<L>
    scale: speedup_4=<per_s(4)/per_s(1)>
then one process against a platform that answers each send after a round trip (50 ms, as a real
platform's API does), sending one message at a time and then as configured (several at once):
    scale: processes=1 round_trip_ms=<R> concurrency=<C> per_s=<N> one_at_a_time_per_s=<M> ratio=<N/M>
A relay is one message carried across; `per_s` is counted from the moment the events are
offered until the last expected message reached the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import aiohttp
from pydantic import SecretStr
from sqlalchemy import text

from concierge.bootstrap import build_runtime
from concierge.database import upgrade
from concierge.inbound import CommandInvoked, Inbound, MemberMessage, StaffReply, event_from_dict, event_to_dict
from concierge.platform import Address, MessageRef, Outbound
from concierge.settings import Settings
from concierge.testing.postgres import PostgresServer

NAME = "bench"
STAFF = "staff"


class FakePlatform:
    """The `Platform` port over HTTP to the fake (`bench.scale_platform`)."""

    name = NAME

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def _post(self, address: Address, message: Outbound) -> str:
        body = {"key": message.idempotency_key, "channel": address.channel, "user": address.user,
                "thread": address.thread}
        async with self.session.post(f"{self.base_url}/send", json=body) as response:
            response.raise_for_status()
            return (await response.json())["id"]

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        return MessageRef(address, await self._post(address, message))

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        message_id = await self._post(channel, message)
        return MessageRef(channel.in_thread(message_id), message_id)

    async def open_dm(self, user: Address) -> Address:
        return Address(NAME, f"D{user.user}", user.user)

    async def edit(self, ref: MessageRef, message: Outbound) -> None:
        return None


def settings_for(url: str, concurrency: int | None = None) -> Settings:
    # Members here write far faster than people do: the flood limit is not what this measures.
    extra = {} if concurrency is None else {"outbox_send_concurrency": concurrency}
    return Settings(_env_file=None, database_url=SecretStr(url), admins=[f"{NAME}:admin"], staff_channel=STAFF,
                    member_messages_per_minute=1_000_000, **extra)


def dm(member: int) -> Address:
    return Address(NAME, f"D{member}", f"m{member}")


async def set_up(url: str, base_url: str, members: int) -> dict[int, str]:
    """An expert and `members` members, each with a conversation whose staff thread is open."""
    async with aiohttp.ClientSession() as session:
        runtime = build_runtime(settings_for(url), {NAME: FakePlatform(session, base_url)})
        admin = Address(NAME, "Dadmin", "admin")
        try:
            await runtime.concierge.handle(CommandInvoked("setup-expert", admin, ("expert", "add", "bob", "general")))
            for member in range(members):
                await runtime.concierge.handle(CommandInvoked(f"setup-{member}", admin,
                                                              ("member", "add", f"m{member}", "premium")))
                await runtime.concierge.handle(MemberMessage(f"open-{member}", dm(member), "first question"))
            while await runtime.drain():
                pass
            rows = await runtime.db.run(lambda session: session.execute(
                text("SELECT member_user, staff_thread FROM conversation")).all())
            return {int(user[1:]): thread for user, thread in rows}
        finally:
            runtime.close()


def workload(threads: dict[int, str], rounds: int) -> tuple[list[dict], set[str]]:
    """The events to offer, in order, and the outbox keys of the messages they must deliver."""
    events: list[Inbound] = []
    expected: set[str] = set()
    for number in range(rounds):
        for member in sorted(threads):
            events.append(MemberMessage(f"m-{member}-{number}", dm(member), f"question {number}"))
            expected.add(f"in:{NAME}:m-{member}-{number}")
        for member in sorted(threads):
            events.append(StaffReply(f"r-{member}-{number}", Address(NAME, STAFF, "bob", threads[member]),
                                     f"answer {number}"))
            expected.add(f"reply:{NAME}:r-{member}-{number}")
    return [event_to_dict(event) for event in events], expected


async def worker(url: str, base_url: str, batch: int, concurrency: int | None) -> None:
    """One bot process: take events from the platform, hand each to the core, until told to stop."""
    async with aiohttp.ClientSession() as session:
        runtime = build_runtime(settings_for(url, concurrency), {NAME: FakePlatform(session, base_url)})
        background = asyncio.create_task(runtime.run_background())
        try:
            while True:
                async with session.get(f"{base_url}/events", params={"max": str(batch), "worker": str(os.getpid())}) as response:
                    body = await response.json()
                if body.get("stop"):
                    break
                if not body["events"]:
                    await asyncio.sleep(0.01)
                    continue
                await asyncio.gather(*(runtime.concierge.receive(event_from_dict(data)) for data in body["events"]))
        finally:
            await runtime.stop_background(background)
            runtime.close()


async def call(base_url: str, method: str, path: str, body: object = None) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{base_url}{path}", json=body) as response:
            return await response.json()


def run(server: PostgresServer, processes: int, members: int, rounds: int, batch: int, *, name: str = "",
        round_trip_s: float = 0.0, concurrency: int | None = None) -> tuple[float, int, int]:
    """One measured run with `processes` bot processes: (relays per second, duplicates, lost).
    `round_trip_s`: the fake platform's answer time; `concurrency`: the processes' sends at once."""
    url = server.create_database(name or f"scale{processes}")
    upgrade(url)
    fake = subprocess.Popen([sys.executable, "-m", "bench.scale_platform", str(round_trip_s)], stdout=subprocess.PIPE,
                            text=True)
    workers: list[subprocess.Popen] = []
    try:
        assert fake.stdout is not None
        base_url = f"http://127.0.0.1:{int(fake.stdout.readline())}"
        threads = asyncio.run(set_up(url, base_url, members))
        events, expected = workload(threads, rounds)
        command = [sys.executable, "-m", "bench.scale", "--worker", url, "--base-url", base_url, "--batch", str(batch)]
        if concurrency is not None:
            command += ["--concurrency", str(concurrency)]
        workers = [subprocess.Popen(command) for _ in range(processes)]
        while asyncio.run(call(base_url, "GET", "/stats"))["pollers"] < processes:  # all up before the offer
            time.sleep(0.1)
        asyncio.run(call(base_url, "POST", "/load", events))
        stats: dict = {}
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < 15:  # until everything arrived, or nothing more does
            stats = asyncio.run(call(base_url, "GET", "/stats"))
            arrived = len(expected & set(stats["delivered"]))
            if arrived == len(expected):
                break
            if arrived != last_count:
                last_count, last_change = arrived, time.monotonic()
            time.sleep(0.2)
        time.sleep(1.0)  # anything sent twice would arrive now
        stats = asyncio.run(call(base_url, "GET", "/stats"))
        asyncio.run(call(base_url, "POST", "/stop"))
        for process in workers:
            process.wait(timeout=60)
        delivered = stats["delivered"]
        duplicates = sum(count - 1 for count in delivered.values())
        lost = len(expected - set(delivered))
        per_s = (len(expected) - lost) / (stats["last_send"] - stats["loaded_at"])
        return per_s, duplicates, lost
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
        fake.terminate()
        fake.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=50, help="events a process takes from the platform at once")
    parser.add_argument("--concurrency", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--round-trip-ms", type=float, default=50.0,
                        help="the platform's answer time in the last run (one process, one send at a time and then several)")
    parser.add_argument("--round-trip-members", type=int, default=50)
    parser.add_argument("--round-trip-rounds", type=int, default=2)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.base_url, args.batch, args.concurrency))
        return
    server = PostgresServer().start()
    rates: dict[int, float] = {}
    try:
        for processes in args.processes:
            per_s, duplicates, lost = run(server, processes, args.members, args.rounds, args.batch)
            rates[processes] = per_s
            print(f"scale: processes={processes} per_s={per_s:.0f} duplicates={duplicates} lost={lost}", flush=True)
        if 1 in rates and 4 in rates:
            print(f"scale: speedup_4={rates[4] / rates[1]:.2f}", flush=True)
        if args.round_trip_ms:
            round_trip_s = args.round_trip_ms / 1000
            concurrency = settings_for("sqlite://").outbox_send_concurrency
            found = {}
            for sends in (1, concurrency):
                per_s, duplicates, lost = run(server, 1, args.round_trip_members, args.round_trip_rounds, args.batch,
                                              name=f"round_trip_{sends}", round_trip_s=round_trip_s, concurrency=sends)
                if duplicates or lost:
                    raise SystemExit(f"scale: {sends} at once: duplicates={duplicates} lost={lost}")
                found[sends] = per_s
            print(f"scale: processes=1 round_trip_ms={args.round_trip_ms:.0f} concurrency={concurrency} "
                  f"per_s={found[concurrency]:.0f} one_at_a_time_per_s={found[1]:.0f} "
                  f"ratio={found[concurrency] / found[1]:.2f}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
