"""Transcripts: export in jsonl, csv and html (parsed back), filters, and the retention purge."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import event

from concierge.clock import FrozenClock, utc_now
from concierge.member_data import ERASED
from concierge.records import AuditEvent, Conversation, Message, PurgeMark
from concierge.transcripts import RECHECK, export, parse_since, purge_older_than, transcript_rows
from tests.conftest import make_settings, rows
from tests.support.cli import concierge

SCRIPT = "<script>alert('knee')</script> & my knee hurts"
DAY = 86400


@pytest.fixture
def clock() -> FrozenClock:
    """Forty days ago, so the CLI's real `now` sees these conversations as old or recent as meant."""
    return FrozenClock(utc_now().replace(microsecond=0) - timedelta(days=40))


async def two_conversations(desk, clock):
    """Alice's (message, reply, note, close) now; Carol's 35 days later (5 days before real now)."""
    await desk.command("admin", "member add alice premium Alice Liddell")
    await desk.command("admin", "member add carol premium Carol")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("alice", SCRIPT)
    await desk.settle()
    thread = desk.threads()[0]
    await desk.staff_writes("bob", thread, "Rest it for a week.")
    await desk.staff_writes("bob", thread, "note: check her <b>allergies</b>")
    assert "closed" in await desk.command("bob", "close", thread=thread)
    await desk.settle()
    clock.advance(35 * DAY)
    await desk.member_writes("carol", "What about protein?")
    await desk.settle()
    await desk.staff_writes("bob", desk.threads()[1], "20 g after training.")
    await desk.settle()


def export_text(runtime, fmt, **filters) -> str:
    out = io.StringIO()
    runtime.db.run_sync(lambda session: export(session, out, fmt, **filters))
    return out.getvalue()


ALICE = [("in", "Alice Liddell", SCRIPT), ("out", "bob", "Rest it for a week."),
         ("internal", "bob", "check her <b>allergies</b>"), ("event", "concierge", "Closed by bob.")]
CAROL = [("in", "Carol", "What about protein?"), ("out", "bob", "20 g after training.")]


async def test_jsonl_parses_back_one_record_per_message(desk, runtime, clock):
    await two_conversations(desk, clock)
    records = [json.loads(line) for line in export_text(runtime, "jsonl").splitlines()]
    assert [(r["direction"], r["author"], r["text"]) for r in records] == ALICE + CAROL
    first = records[0]
    assert first["conversation_id"] == 1 and first["member_id"] == 1 and first["member_name"] == "Alice Liddell"
    assert first["tier"] == "premium" and first["status"] == "closed" and first["attachments"] == []
    assert first["created_at"].endswith("+00:00")
    assert records[-1]["conversation_id"] == 2 and records[-1]["status"] == "open"


async def test_csv_parses_back(desk, runtime, clock):
    await two_conversations(desk, clock)
    records = list(csv.DictReader(io.StringIO(export_text(runtime, "csv"))))
    assert [(r["direction"], r["author"], r["text"]) for r in records] == ALICE + CAROL
    assert records[0]["member_name"] == "Alice Liddell" and records[0]["conversation_id"] == "1"
    assert json.loads(records[0]["attachments"]) == []


class _Page(HTMLParser):
    """Sections, the text of each message and the label of internal notes."""

    def __init__(self) -> None:
        super().__init__()
        self.sections = 0
        self.messages: list[tuple[str, str]] = []  # (classes, text)
        self.tags: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        classes = dict(attrs).get("class", "")
        if tag == "section":
            self.sections += 1
        if tag == "div" and classes.startswith("message"):
            self.messages.append((classes, ""))
        if tag == "div" and classes in ("text", "meta") and self.messages:
            self._in = classes

    def handle_endtag(self, tag):
        if tag == "div":
            self._in = None

    def handle_data(self, data):
        if self._in and self.messages:
            classes, text = self.messages[-1]
            self.messages[-1] = (classes, text + data)


async def test_html_escapes_every_text_and_marks_notes(desk, runtime, clock):
    await two_conversations(desk, clock)
    page = export_text(runtime, "html")
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;knee&#x27;)&lt;/script&gt;" in page
    assert "<b>" not in page
    parser = _Page()
    parser.feed(page)
    assert parser.sections == 2
    assert "script" not in parser.tags and "b" not in parser.tags
    assert len(parser.messages) == 6
    assert SCRIPT in parser.messages[0][1]  # escaped on the page, the same text once parsed
    internal = [text for classes, text in parser.messages if "internal" in classes.split()]
    assert len(internal) == 1 and "INTERNAL NOTE" in internal[0] and "check her <b>allergies</b>" in internal[0]


