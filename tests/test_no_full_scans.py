"""The recurring reads go through indexes: none reads every conversation, message, outbox item or
inbound event ever written, nor every delivery a member ever had. Those tables only grow (closed conversations, sent messages and
handled events stay), so a read over all of them runs longer every day, on the one database
thread that every relay also waits for.

SQLite's `EXPLAIN QUERY PLAN` of each statement the bot ran is read: "SCAN <table>" is a read
of the whole table (or of a whole index of it), "SEARCH" a lookup.
"""

from __future__ import annotations

import re
import shutil

import pytest
from sqlalchemy import event
from sqlmodel import Session

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.member_data import erase_member
from concierge.records import Member
from tests.conftest import make_settings, rows
from tests.contract.driver import tick
from tests.contract.local_driver import LocalDriver

GROWING = ("conversation", "message", "outboxitem", "inboxitem")
# Indexes that hold only the rows still in play: a scan of one of them is bounded by the live work.
BOUNDED = ("ix_inbox_kept",)


def full_scans(engine, statements: list[str]) -> list[str]:
    """The plan lines that read a growing table whole, with their statements."""
    found = []
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        for sql in set(statements):
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
                continue
            for *_, detail in driver.execute("EXPLAIN QUERY PLAN " + sql).fetchall():
                scanned = re.match(r"SCAN (\w+)", detail)
                if scanned and scanned.group(1) in GROWING and not any(index in detail for index in BOUNDED):
                    found.append(f"{detail}: {' '.join(sql.split())[:300]}")
    return found


async def test_the_tick_and_the_desk_read_only_what_is_in_play(tmp_path, sqlite_template, clock):
    path = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, path)
    settings = make_settings(f"sqlite:///{path}", auto_close_hours=1.0, retention_days=30)  # the hourly purge runs too
    platform = LocalPlatform()
    runtime = build_runtime(settings, {"local": platform}, clock=clock)
    desk = LocalDriver(runtime, platform)
    try:
        await desk.command("admin", "member add alice premium")
        await desk.command("admin", "member add carol premium")
        await desk.command("admin", "expert add bob nutrition")
        await desk.member_writes("alice", "nutrition: protein after a run?")
        await desk.member_writes("carol", "nutrition: how much water?")
        await desk.settle()
        alice, carol = desk.threads()

        statements: list[str] = []
        runtime.db.engine.dispose()  # the pool's connections are opened again, traced
        event.listen(runtime.db.engine, "connect",
                     lambda connection, _record: connection.set_trace_callback(statements.append))

        await desk.staff_writes("bob", alice, "20 to 30 g within the hour.")
        await desk.command("bob", "queue")
        await runtime.concierge.home("local", "bob")
        await desk.command("bob", "close", thread=alice)  # asks alice for a rating, once
        await tick(runtime, clock, 3 * 3600)  # carol's question is overdue: the escalations page
        await desk.staff_writes("bob", carol, "Two litres a day.")
        await tick(runtime, clock, 2 * 3600)  # carol's conversation went quiet: it is closed
        await desk.settle()
        [carol_id] = [member.id for member in rows(runtime, Member) if member.display_name == "carol"]
        await runtime.db.run(lambda session: erase_member(session, carol_id, actor="admin", policy_version="v1",
                                                          now=clock.now()))

        assert len(statements) > 20, "the trace saw the bot's statements"
        assert full_scans(runtime.db.engine, statements) == []
    finally:
        runtime.close()


@pytest.fixture
def traced(tmp_path, sqlite_template):
    """A fresh SQLite database's engine, and the list of every statement run on it."""
    from concierge.database import create_db_engine

    path = tmp_path / "concierge.db"
    shutil.copy(sqlite_template, path)
    engine = create_db_engine(f"sqlite:///{path}")
    statements: list[str] = []
    event.listen(engine, "connect", lambda connection, _record: connection.set_trace_callback(statements.append))
    yield engine, statements
    engine.dispose()


def planner_statistics(engine, stats: list[tuple[str, str | None, str]]) -> None:
    """Give SQLite's planner the statistics (`sqlite_stat1` rows) of a database grown large: on an
    empty one, any plan looks as good as another."""
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        driver.execute("ANALYZE")
        driver.execute("DELETE FROM sqlite_stat1")
        driver.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", stats)
        driver.execute("ANALYZE sqlite_schema")  # read them again


def plan_of(engine, sql: str) -> str:
    with engine.connect() as connection:
        return " ".join(row[-1] for row in connection.connection.driver_connection.execute(
            "EXPLAIN QUERY PLAN " + sql).fetchall())


async def test_the_frequency_cap_counts_a_members_last_day_only(traced, clock):
    """Planning a digest counts each member's deliveries of the last 24 hours. Through the delivery
    index (member, edition) it read every delivery the member ever had: a year of daily digests
    made it 0.2 s per 5,000 members, on the database thread relays wait for."""
    from concierge.digests.planner import _recent_counts

    engine, statements = traced
    with Session(engine) as session:
        assert _recent_counts(session, {1, 2, 3}, clock.now()) == {}
    [counting] = [sql for sql in statements if "count(*)" in sql]
    plan = plan_of(engine, counting)
    assert "ix_outbox_member_recent (member_id=? AND created_at>?)" in plan, plan


