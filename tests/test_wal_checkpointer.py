"""SQLite's write-ahead log: synced between checkpoints, and started again from the top under writes that never pause."""

from __future__ import annotations

import asyncio
import os
import struct
import time

from sqlalchemy import text

import concierge.wal_checkpointer as wal_checkpointer
from concierge.database import Database, create_db_engine

ROW = "y" * 3000  # about one page a row


def log_restarts(path) -> int:
    """How many times the write-ahead log was started again: its header's checkpoint sequence number."""
    with open(f"{path}-wal", "rb") as log:
        header = log.read(16)
    return struct.unpack(">I", header[12:16])[0] if len(header) == 16 else 0


async def test_the_log_stays_short_while_writes_never_pause(tmp_path):
    """A background checkpoint never copies the pages written while it ran, so on its own the log
    only grows; the writer's thread copying those few pages lets the next write start it again."""
    path = tmp_path / "busy.db"
    db = Database(create_db_engine(f"sqlite:///{path}"), checkpoint_interval_s=0.02)
    assert db._checkpointer is not None
    db._checkpointer.restart_frames = 64
    try:
        await db.run(lambda session: session.execute(text("CREATE TABLE t (x TEXT)")))
        rows, longest, restarts = 0, 0, 0
        ends = time.monotonic() + 1.5
        while time.monotonic() < ends:
            await asyncio.gather(*(db.run(lambda session: session.execute(text("INSERT INTO t VALUES (:x)"),
                                                                          {"x": ROW}))
                                   for _ in range(8)))
            rows += 8
            longest = max(longest, os.stat(f"{path}-wal").st_size)
            restarts = max(restarts, log_restarts(path))
        written = rows * 4096
        assert written > 8 * 2**20, f"the test wrote only {written} bytes: too little to tell"
        # Without the restart the header's count stays 0 and the log holds every page written.
        assert restarts >= 3
        assert longest < written / 2, (longest, written)
        count = await db.run(lambda session: session.execute(text("SELECT count(*) FROM t")).scalar())
        assert count == rows
    finally:
        db.close()


async def test_a_short_log_is_left_to_the_background(tmp_path, monkeypatch):
    """Below `restart_frames` the writer's thread is not asked for anything."""
    path = tmp_path / "quiet.db"
    db = Database(create_db_engine(f"sqlite:///{path}"), checkpoint_interval_s=0.02)
    asked = []
    monkeypatch.setattr(db, "_checkpoint_here", lambda: asked.append(1))
    try:
        await db.run(lambda session: session.execute(text("CREATE TABLE t (x TEXT)")))
        for _ in range(20):
            await db.run(lambda session: session.execute(text("INSERT INTO t VALUES (:x)"), {"x": ROW}))
        await asyncio.sleep(0.2)
        assert asked == []
    finally:
        db.close()


async def test_the_log_is_synced_between_checkpoints(tmp_path, monkeypatch):
    """With `synchronous=NORMAL` only a checkpoint syncs the log; a whole second of it synced at once
    made the writer wait. The checkpointer syncs the log's file every `flush_s` in between."""
    path = tmp_path / "synced.db"
    synced: list[str] = []
    real = wal_checkpointer._SYNC_DATA

    def sync_data(descriptor: int) -> None:
        synced.append(os.path.realpath(f"/proc/self/fd/{descriptor}"))
        real(descriptor)

    monkeypatch.setattr(wal_checkpointer, "_SYNC_DATA", sync_data)
    db = Database(create_db_engine(f"sqlite:///{path}"), checkpoint_interval_s=60)  # no checkpoint in this test
    try:
        await db.run(lambda session: session.execute(text("CREATE TABLE t (x TEXT)")))
        ends = time.monotonic() + 0.8
        while time.monotonic() < ends:
            await db.run(lambda session: session.execute(text("INSERT INTO t VALUES (:x)"), {"x": ROW}))
            await asyncio.sleep(0.01)
        assert synced.count(os.path.realpath(f"{path}-wal")) >= 3, synced
    finally:
        db.close()


async def test_an_unexpected_error_does_not_end_the_checkpoints(tmp_path, monkeypatch, caplog):
    """The thread logs a bug and goes on: stopped, it would leave the log to grow without end."""
    path = tmp_path / "bug.db"
    calls: list[str] = []
    real = wal_checkpointer.WalCheckpointer._checkpoint

    def checkpoint(self, mode: str) -> int:
        calls.append(mode)
        if len(calls) == 1:
            raise ValueError("a bug")
        return real(self, mode)

    monkeypatch.setattr(wal_checkpointer.WalCheckpointer, "_checkpoint", checkpoint)
    db = Database(create_db_engine(f"sqlite:///{path}"), checkpoint_interval_s=0.05)
    try:
        await db.run(lambda session: session.execute(text("CREATE TABLE t (x TEXT)")))
        await asyncio.sleep(0.5)
        assert len(calls) >= 3
        assert "write-ahead log checkpoint failed" in caplog.text
    finally:
        db.close()
