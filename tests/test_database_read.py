"""`Database.read`: the long reads of the whole history, beside the writer's thread on SQLite."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone

from sqlalchemy import text

from concierge.database import Database

COUNT = "SELECT count(*) FROM sendbudget"
ADD = "INSERT INTO sendbudget (platform, next_free) VALUES (:platform, :at)"
AT = datetime(2026, 11, 26, tzinfo=timezone.utc).isoformat()


async def test_a_read_sees_what_was_committed_and_commits_nothing(database_url):
    db = Database.from_url(database_url)
    try:
        await db.run(lambda session: session.execute(text(ADD), {"platform": "slack", "at": AT}))
        assert await db.read(lambda session: session.execute(text(COUNT)).scalar()) == 1
        await db.read(lambda session: session.execute(text(ADD), {"platform": "discord", "at": AT}))
        assert await db.read(lambda session: session.execute(text(COUNT)).scalar()) == 1, "a read is never committed"
    finally:
        db.close()


async def test_on_sqlite_a_long_read_does_not_wait_behind_the_writer(tmp_path, sqlite_template):
    """The catch-up's plan reads every inbound event of a platform (0.14 to 0.26 s with a million):
    queued on the writer's thread, every relay behind it waited that long."""
    import shutil

    path = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, path)
    db = Database.from_url(f"sqlite:///{path}")
    started, release = threading.Event(), threading.Event()

    def writing(_session) -> None:  # noqa: ANN001  a unit of work still running on the writer's thread
        started.set()
        release.wait(10)

    busy = asyncio.ensure_future(db.run(writing))
    try:
        assert await asyncio.to_thread(started.wait, 5)
        count = await asyncio.wait_for(db.read(lambda session: session.execute(text(COUNT)).scalar()), 3)
        assert count == 0
        assert not busy.done(), "the read ran while the writer was busy"
    finally:
        release.set()
        await busy
        db.close()


async def test_the_catch_up_plan_is_read_beside_the_writer(tmp_path, sqlite_template, clock):
    import shutil

    from adapters.local.platform import LocalPlatform
    from concierge.bootstrap import build_runtime
    from tests.conftest import make_settings

    path = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, path)
    runtime = build_runtime(make_settings(f"sqlite:///{path}"), {"local": LocalPlatform()}, clock=clock)
    started, release = threading.Event(), threading.Event()

    def writing(_session) -> None:  # noqa: ANN001
        started.set()
        release.wait(10)

    busy = asyncio.ensure_future(runtime.db.run(writing))
    try:
        assert await asyncio.to_thread(started.wait, 5)
        plan = await asyncio.wait_for(runtime.concierge.catch_up_plan("local"), 3)
        assert plan.platform == "local" and plan.dm_channels == () and not busy.done()
    finally:
        release.set()
        await busy
        runtime.close()
