"""Engines, sessions run off the event loop, and schema migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from concierge.driver_sql import driver_cursor
from concierge.group_commit import GroupCommitter
from concierge.wal_checkpointer import WalCheckpointer

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (or none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, *, synchronous: str = "normal") -> Engine:
    """An engine for `url`: SQLite gets WAL, a busy timeout and foreign keys.

    SQLite's `synchronous` (CONCIERGE_SQLITE_SYNCHRONOUS): NORMAL syncs the write-ahead log only at
    checkpoints: a commit survives a crash or kill of the bot, but a power loss may undo the last
    commits (the catch-up then reads those messages back from the platforms). FULL syncs at every
    commit, so an acknowledged event survives a power loss too, at about a third of the throughput.
    """
    url = normalise_url(url)
    if synchronous not in ("full", "normal"):
        raise ValueError(f"synchronous must be full or normal, not {synchronous!r}")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: big fan-outs touch many index pages
            cursor.close()

        return engine
    return create_engine(url, pool_size=8, max_overflow=4, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "concierge:migrations")
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` to `revision` with alembic."""
    command.upgrade(alembic_config(url), revision)


MIGRATION_LOCK = 7_262_019  # PostgreSQL advisory lock: processes starting together migrate once


def ensure_schema(url: str) -> None:
    """Migrate the database to the newest schema before the bot starts (`concierge run` on every platform).

    On PostgreSQL the migration runs under an advisory lock, so several processes starting at
    once wait for one another instead of racing; the others then find nothing to do.
    """
    url = normalise_url(url)
    if not url.startswith("postgresql"):
        upgrade(url)
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                upgrade(url)
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    finally:
        engine.dispose()


def _take_snapshot(session: Session) -> None:
    """Start a read transaction on `session`'s SQLite connection and take its snapshot now: Python's
    sqlite3 begins transactions for writes only, so each select would otherwise see the database
    as of its own start."""
    with driver_cursor(session) as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()  # the first read fixes the snapshot


class Database:
    """Runs units of work in worker threads so the event loop never waits on the database.

    SQLite gets a single writer thread (SQLite serialises writers anyway, and one thread avoids
    lock contention) and a background checkpointer; PostgreSQL gets a small pool.
    """

    def __init__(self, engine: Engine, checkpoint_interval_s: float = 1.0) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 4, thread_name_prefix="concierge-db"
        )
        self._group = GroupCommitter(self._executor, lambda: Session(self.engine, expire_on_commit=False),
                                     self.run_sync)
        self._checkpointer: WalCheckpointer | None = None
        # Long reads (`read`) go beside the writer on SQLite: a file database in WAL mode lets a reader
        # run while the writer writes. In memory, each connection would see a database of its own.
        self._reader = self._executor
        if self.is_sqlite and engine.url.database not in (None, "", ":memory:"):
            self._checkpointer = WalCheckpointer(engine, checkpoint_interval_s, finish=self._finish_checkpoint)
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="concierge-db-read")

    @classmethod
    def from_url(cls, url: str, *, synchronous: str = "normal") -> Database:
        return cls(create_db_engine(url, synchronous=synchronous))

    def run_sync(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction, in the calling thread; commit if it returns."""
        with Session(self.engine, expire_on_commit=False) as session:
            result = work(session)
            session.commit()
            return result

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction on a database thread."""
        return await self.submit(work)

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run `work`, which only reads, as `run` would have, but without holding up the writes queued
        after it: for the long reads of the whole history (the catch-up's plan reads every inbound
        event of a platform). Nothing it does is committed.

        On a SQLite file the read's snapshot is taken on the writer's thread, in its place in the
        queue (it sees every write queued before it and none queued after, as `run` would), and
        `work` then runs on a thread of its own beside the writer: in WAL mode a reader keeps its
        snapshot while the writer commits, and SQLite reads with the interpreter's lock released.
        Elsewhere it runs as `run` does, without the commit (PostgreSQL's pool has several connections)."""
        loop = asyncio.get_running_loop()
        session = Session(self.engine)
        try:
            if self._reader is not self._executor:
                await loop.run_in_executor(self._executor, _take_snapshot, session)
            return await loop.run_in_executor(self._reader, work, session)
        finally:
            await loop.run_in_executor(self._reader, session.close)  # rolls back: the snapshot ends

    def submit(self, work: Callable[[Session], T], *, grouped: bool = False) -> asyncio.Future[T]:
        """Queue `work` now, ahead of whatever is queued after this call, and return its future: for a
        caller that goes on meanwhile (`run` and `run_grouped` wait at once). `grouped`: as `run_grouped`."""
        if grouped:
            return self._group.submit(work)
        return asyncio.get_running_loop().run_in_executor(self._executor, self.run_sync, work)

    async def run_grouped(self, work: Callable[[Session], T]) -> T:
        """Like `run`, but `work` may share its transaction and its commit with the units queued at the
        same moment (the hot path under load; see `concierge.group_commit` for what `work` must allow)."""
        return await self._group.run(work)

    def _finish_checkpoint(self) -> None:
        """Queue, behind the writes queued now, a checkpoint of what was written while the background
        one ran (see `WalCheckpointer`): on the writer's thread, so no write comes in meanwhile."""
        self._executor.submit(self._checkpoint_here)

    def _checkpoint_here(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
