"""Statements straight through the database driver, for the few loops over millions of rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlmodel import Session


@contextmanager
def driver_cursor(session: Session) -> Iterator[Any]:
    """A cursor of the driver on the session's own connection: what it runs is in the session's transaction."""
    driver = session.connection().connection.driver_connection
    if driver is None:
        raise RuntimeError("the session's connection was closed")
    cursor = driver.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def executemany(session: Session, sql: str, rows: list[tuple]) -> None:
    """The driver's own executemany, inside the session's transaction."""
    with driver_cursor(session) as cursor:
        cursor.executemany(sql, rows)


@lru_cache(maxsize=4096)
def bind_time(moment: datetime, dialect: str) -> datetime | str:
    """A datetime as the driver takes it: PostgreSQL adapts it, SQLite stores UTC text (as the records do)."""
    if dialect == "postgresql":
        return moment
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
