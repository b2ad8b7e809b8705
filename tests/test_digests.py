"""Digests: the catalogue, subscriptions backed by the consent ledger, local-time delivery."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from adapters.local.platform import LocalPlatform
from concierge.digests.audit import consent_violations
from concierge.inbound import ButtonPressed
from concierge.outbox.outcome import Cancelled
from concierge.records import ConsentEvent, OutboxItem, Subscription
from tests.conftest import rows
from tests.support.desk import an_edition_due_for_alice, catalogue, digest_dms, tick


async def test_subscriber_gets_each_edition_at_their_hour_with_unsubscribe(desk, platform, runtime, clock, ticker):
    await catalogue(desk)
    answer = await desk.command("alice", "subscribe nutrition-tips --cadence daily --hour 10")
    assert "every day at 10:00 UTC" in answer and "2026-11-25 10:00" in answer
    await desk.command("bob", "digest add nutrition-tips Hydrate: 500 ml two hours before.")
    assert "published" in await desk.command("admin", "digest publish nutrition-tips")
    await tick(ticker, desk)
    assert digest_dms(platform, "alice") == [], "not before her hour"
    clock.advance(3600)
    await tick(ticker, desk)
    [message] = digest_dms(platform, "alice")
    assert "Hydrate: 500 ml" in message and "/concierge unsubscribe nutrition-tips" in message
    sent = next(s for s in platform.sent if s.message.text == message)
    assert [(b.label, b.action, b.value) for b in sent.message.card.buttons] == [
        ("Unsubscribe", "unsubscribe", "nutrition-tips")]
    clock.advance(86400)
    await tick(ticker, desk)
    assert len(digest_dms(platform, "alice")) == 1, "an edition is delivered once"
    assert consent_violations_of(runtime) == []


def consent_violations_of(runtime):
    return runtime.db.run_sync(consent_violations)


async def test_unsubscribe_button_takes_effect_before_the_next_send(desk, platform, runtime, clock, ticker):
    await an_edition_due_for_alice(desk, clock, tip="tip one")
    await ticker.tick()  # queued, not yet sent
    [queued] = rows(runtime, OutboxItem, OutboxItem.edition_id.is_not(None))
    assert queued.status == "pending"
    reply = await runtime.concierge.handle(
        ButtonPressed("press-1", LocalPlatform.dm_address("alice"), "unsubscribe", "nutrition-tips"))
    assert "Unsubscribed" in reply.text
    await desk.settle()
    assert digest_dms(platform, "alice") == []
    [cancelled] = rows(runtime, OutboxItem, OutboxItem.edition_id.is_not(None))
    assert cancelled.status == "cancelled"
    ledger = [(e.action, e.how) for e in rows(runtime, ConsentEvent)]
    assert ledger == [("granted", "command"), ("revoked", "button")]
    await desk.command("bob", "digest add nutrition-tips tip two")
    await desk.command("admin", "digest publish nutrition-tips")
    clock.advance(86400 * 3)
    await tick(ticker, desk)
    assert digest_dms(platform, "alice") == []


async def test_a_send_already_claimed_is_stopped_by_unsubscribing(desk, platform, runtime, clock, ticker):
    """Even an item a worker has claimed is not sent once consent is revoked."""
    await an_edition_due_for_alice(desk, clock)
    await ticker.tick()
    claimed = await runtime.db.run(runtime.dispatcher._claim_due)
    await desk.command("alice", "unsubscribe nutrition-tips")
    outcomes = [await runtime.dispatcher._send(item) for item in claimed]
    assert [(type(o), o.reason) for o in outcomes] == [(Cancelled, "no consent in force")]
    assert digest_dms(platform, "alice") == []


async def test_new_subscribers_get_no_backlog_and_non_members_cannot_subscribe(desk, platform, clock, ticker):
    await catalogue(desk)
    await desk.command("bob", "digest add nutrition-tips old tip")
    await desk.command("admin", "digest publish nutrition-tips")
    await desk.command("alice", "subscribe nutrition-tips --cadence daily --hour 10")
    clock.advance(86400)
    await tick(ticker, desk)
    assert digest_dms(platform, "alice") == []
    assert "members only" in await desk.command("mallory", "subscribe nutrition-tips")
    assert "Only members" in await desk.command("admin", "subscribe nutrition-tips")


@pytest.mark.parametrize("args, problem", [
    ("--cadence hourly", "The cadence must be one of"),
    ("--hour 25", "The hour must be 0..23"),
    ("--tz Mars/Olympus", "Unknown time zone"),
    ("--quiet 22", "Quiet hours look like 22-7"),
    ("--cadence monthly --day 31", "The day of the month must be 1..28"),
    ("--colour blue", "Unknown option --colour"),
])
async def test_bad_subscription_arguments_change_nothing(desk, runtime, args, problem):
    await catalogue(desk)
    answer = await desk.command("alice", f"subscribe nutrition-tips {args}")
    assert problem in answer
    assert rows(runtime, Subscription) == [] and rows(runtime, ConsentEvent) == []


async def test_quiet_hours_hold_back_and_the_daily_cap_delays_without_dropping(desk, platform, clock, ticker,
                                                                             runtime):
    await catalogue(desk, cadence="daily")
    await desk.command("alice", "subscribe nutrition-tips --cadence daily --hour 10 --quiet 9-12")
    for number in range(5):  # five editions wait for her: the cap (3 a day) spreads them
        await desk.command("bob", f"digest add nutrition-tips tip {number}")
        await desk.command("admin", "digest publish nutrition-tips")
    clock.advance(3600)  # 10:00, inside quiet hours 9-12
    await tick(ticker, desk)
    assert digest_dms(platform, "alice") == []
    clock.advance(2 * 3600)  # 12:00
    await tick(ticker, desk)
    assert len(digest_dms(platform, "alice")) == 3
    for _ in range(30):
        clock.advance(3600)
        await tick(ticker, desk)
    texts = digest_dms(platform, "alice")
    assert [text.splitlines()[0] for text in texts] == [f"Weekly nutrition tips #{n}" for n in range(1, 6)]
    assert consent_violations_of(runtime) == []


async def test_weekly_eight_oclock_paris_across_both_2026_dst_changes(runtime, platform, desk, clock, ticker):
    """Weekly Monday 08:00 Europe/Paris arrives at 08:00 local before and after each change."""
    clock._now = datetime(2026, 3, 18, 12, 0, tzinfo=timezone.utc)
    await catalogue(desk)
    await desk.command("alice", "subscribe nutrition-tips --cadence weekly --day mon --hour 8 --tz Europe/Paris")
    paris = ZoneInfo("Europe/Paris")
    arrivals = []
    for week_end in ("2026-03-23", "2026-03-30", "2026-10-19", "2026-10-26"):
        if week_end == "2026-10-19":  # jump the summer: the subscription's next time moves with it
            clock._now = datetime(2026, 10, 12, 12, 0, tzinfo=timezone.utc)
            await tick(ticker, desk)
        await desk.command("bob", f"digest add nutrition-tips tip for {week_end}")
        await desk.command("admin", "digest publish nutrition-tips")
        for _ in range(8 * 24 * 4):  # at most eight days, in 15-minute ticks
            if digest_dms(platform, "alice"):
                break
            clock.advance(15 * 60)
            await tick(ticker, desk)
        arrivals.append(clock.now().astimezone(paris))
        platform.sent.clear()
    assert [(a.strftime("%Y-%m-%d %H:%M"), a.utcoffset().total_seconds() / 3600) for a in arrivals] == [
        ("2026-03-23 08:00", 1.0), ("2026-03-30 08:00", 2.0), ("2026-10-19 08:00", 2.0), ("2026-10-26 08:00", 1.0)]


async def test_catalogue_lists_with_buttons_and_archiving_stops_deliveries(desk, platform, clock, ticker, runtime):
    await catalogue(desk)
    reply = await runtime.concierge.handle(
        ButtonPressed("p0", LocalPlatform.dm_address("alice"), "subscribe", "nutrition-tips"))
    assert "Subscribed to Weekly nutrition tips" in reply.text
    from concierge.inbound import CommandInvoked

    listing = await runtime.concierge.handle(CommandInvoked("c9", LocalPlatform.dm_address("alice"), ("digests",)))
    assert "[subscribed]" in listing.text
    assert [b.action for b in listing.card.buttons] == ["unsubscribe"]
    assert "every mon at 09:00 UTC" in await desk.command("alice", "subscriptions")
    await desk.command("bob", "digest add nutrition-tips tip")
    await desk.command("admin", "digest publish nutrition-tips")
    assert "archived" in await desk.command("admin", "digest archive nutrition-tips")
    clock.advance(86400 * 8)
    await tick(ticker, desk)
    assert digest_dms(platform, "alice") == []


async def test_preview_and_test_reach_only_the_asker(desk, platform, runtime):
    await catalogue(desk)
    await desk.command("alice", "subscribe nutrition-tips")
    await desk.command("bob", "digest add nutrition-tips Sleep eight hours.")
    preview = await desk.command("bob", "digest preview nutrition-tips")
    assert "Sleep eight hours." in preview and "(next)" in preview
    assert "on its way" in await desk.command("bob", "digest test nutrition-tips")
    await desk.settle()
    assert ["Sleep eight hours." in text for text in platform.dms_to("bob")] == [True]
    assert platform.dms_to("alice") == []
    assert "experts only" in await desk.command("alice", "digest add nutrition-tips spam")


async def test_the_audit_names_a_delivery_without_consent(desk, platform, runtime, clock, ticker):
    await an_edition_due_for_alice(desk, clock)
    await tick(ticker, desk)
    assert consent_violations_of(runtime) == []

    def forge(session):  # a delivery that no consent backs: what the audit exists to catch
        from sqlalchemy import update

        session.execute(update(ConsentEvent).values(action="revoked"))

    runtime.db.run_sync(forge)
    [problem] = consent_violations_of(runtime)
    assert "without consent in force" in problem and "member 1" in problem


async def test_a_rate_limited_fan_out_pauses_the_whole_platform_then_resumes(desk, platform, runtime, clock, ticker):
    from concierge.platform import RateLimited

    await catalogue(desk)
    for person in ("ann", "ben", "cat"):
        await desk.command("admin", f"member add {person} premium")
        await desk.command(person, "subscribe nutrition-tips --cadence daily --hour 10")
    await desk.command("bob", "digest add nutrition-tips tip")
    await desk.command("admin", "digest publish nutrition-tips")
    clock.advance(3600)
    attempts = []
    original = platform.send

    async def counting_send(address, message):
        attempts.append(address.user)
        return await original(address, message)

    platform.send = counting_send
    platform.fail_next(RateLimited(30))
    await tick(ticker, desk)
    # Sends go out several at once: whichever went first got the 429, and none started after it.
    assert len(attempts) == 1, "after the 429, the rest waited instead of hammering"
    items = rows(runtime, OutboxItem, OutboxItem.edition_id.is_not(None))
    assert [item.status for item in items] == ["pending"] * 3 and {item.attempts for item in items} == {0}
    clock.advance(29)
    await desk.settle()
    assert len(attempts) == 1
    clock.advance(1)
    await desk.settle()
    assert sorted(attempts[1:]) == ["ann", "ben", "cat"]
    assert sorted(p for p in ("ann", "ben", "cat") if digest_dms(platform, p)) == ["ann", "ben", "cat"]


@pytest.mark.parametrize("limit", [2, 100], ids=["swept-in-id-order", "oldest-first"])
async def test_planning_a_backlog_in_batches_plans_each_subscription_once(desk, runtime, clock, limit):
    """A backlog bigger than a batch is swept in id order; a small one is taken oldest first."""
    from concierge.digests.planner import plan_all_due

    await catalogue(desk)
    people = [f"p{number}" for number in range(7)]
    for person in people:
        await desk.command("admin", f"member add {person} premium")
        await desk.command(person, f"subscribe nutrition-tips --cadence daily --hour {10 + people.index(person) % 3}")
    await desk.command("bob", "digest add nutrition-tips tip")
    await desk.command("admin", "digest publish nutrition-tips")
    clock.advance(6 * 3600)
    assert await plan_all_due(runtime.db.run, clock.now(), limit=limit) == 7
    assert await plan_all_due(runtime.db.run, clock.now(), limit=limit) == 0
    items = rows(runtime, OutboxItem, OutboxItem.edition_id.is_not(None))
    assert sorted(item.member_id for item in items) == list(range(2, 9))  # member 1 is alice, not subscribed
    assert all(s.next_due_at > clock.now() for s in rows(runtime, Subscription))
