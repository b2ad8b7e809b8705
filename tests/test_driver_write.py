"""`concierge.driver_write`: a hot-path write straight through the driver stores what SQLAlchemy's
own execution of the same statement stores (JSON, times, enums, column defaults), in the session's
transaction, and gives back what RETURNING gives."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update

from concierge.driver_write import write, write_many
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


MARK = update(ITEMS).where(ITEMS.c.id == bindparam("item_id"))


async def test_write_many_stores_what_sqlalchemy_executemany_stores(runtime):
    def both(session):
        ids = [write(session, INSERT, values(f"many-{n}")) for n in range(4)]
        rows = [{"item_id": item_id, "status": OutboxStatus.SENT, "sent_at": MOMENT, "lease_until": None,
                 "sent_message_id": f"m{item_id}"} for item_id in ids]
        write_many(session, MARK, rows[:2])
        session.connection().execute(MARK, rows[2:])
        return ids, [stored(session, item_id) for item_id in ids]

    ids, (mine_a, mine_b, theirs_a, theirs_b) = runtime.db.run_sync(both)
    assert mine_a["status"] == OutboxStatus.SENT and mine_a["sent_at"] == MOMENT
    for mine, theirs in ((mine_a, theirs_a), (mine_b, theirs_b)):
        assert {**mine, "sent_message_id": ""} == {**theirs, "sent_message_id": ""}
    assert (mine_a["sent_message_id"], mine_b["sent_message_id"]) == (f"m{ids[0]}", f"m{ids[1]}")


async def test_write_many_refuses_rows_of_different_names_and_returning(runtime):
    def mixed(session):
        write_many(session, MARK, [{"item_id": 1, "status": OutboxStatus.SENT},
                                   {"item_id": 2, "last_error": "x"}])

    with pytest.raises(ValueError, match="same parameter names"):
        runtime.db.run_sync(mixed)
    with pytest.raises(ValueError, match="RETURNING"):
        runtime.db.run_sync(lambda session: write_many(session, INSERT, [values("r1"), values("r2")]))
