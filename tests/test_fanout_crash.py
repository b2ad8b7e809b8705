"""kill -9 in the middle of a digest fan-out, then a restart: none missing, none doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import timedelta

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock, utc_now
from tests.conftest import make_settings
from tests.contract.local_driver import LocalDriver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEMBERS = 300

FAN_OUT = textwrap.dedent("""
    import asyncio, os, sys
    from adapters.local.platform import LocalPlatform
    from concierge.bootstrap import build_runtime
    from concierge.platform import MessageRef
    import scheduling
    from sqlalchemy import text
    from tests.conftest import make_settings

    class RemotePlatform(LocalPlatform):
        # Stands for the chat platform: a log every process appends to, which remembers
        # idempotency keys across our restarts (as Discord's enforced nonce does).
        def __init__(self, path):
            super().__init__()
            self.path = path

        async def send(self, address, message):
            with open(self.path, "a+") as log:
                log.seek(0)
                seen = {line.split("\\t")[1] for line in log.read().splitlines()}
                accepted = message.idempotency_key not in seen
                log.write(f"{'accepted' if accepted else 'repeat'}\\t{message.idempotency_key}\\t{address.user}\\n")
                log.flush()
            return MessageRef(address, "m")

    async def main():
        # A short lease: on PostgreSQL a dead worker's claims are taken over when it runs out.
        settings = make_settings(sys.argv[1], digest_rate_per_s=300, digest_burst=10, outbox_lease_s=2)
        runtime = build_runtime(settings, {"local": RemotePlatform(sys.argv[2])})
        scheduler = scheduling.attach(runtime)
        await runtime.dispatcher.release_own_leases()
        await scheduler.tick()
        await runtime.dispatcher.drain()
        for _ in range(100):  # until nothing is left unsent (claims of the dead worker included)
            unsent = runtime.db.run_sync(lambda session: session.execute(text(
                "SELECT count(*) FROM outboxitem WHERE status IN ('pending', 'sending', 'confirmed')")).scalar())
            if not unsent:
                break
            await asyncio.sleep(0.2)
            await runtime.dispatcher.drain()
        runtime.close()

    asyncio.run(main())
""")


def fan_out(url: str, log: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", FAN_OUT, url, log], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines(log) -> list[list[str]]:
    return [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []


async def test_kill_during_fan_out_then_restart(database_url, tmp_path):
    clock = FrozenClock(utc_now() - timedelta(days=2))
    runtime = build_runtime(make_settings(database_url), {"local": LocalPlatform()}, clock=clock)
    try:
        desk = LocalDriver(runtime, LocalPlatform())
        await desk.command("admin", "expert add bob nutrition")
        await desk.command("admin", "digest create tips Tips --cadence weekly")
        for number in range(MEMBERS):
            await desk.command("admin", f"member add m{number} premium")
            assert "Subscribed" in await desk.command(f"m{number}", "subscribe tips --cadence daily --hour 0")
        await desk.command("bob", "digest add tips Stretch after running.")
        await desk.command("admin", "digest publish tips")
    finally:
        runtime.close()

    log = tmp_path / "platform.log"
    first = fan_out(database_url, str(log))
    deadline = time.monotonic() + 60
    while len(lines(log)) < MEMBERS // 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL, first.stderr.read()
    delivered_before = len(lines(log))
    assert 0 < delivered_before < MEMBERS, "the kill came in the middle of the fan-out"

    second = fan_out(database_url, str(log))
    assert second.wait(timeout=120) == 0, second.stderr.read()

    accepted = Counter(user for kind, _key, user in lines(log) if kind == "accepted")
    repeats = [user for kind, _key, user in lines(log) if kind == "repeat"]
    assert sorted(accepted) == sorted(f"m{number}" for number in range(MEMBERS)), "none missing"
    assert [user for user, count in accepted.items() if count > 1] == [], "none doubled"
    assert len(repeats) <= 1, "at most the one message in flight was tried again (and had the same key)"
