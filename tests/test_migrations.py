"""The alembic migrations produce exactly the schema the records describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import concierge.records  # noqa: F401
from concierge.database import create_db_engine


def test_migrated_schema_matches_the_records(database_url):
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() is not None
            assert compare_metadata(context, SQLModel.metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert {"member", "conversation", "message", "outboxitem", "inboundevent", "auditevent"} <= tables
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
