"""The typed helpers over sqlmodel (`concierge.tables`) refuse what they cannot vouch for."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import Table, create_engine, func, insert, select, update
from sqlmodel import Session, SQLModel

from concierge.records import Member, Tier
from concierge.tables import rows_affected, saved_id, table_of
from concierge.wal_checkpointer import WalCheckpointer

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def test_table_of_is_the_table_behind_a_record_class():
    members = table_of(Member)
    assert isinstance(members, Table)
    assert members.name == "member"
    assert "display_name" in members.c


def test_table_of_refuses_a_model_without_a_table():
    class Draft(SQLModel):  # a plain model (no table=True): no table behind it
        title: str

    with pytest.raises(TypeError, match="not a sqlmodel table class"):
        table_of(Draft)


def test_saved_id_is_the_id_once_flushed_and_refuses_before():
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        tier = Tier(name="premium")
        with pytest.raises(ValueError, match="Tier has no id yet"):
            saved_id(tier)  # None would otherwise be written as a foreign key
        session.add(tier)
        session.flush()
        assert saved_id(tier) == tier.id == 1
        row = session.execute(select(table_of(Tier))).one()
        assert saved_id(row) == 1  # a read-only row of the table will do too


def test_rows_affected_counts_what_an_update_matched():
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    members = table_of(Member)
    with Session(engine) as session:
        session.execute(insert(table_of(Tier)), {"name": "premium", "specialties": ""})
        session.execute(insert(members), [
            {"display_name": name, "tier_id": 1, "name_source": "admin", "active": True, "blocked": False,
             "blocked_reason": "", "created_at": NOW} for name in ("ann", "ben", "cy")])
        result = session.execute(update(members).where(members.c.display_name != "ben"), {"active": False})
        assert rows_affected(result) == 2
        assert session.execute(select(func.count()).select_from(members).where(members.c.active)).scalar() == 1


def test_the_wal_checkpointer_needs_a_database_file():
    with pytest.raises(ValueError, match="needs a database file"):
        WalCheckpointer(create_engine("sqlite://"), interval_s=60)


def test_migrations_without_a_url_or_a_connection_say_so():
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "concierge:migrations")
    with pytest.raises(RuntimeError, match="neither a connection nor sqlalchemy.url"):
        command.upgrade(config, "head")
