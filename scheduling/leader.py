"""One scheduler at a time: a PostgreSQL advisory lock held for the life of the process.

APScheduler's job stores must not be shared between schedulers; what is due lives in our own
tables, so any process may plan, but only one should. SQLite deployments are one process.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

LOCK_KEY = 0x636F6E63  # "conc"


class Leadership:
    """`try_lead()` is true for exactly one process per database; the lock goes with the connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None

    def try_lead(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        if self._connection is not None:
            return True
        connection = self.engine.connect()
        if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar():
            connection.commit()
            self._connection = connection
            return True
        connection.close()
        return False

    def release(self) -> None:
        if self._connection is not None:
            # The connection goes back to the pool, its session alive: unlock explicitly.
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
