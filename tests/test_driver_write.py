"""`concierge.driver_write`: a hot-path write straight through the driver stores what SQLAlchemy's
own execution of the same statement stores (JSON, times, enums, column defaults), in the session's
transaction, and gives back what RETURNING gives."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select

from concierge.driver_write import write
from concierge.outbox.kinds import OutboxKind, OutboxStatus
from concierge.records import OutboxItem
from concierge.tables import table_of

ITEMS = table_of(OutboxItem)
INSERT = insert(ITEMS).returning(ITEMS.c.id)
MOMENT = datetime(2026, 11, 26, 5, 30, 15, 123456, tzinfo=timezone.utc)


def values(key: str) -> dict:
    return {
        "key": key, "kind": OutboxKind.THREAD_POST, "platform": "local",
        "address": {"platform": "local", "channel": "staff", "thread": "7"},
        "payload": {"text": "héllo \u2603", "files": [{"sha256": "ab" * 32, "size": 3}]},
        "conversation_id": None, "status": OutboxStatus.PENDING, "lease_until": None, "attempts": 0,
        "next_attempt_at": MOMENT, "last_error": "", "created_at": MOMENT,
    }


def stored(session, item_id: int) -> dict:
    row = dict(session.execute(select(ITEMS).where(ITEMS.c.id == item_id)).mappings().one())
    del row["id"], row["key"]
    return row


async def test_a_driver_write_stores_what_sqlalchemy_stores(runtime):
    def both(session):
        ours = write(session, INSERT, values("driver"))
        theirs = session.execute(INSERT, values("sqlalchemy")).scalar_one()
        return ours, theirs, stored(session, ours), stored(session, theirs)

    ours, theirs, mine, reference = runtime.db.run_sync(both)
    assert isinstance(ours, int) and ours != theirs
    assert mine == reference
    assert mine["maybe_sent"] is False, "the column's default, filled in as SQLAlchemy would"
    assert mine["next_attempt_at"] == MOMENT and mine["payload"]["text"] == "héllo \u2603"


async def test_a_driver_write_is_part_of_the_session_transaction(runtime):
    class Undo(Exception):
        pass

    def written_then_failed(session):
        write(session, INSERT, values("rolled-back"))
        raise Undo

    with pytest.raises(Undo):
        runtime.db.run_sync(written_then_failed)
    assert runtime.db.run_sync(lambda session: session.execute(
        select(ITEMS.c.id).where(ITEMS.c.key == "rolled-back")).first()) is None


async def test_a_write_whose_column_default_is_computed_is_refused(runtime):
    """A default SQLAlchemy computes per row (a callable) is not filled in here: refused, not left out."""
    from sqlalchemy import Column, DateTime, Integer, MetaData, Table

    table = Table("computed", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", DateTime, default=lambda: MOMENT))
    with pytest.raises(ValueError, match="no value for 'at'"):
        runtime.db.run_sync(lambda session: write(session, insert(table), {"id": 1}))
