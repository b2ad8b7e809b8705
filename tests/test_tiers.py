"""Tiers: specialties, monthly quota, response target; refusals reach the member, not staff."""

from __future__ import annotations

from concierge.records import AuditEvent, Conversation
from tests.conftest import rows


async def setup(desk):
    await desk.command("admin", "expert add bob nutrition,training,physio")
    answer = await desk.command("admin", "tier set premium --quota 2/month --target 4h --specialties training,nutrition")
    assert answer == "Tier premium: 2 questions a month, answer within 4h, training, nutrition."
    await desk.command("admin", "member add alice premium")


async def test_quota_is_counted_per_calendar_month(desk, platform, runtime, clock):
    await setup(desk)
    for number in range(2):
        await desk.member_writes("alice", f"training question {number}")
        await desk.settle()
        await desk.command("bob", "close", thread=desk.threads()[-1])
    await desk.member_writes("alice", "a third training question")
    await desk.settle()
    assert len(rows(runtime, Conversation)) == 2 and len(desk.threads()) == 2
    assert "used this month's 2 questions" in platform.dms_to("alice")[-1]
    clock.advance(7 * 86400)  # 2 December: a new month
    await desk.member_writes("alice", "training again")
    await desk.settle()
    assert len(desk.threads()) == 3


async def test_a_specialty_outside_the_tier_is_refused_and_the_card_shows_the_target(desk, platform, runtime):
    await setup(desk)
    await desk.member_writes("alice", "A physio question about my knee")
    await desk.settle()
    assert desk.threads() == []
    assert "covers training, nutrition" in platform.dms_to("alice")[-1]
    await desk.member_writes("alice", "A nutrition question")
    await desk.settle()
    [opened] = platform.threads_opened()
    assert dict(opened.message.card.fields)["Answer by"] == "2026-11-25 13:00 UTC"


async def test_tier_commands(desk, runtime):
    await setup(desk)
    assert "Say what to change" in await desk.command("admin", "tier set premium")
    assert "A quota looks like" in await desk.command("admin", "tier set premium --quota lots")
    assert "30m, 4h or 2d" in await desk.command("admin", "tier set premium --target soon")
    assert await desk.command("admin", "tier set premium --quota none --specialties any") == \
        "Tier premium: unlimited questions, answer within 4h, every specialty."
    assert "basic: unlimited questions" in await desk.command("admin", "tier set basic")
    assert "admins only" in await desk.command("alice", "tier list")
    listing = await desk.command("admin", "tier list")
    assert listing.splitlines()[0].startswith("basic") and "premium" in listing
    assert [e.action for e in rows(runtime, AuditEvent)].count("tier.set") == 3


async def test_a_target_typo_is_refused_and_the_longest_target_still_relays(desk, platform):
    """An admin typo must never be stored in a form that breaks a later relay (it used to silence the tier)."""
    for typo in ("99999999999d", "9999999d", "31d", "²h", "0m"):
        reply = await desk.command("admin", f"tier set gold --target {typo}")
        assert reply.startswith("A response target looks like 30m, 4h or 2d (at most 30d)"), (typo, reply)
    assert "30d" in await desk.command("admin", "tier set gold --target 30d")
    await desk.command("admin", "member add carol gold")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("carol", "A nutrition question")
    await desk.settle()
    [opened] = platform.threads_opened()
    assert dict(opened.message.card.fields)["Answer by"] == "2026-12-25 09:00 UTC"
