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
        assert {"member", "conversation", "message", "outboxitem", "inboxitem", "auditevent"} <= tables
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


def test_sqlite_write_ahead_log_is_checkpointed_in_the_background(tmp_path):
    """Bot connections never checkpoint inside a commit; a background thread keeps the log short."""
    import shutil
    import sqlite3
    import time

    from sqlalchemy import text

    from concierge.database import Database

    path = tmp_path / "wal.db"
    db = Database(create_db_engine(f"sqlite:///{path}"), checkpoint_interval_s=0.1)
    try:
        db.run_sync(lambda session: session.execute(text("CREATE TABLE t (x TEXT)")))
        for _ in range(50):
            db.run_sync(lambda session: session.execute(text("INSERT INTO t VALUES (:x)"), {"x": "y" * 2000}))
        assert db.run_sync(lambda session: session.execute(text("PRAGMA wal_autocheckpoint")).scalar()) == 0
        time.sleep(0.5)
        # The main file alone (without its -wal) holds the rows only if a checkpoint ran.
        copy = tmp_path / "main-file-only.db"
        shutil.copy(path, copy)
        probe = sqlite3.connect(copy)
        try:
            assert probe.execute("SELECT count(*) FROM t").fetchone() == (50,)
        finally:
            probe.close()
    finally:
        db.close()


def test_migrations_go_down_and_up_again(database_url):
    from alembic import command

    from concierge.database import alembic_config

    config = alembic_config(database_url)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    finally:
        engine.dispose()
