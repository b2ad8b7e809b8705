"""One scheduler at a time on PostgreSQL; a released lead can be taken by the next one."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine

from scheduling.leader import Leadership


def test_one_leader_and_a_release_frees_the_lead_even_with_pooled_connections(postgres):
    engine = create_engine(postgres.create_database(f"lead_{uuid.uuid4().hex[:8]}", template="concierge_template"))
    try:
        first, second = Leadership(engine), Leadership(engine)
        assert first.try_lead() and first.try_lead(), "the leader stays the leader"
        assert not second.try_lead(), "one leader at a time"
        first.release()
        # Both leaders' connections are back in the pool, their database sessions still open:
        # keep them busy, so the next try gets a new session.
        with engine.connect() as pooled, engine.connect() as also_pooled:
            assert engine.pool.checkedout() == 2 and pooled is not also_pooled
            assert second.try_lead(), "the released lock must not stay with a pooled session"
            assert not first.try_lead()
        second.release()
    finally:
        engine.dispose()


def test_sqlite_is_one_process_and_always_leads(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert Leadership(engine).try_lead() and Leadership(engine).try_lead()
