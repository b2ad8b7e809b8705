"""What a relay costs as its conversation grows: a short transcript against a long one, same run.

A member's message is counted against the flood limit (their lines of the last minute), and the
staff see who waits (the last answer, the first question after it). Read through an index on
the conversation alone, those reads go through every line the conversation ever had, so a relay
costs more the longer its conversation. This measures it.

For each length, each of `members` conversations is given that many older lines (two minutes
old: the flood limit does not count them), then every member writes and is answered `rounds`
times, one relay at a time, through the running bot. Prints, per backend:
    relay_cost: backend=<sqlite|postgresql> lines=<n> relay_us=<µs per relay> cpu_us=<the bot's CPU per relay>
    relay_cost: backend=<..> growth=<relay_us(long) / relay_us(short)>
`relay_us` is wall time, one relay at a time: it includes the database server's work on
PostgreSQL, which the bot's CPU does not. Goal: growth close to 1 (the cost of a relay does not
depend on how long its conversation is).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlmodel import Session, select

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.database import upgrade
from concierge.inbound import CommandInvoked, MemberMessage, StaffReply
from concierge.platform import Address
from concierge.records import Conversation
from concierge.relay import record_message
from concierge.settings import Settings
from concierge.states import Direction
from concierge.testing.postgres import PostgresServer


async def measure(url: str, members: int, lines: int, rounds: int) -> tuple[float, float]:
    """µs per relay (wall, one at a time) and the bot's CPU µs per relay, in conversations of `lines` lines."""
    settings = Settings(_env_file=None, database_url=SecretStr(url), admins=["local:admin"],
                        member_messages_per_minute=1_000_000)
    platform = LocalPlatform()
    runtime = build_runtime(settings, {"local": platform})
    loop_task = asyncio.create_task(runtime.run_background())  # as `concierge run`: outbox, inbox poll, scheduler
    admin = LocalPlatform.dm_address("admin")
    try:
        await runtime.concierge.handle(CommandInvoked("setup-expert", admin, ("expert", "add", "bob", "nutrition")))
        names = [f"member{i}" for i in range(members)]
        for name in names:
            await runtime.concierge.handle(CommandInvoked(f"setup-{name}", admin, ("member", "add", name, "premium")))
            await runtime.concierge.handle(MemberMessage(f"open-{name}", LocalPlatform.dm_address(name), "hello"))
        await runtime.dispatcher.drain()
        old = runtime.concierge.clock.now() - timedelta(minutes=2)

        def fill(session: Session) -> dict[str, str]:
            threads = {}
            for conversation in session.exec(select(Conversation)).all():
                assert conversation.id is not None and conversation.staff_thread is not None
                for number in range(lines):
                    record_message(session, conversation_id=conversation.id, author="old", text=f"line {number}",
                                   direction=Direction.IN if number % 2 else Direction.OUT, now=old)
                threads[conversation.member_user or ""] = conversation.staff_thread
            return threads

        threads = await runtime.db.run(fill)
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        for number in range(rounds):
            for name in names:
                await runtime.concierge.handle(MemberMessage(f"m-{name}-{number}", LocalPlatform.dm_address(name),
                                                             f"question {number}"))
                staff = Address("local", settings.staff_channel, "bob", threads[name])
                await runtime.concierge.handle(StaffReply(f"r-{name}-{number}", staff, f"answer {number}"))
        await runtime.dispatcher.drain()
        relays = 2 * members * rounds
        return (time.perf_counter() - started) / relays * 1e6, (time.process_time() - cpu) / relays * 1e6
    finally:
        await runtime.stop_background(loop_task)
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--short", type=int, default=20, help="lines of a short conversation")
    parser.add_argument("--long", type=int, default=5000, help="lines of a long conversation")
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        costs = {}
        server = PostgresServer().start() if backend == "postgresql" else None
        try:
            with tempfile.TemporaryDirectory() as folder:
                for lines in (args.short, args.long):
                    url = (f"sqlite:///{Path(folder) / f'cost{lines}.db'}" if server is None
                           else server.create_database(f"cost{lines}"))
                    upgrade(url)
                    relay_us, cpu_us = asyncio.run(measure(url, args.members, lines, args.rounds))
                    costs[lines] = relay_us
                    print(f"relay_cost: backend={backend} lines={lines} relay_us={relay_us:.0f} cpu_us={cpu_us:.0f}",
                          flush=True)
        finally:
            if server is not None:
                server.stop()
        print(f"relay_cost: backend={backend} growth={costs[args.long] / costs[args.short]:.2f}", flush=True)


if __name__ == "__main__":
    main()