async def test_member_and_since_filters(desk, runtime, clock):
    await two_conversations(desk, clock)

    def exported(**filters):
        return runtime.db.run_sync(lambda session: [(r["conversation_id"], r["text"])
                                                    for r in transcript_rows(session, **filters)])

    assert {c for c, _ in exported(member_id=1)} == {1}
    assert [t for _, t in exported(member_id=2)] == ["What about protein?", "20 g after training."]
    assert exported(member_id=99) == []
    since = clock.now() - timedelta(days=10)
    assert {c for c, _ in exported(since=since)} == {2}
    assert {c for c, _ in exported(since=since, member_id=1)} == set()
    # A note counts as activity, though it does not touch last_activity_at: the whole conversation comes.
    await desk.staff_writes("bob", desk.threads()[0], "note: follow up")
    assert [t for _, t in exported(since=since, member_id=1)] == [t for *_, t in ALICE] + ["follow up"]


async def test_batches_keep_the_order(desk, runtime, clock):
    await two_conversations(desk, clock)
    every = runtime.db.run_sync(lambda session: list(transcript_rows(session, None, None)))
    for size in (1, 2, 3, 4):
        assert runtime.db.run_sync(
            lambda session, size=size: list(transcript_rows(session, None, None, batch_size=size))) == every


def test_since_accepts_dates_and_durations():
    now = utc_now()
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01", now).isoformat() == "2026-11-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="neither a date"):
        parse_since("last week", now)


async def test_purge_touches_only_what_is_older(desk, runtime, clock):
    await two_conversations(desk, clock)
    before = rows(runtime, Message)
    cutoff = clock.now() - timedelta(days=30)
    assert runtime.db.run_sync(lambda session: purge_older_than(session, cutoff, batch_size=1)) == 4
    after = rows(runtime, Message)
    assert [(m.id, m.conversation_id, m.direction, m.author, m.created_at) for m in after] == [
        (m.id, m.conversation_id, m.direction, m.author, m.created_at) for m in before], "rows, who and when stay"
    assert [m.text for m in after if m.conversation_id == 1] == [ERASED] * 4
    assert [m.text for m in after if m.conversation_id == 2] == ["What about protein?", "20 g after training."]
    assert runtime.db.run_sync(lambda session: purge_older_than(session, cutoff)) == 0, "nothing new to purge"
    dump = export_text(runtime, "jsonl")
    assert "knee" not in dump and "allergies" not in dump and "protein" in dump


async def test_purge_keeps_a_conversation_active_on_either_side_of_the_cutoff(desk, runtime, clock):
    await two_conversations(desk, clock)
    exactly = rows(runtime, Conversation, Conversation.id == 2)[0].last_activity_at
    assert runtime.db.run_sync(lambda session: purge_older_than(session, exactly)) == 4  # only Alice's
    await desk.staff_writes("bob", desk.threads()[1], "note: recent")
    later = clock.now() + timedelta(seconds=1)
    assert runtime.db.run_sync(lambda session: purge_older_than(session, later)) == 3


def purge(runtime, cutoff, now, **options) -> int:
    return runtime.db.run_sync(lambda session: purge_older_than(session, cutoff, now=now, **options))


async def test_a_purged_conversation_that_gets_a_new_line_is_purged_again_once_idle(desk, runtime, clock):
    await two_conversations(desk, clock)
    assert purge(runtime, clock.now() - timedelta(days=30), clock.now()) == 4  # Alice's
    assert [c.purged_at for c in rows(runtime, Conversation)] == [clock.now(), None], "only Alice's is marked"
    await desk.staff_writes("bob", desk.threads()[0], "note: she wrote back by mail")
    assert purge(runtime, clock.now() - timedelta(days=30), clock.now()) == 0, "active again: kept"
    assert [c.purged_at for c in rows(runtime, Conversation)] == [None, None], "Alice's got a new line: unmarked"
    clock.advance(31 * DAY)
    assert purge(runtime, clock.now() - timedelta(days=30), clock.now()) == 3  # the note, and Carol's two
    assert {m.text for m in rows(runtime, Message)} == {ERASED}


async def test_a_second_purge_with_nothing_new_touches_no_transcript(desk, runtime, clock):
    await two_conversations(desk, clock)
    assert purge(runtime, clock.now() - timedelta(days=30), clock.now()) == 4
    statements: list[str] = []
    listen = lambda _conn, _cursor, sql, *_: statements.append(" ".join(sql.split()))  # noqa: E731
    event.listen(runtime.db.engine, "before_cursor_execute", listen)
    try:
        assert purge(runtime, clock.now() - timedelta(days=30), clock.now() + timedelta(hours=2)) == 0
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", listen)
    assert any(sql.startswith("SELECT conversation.id") for sql in statements), "the trace saw the purge"
    assert not [sql for sql in statements if sql.startswith("UPDATE message")], "purged texts are not purged again"


async def test_the_mark_stops_before_lines_younger_than_an_hour(desk, runtime, clock):
    await two_conversations(desk, clock)
    carol_first = min(m.id for m in rows(runtime, Message) if m.author == "Carol")
    purge(runtime, clock.now() - timedelta(days=30), clock.now())  # Carol's lines are young: read again next time
    assert rows(runtime, PurgeMark)[0].message_id == carol_first - 1
    purge(runtime, clock.now() - timedelta(days=30), clock.now() + RECHECK + timedelta(seconds=1))
    assert rows(runtime, PurgeMark)[0].message_id == max(m.id for m in rows(runtime, Message))


