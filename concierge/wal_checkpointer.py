"""SQLite's write-ahead log, kept short and synced from a thread of its own (see `WalCheckpointer`)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

RESTART_FRAMES = 16384  # 64 MiB of 4 KiB pages: a write-ahead log longer than this is started again
FLUSH_S = 0.1  # how often the log's new pages are synced to disk between checkpoints
_SYNC_DATA = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


class WalCheckpointer:
    """Moves SQLite's write-ahead log into the database file from a thread of its own.

    SQLite's automatic checkpoint runs inside the commit that crosses 1000 pages, and that
    commit then takes milliseconds: it was the whole 99th percentile of a relay. Here the bot's
    connections never checkpoint; this thread does, with PASSIVE checkpoints that never block
    readers or the writer.

    Between checkpoints it syncs the log every `flush_s`. With `synchronous=NORMAL` nothing else
    syncs it until the checkpoint, which then writes a whole second of it at once (80 MB at
    3,000 relays a second); while that ran, the writer's own writes to the log waited 4 to 26 ms
    (ext4 on this machine's virtual disk), and those commits were the slowest relays. Synced every
    tenth of a second, each sync is small and the writer no longer waits. A commit is then also
    on disk within about `flush_s`, though the bot promises no more than `synchronous` says.

    Under sustained writes, checkpoints alone let the log grow without end: SQLite starts it again
    from the top only when a write begins after a checkpoint has copied every page, and a
    checkpoint taking milliseconds never finishes before the next commit (the relay benchmark grew
    it to 256 MiB in seven seconds). So when the log is longer than `restart_frames` after a
    background checkpoint, `finish` has the writer's own thread copy the few pages written
    meanwhile (a few milliseconds); its next write then starts the log from the top.
    """

    def __init__(self, engine: Engine, interval_s: float, *, restart_frames: int = RESTART_FRAMES,
                 flush_s: float = FLUSH_S, finish: Callable[[], object] | None = None) -> None:
        if not engine.url.database:
            raise ValueError("a WAL checkpointer needs a database file")
        self.path: str = engine.url.database
        self.interval_s = interval_s
        self.restart_frames = restart_frames
        self.flush_s = flush_s
        self.finish = finish
        self._stop = threading.Event()

        @event.listens_for(engine, "connect")
        def _no_autocheckpoint(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

        self._thread = threading.Thread(target=self._run, name="concierge-wal-checkpoint", daemon=True)
        self._thread.start()

    def _checkpoint(self, mode: str) -> int:
        """Checkpoint; returns how many pages long the log is (0 when SQLite could not say)."""
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            _busy, frames, _copied = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        finally:
            connection.close()
        return max(frames, 0)

    def _flush_log(self) -> None:
        """Sync what was written to the log so far (nothing when there is no log yet)."""
        try:
            descriptor = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            _SYNC_DATA(descriptor)
        finally:
            os.close(descriptor)

    def _run(self) -> None:
        next_checkpoint = time.monotonic() + self.interval_s
        while not self._stop.wait(min(self.flush_s, self.interval_s)):
            try:
                if time.monotonic() < next_checkpoint:
                    self._flush_log()
                    continue
                next_checkpoint = time.monotonic() + self.interval_s
                if self._checkpoint("PASSIVE") > self.restart_frames and self.finish is not None:
                    self.finish()
            except (sqlite3.Error, OSError, RuntimeError):  # busy or gone, or the database closing: next round
                pass
            except Exception:  # a bug must not end the checkpoints (the log would grow without end)
                log.exception("write-ahead log checkpoint failed; trying again next round")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
