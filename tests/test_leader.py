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


async def test_quitting_while_a_tick_runs_ends_it_quietly(ticker, monkeypatch, caplog):
    """Ctrl-C right after start, while the first tick runs: the tick stops between transactions and
    nothing is logged as a failed job (APScheduler logged the cancellation as an ERROR)."""
    import asyncio
    import logging

    started = asyncio.Event()

    async def slow_tick():
        started.set()
        await asyncio.sleep(30)  # waiting on the database, say
        return 0

    from concierge.clock import Clock

    monkeypatch.setattr(ticker, "tick", slow_tick)
    ticker.clock = Clock()  # APScheduler runs on real time: a frozen clock's first run would be "missed"
    before = asyncio.all_tasks()
    with caplog.at_level(logging.INFO):
        ticker.start()
        await asyncio.wait_for(started.wait(), 5)
        ticker.shutdown()  # APScheduler cancels the running job
        await asyncio.sleep(0.05)  # the job ends; APScheduler's done-callback runs
        assert all(task.done() for task in asyncio.all_tasks() - before), "the tick ended with the shutdown"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert any("stopped by the shutdown" in r.getMessage() for r in caplog.records)
