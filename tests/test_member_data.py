"""`concierge audit consent`, `concierge member export` and `concierge member erase`, end to end."""

from __future__ import annotations

import json

from concierge.records import ConsentEvent, Member, Message, PlatformIdentity
from tests.conftest import rows
from tests.support.cli import concierge


async def conversation_and_subscription(desk, clock, ticker=None):
    await desk.command("admin", "member add alice premium Alice Liddell")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("alice", "My knee hurts after running.")
    await desk.settle()
    await desk.staff_writes("bob", desk.threads()[0], "Rest it for a week.")
    await desk.command("admin", "digest create tips Tips")
    await desk.command("alice", "subscribe tips --cadence daily")
    await desk.settle()


async def test_export_then_erase(desk, runtime, clock, tmp_path, database_url):
    await conversation_and_subscription(desk, clock)
    env = {"CONCIERGE_DATABASE_URL": database_url}
    exported = concierge("member", "export", "1", cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["member"]["display_name"] == "Alice Liddell"
    assert [m["text"] for m in data["conversations"][0]["messages"]] == [
        "My knee hurts after running.", "Rest it for a week."]
    assert [(e["action"], e["how"]) for e in data["consent_ledger"]] == [("granted", "command")]
    assert data["identities"][0]["user_id"] == "alice"

    erased = concierge("member", "erase", "1", "--yes", cwd=tmp_path, env=env)
    assert erased.returncode == 0, erased.stderr
    [member] = rows(runtime, Member)
    assert member.display_name == "erased member 1" and not member.active
    assert {m.text for m in rows(runtime, Message)} == {"[erased]"}
    assert [i.user_id for i in rows(runtime, PlatformIdentity)] == ["bob"]  # the expert stays
    ledger = sorted(rows(runtime, ConsentEvent), key=lambda e: e.id)
    assert [(e.action, e.how) for e in ledger] == [("granted", "command"), ("revoked", "erase")]
    assert len(rows(runtime, Message)) == 2, "counts are kept"
    again = concierge("member", "export", "1", cwd=tmp_path, env=env)
    assert "Alice" not in again.stdout and "knee" not in again.stdout


async def test_audit_consent_exit_codes(desk, runtime, clock, tmp_path, database_url):
    from scheduling.ticker import DigestScheduler

    await conversation_and_subscription(desk, clock)
    await desk.command("admin", "digest add tips Warm up first.")
    await desk.command("admin", "digest publish tips")
    clock.advance(86400)
    await DigestScheduler(runtime.db, runtime.dispatcher, runtime.concierge.settings, clock).tick()
    await desk.settle()
    env = {"CONCIERGE_DATABASE_URL": database_url}
    clean = concierge("audit", "consent", cwd=tmp_path, env=env)
    assert clean.returncode == 0 and "backed by a consent" in clean.stdout, clean.stdout + clean.stderr

    def withdraw_in_the_past(session):  # history rewritten: the delivery no longer has cover
        from sqlalchemy import update

        session.execute(update(ConsentEvent).values(action="revoked"))

    runtime.db.run_sync(withdraw_in_the_past)
    dirty = concierge("audit", "consent", cwd=tmp_path, env=env)
    assert dirty.returncode == 1 and "member 1" in dirty.stdout and "without consent" in dirty.stdout


def test_erasing_someone_unknown_is_refused(tmp_path):
    env = {"CONCIERGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert concierge("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    result = concierge("member", "erase", "42", "--yes", cwd=tmp_path, env=env)
    assert result.returncode == 1 and "no member 42" in result.stderr
