"""`Database.read`: long reads of the whole history, which must not hold up the writes queued after them."""

from __future__ import annotations

import asyncio
import shutil
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from concierge.database import Database
from tests.support.hold import hold_up

COUNT = "SELECT count(*) FROM sendbudget"
ADD = "INSERT INTO sendbudget (platform, next_free) VALUES (:platform, :at)"
AT = datetime(2026, 11, 26, tzinfo=timezone.utc).isoformat()


def add(platform: str):  # noqa: ANN201
    return lambda session: session.execute(text(ADD), {"platform": platform, "at": AT})


def count(session) -> int:  # noqa: ANN001
    return session.execute(text(COUNT)).scalar()


def sqlite_db(tmp_path, sqlite_template) -> Database:  # noqa: ANN001
    path = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, path)
    return Database.from_url(f"sqlite:///{path}")


async def test_a_read_sees_what_was_committed_and_commits_nothing(database_url):
    db = Database.from_url(database_url)
    try:
        await db.run(add("slack"))
        assert await db.read(count) == 1
        await db.read(add("discord"))
        assert await db.read(count) == 1, "a read is never committed"
    finally:
        db.close()


async def test_on_sqlite_a_long_read_does_not_hold_up_the_writes_queued_after_it(tmp_path, sqlite_template):
    """The catch-up's plan reads every inbound event of a platform (0.14 to 0.26 s with a million):
    on the writer's thread, every relay queued behind it waited as long."""
    db = sqlite_db(tmp_path, sqlite_template)
    release = threading.Event()

    def long_read(session) -> int:  # noqa: ANN001
        release.wait(10)
        return count(session)

    reading = asyncio.ensure_future(db.read(long_read))
    try:
        await asyncio.sleep(0.05)  # the read has started
        await asyncio.wait_for(db.run(add("slack")), 3)
        assert not reading.done(), "the write went through while the read ran"
    finally:
        release.set()
        assert await reading == 0, "the read kept its snapshot, taken before the write"
        db.close()


async def test_on_sqlite_a_read_sees_the_writes_queued_before_it_and_none_after(tmp_path, sqlite_template):
    """As `run` would: the catch-up's plan must not see the live messages recorded after it was asked
    for (their places would look read up to them, and what was written before them in the downtime
    would be skipped)."""
    db = sqlite_db(tmp_path, sqlite_template)
    hold, after_committed = threading.Event(), threading.Event()
    try:
        holding = asyncio.ensure_future(db.run(lambda _session: hold.wait(10)))
        before = asyncio.ensure_future(db.run(add("slack")))  # queued before the read
        reading = asyncio.ensure_future(db.read(lambda session: (after_committed.wait(10), count(session))[1]))
        await asyncio.sleep(0.05)
        after = asyncio.ensure_future(db.run(add("discord")))  # queued after it
        hold.set()
        await asyncio.gather(holding, before, after)
        after_committed.set()
        assert await reading == 1, "the write queued before is seen, the one queued after is not"
        assert await db.read(count) == 2
    finally:
        hold.set()
        after_committed.set()
        db.close()


@pytest.fixture
def sqlite_runtime(tmp_path, sqlite_template, clock):  # noqa: ANN001, ANN201
    """The bot on a SQLite file, with a file store."""
    from adapters.local.platform import LocalPlatform
    from concierge.bootstrap import build_runtime
    from tests.conftest import make_settings

    path = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, path)
    settings = make_settings(f"sqlite:///{path}", files_dir=str(tmp_path / "files"))
    runtime = build_runtime(settings, {"local": LocalPlatform()}, clock=clock)
    yield runtime
    runtime.close()


async def writes_go_through_while(runtime, reading: asyncio.Future, release) -> None:  # noqa: ANN001
    """A write queued after the held-up `reading` commits before it ends."""
    try:
        await asyncio.sleep(0.05)
        await asyncio.wait_for(runtime.db.run(add("slack")), 3)
        assert not reading.done()
    finally:
        release.set()


async def test_the_catch_up_plan_does_not_hold_up_the_writes_queued_after_it(sqlite_runtime, monkeypatch):
    import concierge.app

    release = hold_up(monkeypatch, concierge.app, "plan_catch_up")  # a plan over a long history
    planning = asyncio.ensure_future(sqlite_runtime.concierge.catch_up_plan("local"))
    await writes_go_through_while(sqlite_runtime, planning, release)
    assert (await planning).platform == "local"


async def test_the_file_sweeps_read_does_not_hold_up_the_writes_queued_after_it(sqlite_runtime, clock,
                                                                               monkeypatch):
    """The hourly sweep reads the hash of every stored file."""
    import scheduling.ticker
    from scheduling.ticker import DigestScheduler

    release = hold_up(monkeypatch, scheduling.ticker, "referenced")  # the hashes of a long history's files
    ticker = DigestScheduler(sqlite_runtime.db, sqlite_runtime.dispatcher, sqlite_runtime.concierge.settings, clock)
    sweeping = asyncio.ensure_future(ticker.sweep_files())
    try:
        await writes_go_through_while(sqlite_runtime, sweeping, release)
        assert await sweeping == 0
    finally:
        ticker.shutdown()


async def test_stats_over_a_period_does_not_hold_up_the_writes_queued_after_it(sqlite_runtime, monkeypatch):
    """`stats --since 365d` reads every conversation of the year (1,000,000 conversations: a quarter of
    a second a month of them). The command is recorded on the writer's thread; the figures are read
    beside it."""
    import concierge.commands.stats
    from adapters.local.platform import LocalPlatform
    from concierge.inbound import CommandInvoked

    admin = LocalPlatform.dm_address("admin")
    release = hold_up(monkeypatch, concierge.commands.stats, "collect")
    asking = asyncio.ensure_future(sqlite_runtime.concierge.handle(CommandInvoked("s1", admin, ("stats", "--since", "365d"))))
    await writes_go_through_while(sqlite_runtime, asking, release)
    assert (await asking).text.startswith("No conversations since ")
