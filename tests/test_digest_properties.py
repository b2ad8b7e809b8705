"""Property: whatever members do and however time jumps or the bot restarts, every delivery is
backed by a consent in force, no (edition, member) pair is delivered twice, nothing due is lost."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock
from concierge.digests.audit import consent_violations
from scheduling.ticker import DigestScheduler
from tests.conftest import START, make_settings
from tests.contract.local_driver import LocalDriver

MEMBERS = ("ann", "ben", "cat")
OPERATIONS = st.one_of(
    st.tuples(st.just("subscribe"), st.sampled_from(MEMBERS), st.sampled_from(["daily", "weekly", "monthly"]),
              st.integers(0, 23), st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"])),
    st.tuples(st.just("unsubscribe"), st.sampled_from(MEMBERS)),
    st.tuples(st.just("publish")),
    st.tuples(st.just("advance"), st.integers(1, 72)),
    st.tuples(st.just("restart")),
    st.tuples(st.just("plan_only"), st.integers(1, 72)),  # time passes, the outbox has not sent yet
)


class World:
    def __init__(self, url: str) -> None:
        self.url = url
        self.clock = FrozenClock(START)
        self.platform = LocalPlatform()
        self.runtime = None
        self.start()

    def start(self) -> None:
        self.runtime = build_runtime(make_settings(self.url), {"local": self.platform}, clock=self.clock)
        ids = self.driver._ids if self.runtime and hasattr(self, "driver") else None
        self.driver = LocalDriver(self.runtime, self.platform)
        if ids is not None:
            self.driver._ids = ids  # event ids stay unique across restarts, as a platform's are
        self.ticker = DigestScheduler(self.runtime.db, self.runtime.dispatcher, self.runtime.concierge.settings,
                                      self.clock)

    async def restart(self) -> None:
        self.runtime.close()
        self.start()
        await self.runtime.dispatcher.release_own_leases()  # what the new process's loop does first

    async def tick(self) -> None:
        await self.ticker.tick()
        await self.runtime.dispatcher.drain()


async def play(world: World, operations) -> None:
    d = world.driver
    await d.command("admin", "digest create tips Tips --cadence weekly")
    for person in MEMBERS:
        await d.command("admin", f"member add {person} premium")
    await d.command("admin", "expert add bob nutrition")
    published = 0
    active: dict[str, int] = {}  # member -> editions published before their current subscription
    for operation in operations:
        d = world.driver
        kind = operation[0]
        if kind == "subscribe":
            _, person, cadence, hour, zone = operation
            answer = await d.command(person, f"subscribe tips --cadence {cadence} --hour {hour} --tz {zone}")
            assert answer.startswith("Subscribed"), answer
            active.setdefault(person, published)
        elif kind == "unsubscribe":
            answer = await d.command(operation[1], "unsubscribe tips")
            assert ("Unsubscribed" in answer) == (operation[1] in active), answer
            active.pop(operation[1], None)
        elif kind == "publish":
            await d.command("bob", f"digest add tips tip {published + 1}")
            assert "published" in await d.command("admin", "digest publish tips")
            published += 1
        elif kind == "advance":
            world.clock.advance(operation[1] * 3600)
            await world.tick()
        elif kind == "plan_only":
            world.clock.advance(operation[1] * 3600)
            await world.ticker.tick()
        else:
            await world.restart()
    for _ in range(4 * 40):  # forty days later, everything due has had its time
        world.clock.advance(6 * 3600)
        await world.tick()

    delivered = Counter()
    for sent in world.platform.sent:
        match = re.match(r"Tips #(\d+)\n", sent.message.text)
        if match:
            delivered[(sent.address.user, int(match.group(1)))] += 1
    assert world.runtime.db.run_sync(consent_violations) == []
    assert [pair for pair, count in delivered.items() if count > 1] == []
    for person, since in active.items():
        expected = {(person, number) for number in range(since + 1, published + 1)}
        missing = expected - set(delivered)
        assert not missing, f"lost: {sorted(missing)}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=25))
# Queued, then withdrawn before the outbox sends: the case that tests the consent promise hardest.
@example(operations=[("subscribe", "ann", "daily", 0, "UTC"), ("publish",), ("plan_only", 24),
                     ("unsubscribe", "ann"), ("advance", 24)])
@example(operations=[("subscribe", "ann", "daily", 0, "UTC"), ("publish",), ("plan_only", 24), ("restart",),
                     ("unsubscribe", "ann"), ("subscribe", "ann", "weekly", 8, "Europe/Paris"), ("publish",)])
def test_deliveries_follow_consent_exactly(tmp_path_factory, sqlite_template, operations):
    path = tmp_path_factory.mktemp("prop") / "c.db"
    shutil.copy(sqlite_template, path)
    world = World(f"sqlite:///{path}")
    try:
        asyncio.run(play(world, operations))
    finally:
        world.runtime.close()