async def test_the_tick_purges_when_retention_is_set(desk, runtime, clock, database_url):
    from scheduling.ticker import DigestScheduler

    await two_conversations(desk, clock)
    off = DigestScheduler(runtime.db, runtime.dispatcher, runtime.concierge.settings, clock)
    await off.tick()
    off.shutdown()
    assert ERASED not in {m.text for m in rows(runtime, Message)}
    on = DigestScheduler(runtime.db, runtime.dispatcher, make_settings(database_url, retention_days=30), clock)
    await on.tick()
    on.shutdown()
    assert [m.text == ERASED for m in rows(runtime, Message)] == [True] * 4 + [False] * 2
    [entry] = rows(runtime, AuditEvent, AuditEvent.action == "transcripts.purge")
    assert entry.actor == "retention" and entry.detail["messages"] == 4


async def test_cli_export_and_purge(desk, runtime, clock, tmp_path, database_url):
    await two_conversations(desk, clock)
    env = {"CONCIERGE_DATABASE_URL": database_url}

    jsonl = concierge("transcripts", "export", cwd=tmp_path, env=env)
    assert jsonl.returncode == 0, jsonl.stderr
    assert [json.loads(line)["text"] for line in jsonl.stdout.splitlines()] == [t for *_, t in ALICE + CAROL]
    assert "6 messages exported" in jsonl.stderr

    recent = concierge("transcripts", "export", "--since", "10d", "--format", "csv", cwd=tmp_path, env=env)
    assert recent.returncode == 0, recent.stderr
    assert {r["conversation_id"] for r in csv.DictReader(io.StringIO(recent.stdout))} == {"2"}

    since_date = (clock.now() - timedelta(days=1)).date().isoformat()
    alice = concierge("transcripts", "export", "--member", "1", "--since", since_date, cwd=tmp_path, env=env)
    assert alice.returncode == 0 and alice.stdout == "", alice.stderr

    page = tmp_path / "out.html"
    html_run = concierge("transcripts", "export", "--member", "1", "--format", "html", "--output", str(page),
                         cwd=tmp_path, env=env)
    assert html_run.returncode == 0 and html_run.stdout == "", html_run.stderr
    assert "&lt;script&gt;" in page.read_text() and "protein" not in page.read_text()

    wrong = concierge("transcripts", "export", "--format", "pdf", cwd=tmp_path, env=env)
    assert wrong.returncode == 2 and "jsonl, csv, html" in wrong.stderr
    bad_since = concierge("transcripts", "export", "--since", "yesterday", cwd=tmp_path, env=env)
    assert bad_since.returncode == 2 and "neither a date" in bad_since.stderr

    unset = concierge("transcripts", "purge", cwd=tmp_path, env=env)
    assert unset.returncode == 1 and "CONCIERGE_RETENTION_DAYS" in unset.stderr
    assert ERASED not in {m.text for m in rows(runtime, Message)}

    purged = concierge("transcripts", "purge", cwd=tmp_path, env={**env, "CONCIERGE_RETENTION_DAYS": "30"})
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.startswith("4 messages purged")
    assert [m.text == ERASED for m in rows(runtime, Message)] == [True] * 4 + [False] * 2

    override = concierge("transcripts", "purge", "--days", "1", cwd=tmp_path, env={**env, "CONCIERGE_RETENTION_DAYS": "30"})
    assert override.returncode == 0 and override.stdout.startswith("2 messages purged"), override.stderr
    assert {m.text for m in rows(runtime, Message)} == {ERASED}
    assert len(rows(runtime, Message)) == 6


async def test_the_purge_finds_its_candidates_through_the_index_of_the_unpurged(runtime, clock):
    """Both backends read the candidates through `ix_conversation_unpurged`, not every conversation
    (SQLite's whole run is checked in `tests/test_no_full_scans.py`)."""
    seen: list[tuple[str, object]] = []

    def spy(_conn, _cursor, sql, parameters, *_) -> None:  # noqa: ANN001
        if sql.lstrip().startswith("SELECT conversation.id") and "purged_at IS NULL" in sql:
            seen.append((sql, parameters))

    event.listen(runtime.db.engine, "before_cursor_execute", spy)
    try:
        assert purge(runtime, clock.now() - timedelta(days=30), clock.now()) == 0
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", spy)
    [(sql, parameters)] = seen

    def plan(session) -> str:
        cursor = session.connection().connection.driver_connection.cursor()
        try:
            if runtime.db.is_sqlite:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, parameters)
                return "\n".join(row[-1] for row in cursor.fetchall())
            cursor.execute("SET LOCAL enable_seqscan = off")  # the tables are tiny: judge the indexes alone
            cursor.execute("EXPLAIN " + sql, parameters)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.close()

    found = runtime.db.run_sync(plan)
    assert "ix_conversation_unpurged" in found, found
