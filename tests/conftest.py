"""Fixtures: a migrated database on SQLite and on a throw-away PostgreSQL, and a local runtime."""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock
from concierge.database import upgrade
from concierge.settings import Settings
from concierge.testing.postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]
START = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session, with a migrated template database."""
    server = PostgresServer().start()
    try:
        upgrade(server.create_database("concierge_template"))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A freshly migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "concierge.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}", template="concierge_template")


def make_settings(url: str, **overrides) -> Settings:
    values = dict(database_url=SecretStr(url), admins=["local:admin"], program_name="Peak Club",
                  staff_channel="concierge-staff", outbox_backoff_base_s=1.0, outbox_max_attempts=4)
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(autouse=True)
def _file_store_in_tmp(tmp_path, monkeypatch) -> None:
    """Files members and experts send are kept in the test's own folder, never in the checkout."""
    monkeypatch.setenv("CONCIERGE_FILES_DIR", str(tmp_path / "concierge-files"))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def platform() -> LocalPlatform:
    return LocalPlatform()


@pytest.fixture
def runtime(database_url, platform, clock):
    rt = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def ticker(runtime, clock):
    """The digest scheduler on `runtime`, ticked by hand (`tests.support.desk.tick`)."""
    from scheduling.ticker import DigestScheduler

    return DigestScheduler(runtime.db, runtime.dispatcher, runtime.concierge.settings, clock)


@pytest.fixture
def desk(runtime, platform):
    """The local driver: people writing, staff answering, commands, and what was delivered."""
    from tests.contract.local_driver import LocalDriver

    return LocalDriver(runtime, platform)


def rows(runtime, model, *where):
    """All records of `model` (optionally filtered), read straight from the database."""
    from sqlmodel import select

    order = list(model.__table__.primary_key.columns)  # PostgreSQL promises no order otherwise
    return runtime.db.run_sync(lambda session: list(session.exec(select(model).where(*where).order_by(*order)).all()))