async def test_the_inbox_poll_reads_the_events_still_to_process_only(traced, clock):
    """The inbox worker asks every second for events whose processing is due. It must go through the
    partial index of those few (`ix_inbox_due`); through `ix_inbox_place` it read every event the
    platform ever sent."""
    from datetime import timedelta

    from concierge.inbox import claim_due

    engine, statements = traced
    for platforms in (["local"], ["local", "slack"]):  # one platform per process, or several
        statements.clear()
        with Session(engine) as session:
            assert claim_due(session, clock.now(), clock.now() + timedelta(minutes=1), platforms) == []
        [polling] = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
        plan = plan_of(engine, polling)
        assert "USING INDEX ix_inbox_due (platform=? AND status=?)" in plan, (platforms, plan)


async def test_the_hourly_purge_reads_only_what_is_new(traced, clock):
    """With a retention set, the purge runs every hour. It must read the conversations not purged
    yet (`ix_conversation_unpurged`) and the lines written since its last run (message ids after its
    mark); reading every idle conversation for a line still to erase walked every transcript ever
    purged (1,000,000 lines: 186 ms, each hour, on the database thread)."""
    from datetime import timedelta

    from concierge.transcripts import purge_older_than

    engine, statements = traced
    with Session(engine) as session:
        assert purge_older_than(session, clock.now() - timedelta(days=30), now=clock.now()) == 0
        session.commit()
    plans = {sql: plan_of(engine, sql) for sql in statements
             if sql.lstrip().upper().startswith(("SELECT", "UPDATE")) and ("message" in sql or "conversation" in sql)}
    [candidates] = [plan for sql, plan in plans.items() if sql.lstrip().startswith("SELECT conversation.id")]
    assert "SEARCH conversation USING INDEX ix_conversation_unpurged (opened_at<?)" in candidates, candidates
    for sql, plan in plans.items():
        assert not re.search(r"SCAN (message|conversation)\b", plan), (plan, sql)
        if "rowid>?" in plan:  # a walk along the primary key: only the lines after the mark
            assert re.search(r"WHERE message\.id > \d+", " ".join(sql.split())), (plan, sql)


async def test_the_failed_events_are_counted_from_the_kept_ones(traced):
    """`stats` and `concierge doctor` count and list the inbound events given up on. Those are among
    the few not done (`ix_inbox_kept`); asked by status alone, every event ever received was read."""
    from concierge.inbox import count_failed, failed_items

    engine, statements = traced
    with Session(engine) as session:
        assert count_failed(session) == 0
        assert failed_items(session) == []
    reads = [sql for sql in statements if "'failed'" in sql]
    assert len(reads) == 2, statements
    for sql in reads:
        plan = plan_of(engine, sql)
        assert "ix_inbox_kept (status=?)" in plan, (plan, sql)


async def test_stats_over_a_period_reads_the_conversations_opened_in_it(traced, clock):
    """`stats --since 7d` must read the week's conversations (`ix_conversation_opened`). Joined to the
    members, SQLite's planner started from them and read every conversation ever opened: 1.8 s
    with 1,000,000 of them, where the week's 9,600 now take 47 ms."""
    from datetime import timedelta

    from concierge.stats import collect

    engine, statements = traced
    # What ANALYZE gave for 1,000,000 conversations of 10,000 members.
    planner_statistics(engine, [
        ("conversation", "ix_conversation_opened", "1000000 1"),
        ("conversation", "ix_conversation_unpurged", "1000000 1"),
        ("conversation", "ix_conversation_status", "1000000 1000000"),
        ("conversation", "ix_conversation_staff_thread", "1000000 1000000 1000000"),
        ("conversation", "ix_conversation_member_status", "1000000 100 100"),
        ("member", None, "10000"), ("expert", None, "1"), ("tier", "sqlite_autoindex_tier_1", "1 1")])
    statements.clear()
    with Session(engine) as session:
        assert collect(session, clock.now() - timedelta(days=7)).conversations == 0
    [reading] = [sql for sql in statements if re.search(r"\bFROM conversation\b", sql)]
    plan = plan_of(engine, reading)
    assert "SEARCH conversation USING INDEX ix_conversation_opened (opened_at>?)" in plan, plan
    assert full_scans(engine, statements) == []


async def test_the_catch_up_plan_reads_the_events_received_within_its_window(traced, clock):
    """At start and at every reconnect, the catch-up's plan takes each place's newest recorded
    message. Over every event of the platform (`ix_inbox_place`, grouped by place) that took 3.1 s
    with 3,000,000 events in 510,000 places; now it reads the window's (`ix_inbox_received`)."""
    from concierge.catch_up import plan_catch_up

    engine, statements = traced
    planner_statistics(engine, [  # what ANALYZE gave for that inbox
        ("inboxitem", "ix_inbox_received", "3000000 3000000 1"),
        ("inboxitem", "sqlite_autoindex_inboxitem_1", "3000000 3000000 1"),
        ("conversation", "ix_conversation_status", "1000000 100"),
        ("conversation", "ix_conversation_member_status", "1000000 100 100")])
    statements.clear()
    with Session(engine) as session:
        assert plan_catch_up(session, "slack", clock.now(), 24).last_seen == {}
    [reading] = [sql for sql in statements if "FROM inboxitem" in sql]
    plan = plan_of(engine, reading)
    assert "ix_inbox_received (platform=? AND received_at>?)" in plan, plan
