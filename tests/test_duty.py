"""Working hours, the away notice, and escalation past the response target (from the tick)."""

from __future__ import annotations

from datetime import datetime, timezone

from concierge.records import Expert
from tests.conftest import rows


async def setup(desk, hours="9-17 --tz Europe/Paris --days mon-fri"):
    await desk.command("admin", "expert add bob nutrition")
    answer = await desk.command("admin", f"expert hours bob {hours}")
    await desk.command("admin", "tier set premium --target 1h")
    await desk.command("admin", "member add alice premium")
    return answer


async def test_hours_are_set_and_checked(desk, runtime):
    answer = await setup(desk)
    assert answer == "bob is on duty 9:00-17:00 Europe/Paris, mon, tue, wed, thu, fri."
    assert "look like 9-17" in await desk.command("admin", "expert hours bob nine-five")
    assert "unknown time zone" in await desk.command("admin", "expert hours bob 9-17 --tz Mars/Base")
    assert "mon-fri" in await desk.command("admin", "expert hours bob 9-17 --days someday")
    [expert] = rows(runtime, Expert)
    assert (expert.work_start, expert.work_end) == (9, 17)


async def test_a_member_writing_out_of_hours_is_told_when_to_expect_an_answer(desk, platform, clock):
    await setup(desk)
    clock._now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)  # a Saturday
    await desk.member_writes("alice", "weekend question")
    await desk.settle()
    assert len(platform.threads_opened()) == 1
    assert platform.dms_to("alice")[-1].endswith("from about Monday 08:00 UTC.")


async def test_no_notice_when_someone_is_on_duty(desk, platform):
    await setup(desk)  # the clock starts on a Wednesday at 10:00 Paris time
    await desk.member_writes("alice", "weekday question")
    await desk.settle()
    assert platform.dms_to("alice") == []


async def test_overdue_questions_page_experts_then_admins_once_each(desk, platform, clock, ticker, runtime):
    await setup(desk)
    await desk.member_writes("alice", "urgent-ish")
    await desk.settle()
    thread = desk.threads()[0]
    await ticker.tick()
    await desk.settle()
    assert platform.thread_posts(thread) == ["urgent-ish"]
    clock.advance(61 * 60)
    for _ in range(3):
        await ticker.tick()
        await desk.settle()
    assert platform.thread_posts(thread)[1:] == ["Waiting 1h01m, over the premium target. On duty for nutrition: bob."]
    clock.advance(60 * 60)
    for _ in range(3):
        await ticker.tick()
        await desk.settle()
    assert platform.thread_posts(thread)[-1] == "Still unanswered after 2h01m. Admins (local:admin), please step in."
    assert len(platform.thread_posts(thread)) == 3


async def test_answered_questions_are_not_escalated(desk, platform, clock, ticker):
    await setup(desk)
    await desk.member_writes("alice", "question")
    await desk.settle()
    await desk.staff_writes("bob", desk.threads()[0], "answer")
    clock.advance(5 * 3600)
    await ticker.tick()
    await desk.settle()
    assert not any("target" in text for text in platform.thread_posts(desk.threads()[0]))


async def test_the_card_and_the_escalations_page_by_id_only_whom_the_core_means(desk, platform, clock, ticker):
    await setup(desk)
    await desk.command("admin", "expert add carl training")
    await desk.member_writes("alice", "a nutrition question")
    await desk.settle()
    [opened] = platform.threads_opened()
    assert opened.message.mentions == ("bob",), "only the on-duty nutrition expert"
    clock.advance(61 * 60)
    await ticker.tick()
    await desk.settle()
    clock.advance(60 * 60)
    await ticker.tick()
    await desk.settle()
    pages = [s.message.mentions for s in platform.sent if "target" in s.message.text or "step in" in s.message.text]
    assert pages == [("bob",), ("admin",)]
