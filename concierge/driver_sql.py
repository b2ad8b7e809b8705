"""Statements straight through the database driver, for the few loops over millions of rows."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from sqlmodel import Session


def executemany(session: Session, sql: str, rows: list[tuple]) -> None:
    """The driver's own executemany, inside the session's transaction."""
    driver = session.connection().connection.driver_connection
    if driver is None:
        raise RuntimeError("the session's connection was closed")
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


@lru_cache(maxsize=4096)
def bind_time(moment: datetime, dialect: str) -> datetime | str:
    """A datetime as the driver takes it: PostgreSQL adapts it, SQLite stores UTC text (as the records do)."""
    if dialect == "postgresql":
        return moment
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
