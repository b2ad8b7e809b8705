"""Expert tools: snippets, closing with a message; members' own list of questions."""

from __future__ import annotations

from concierge.inbound import CommandInvoked
from concierge.platform import Address
from concierge.records import AuditEvent, Message, Snippet
from tests.conftest import rows


async def ask(desk, text="How much water per day?"):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("alice", text)
    await desk.settle()
    return desk.threads()[-1]


async def test_snippets_are_saved_listed_sent_and_removed(desk, platform, runtime):
    thread = await ask(desk)
    assert "saved" in await desk.command("bob", "snippet add hydration About 35 ml per kg of body weight.")
    assert await desk.command("bob", "snippet list") == "`hydration`: About 35 ml per kg of body weight."
    assert "Sent snippet" in await desk.command("bob", "snippet use hydration", thread=thread)
    await desk.settle()
    assert platform.dms_to("alice") == ["About 35 ml per kg of body weight."]
    assert [m.direction for m in rows(runtime, Message)][-1] == "out"
    assert "no snippet `nope`" in await desk.command("bob", "snippet use nope", thread=thread)
    assert "inside a conversation" in await desk.command("bob", "snippet use hydration")
    assert "removed" in await desk.command("bob", "snippet remove hydration")
    assert rows(runtime, Snippet) == []
    assert [e.action for e in rows(runtime, AuditEvent)][-2:] == ["snippet.add", "snippet.remove"]
    assert "experts only" in await desk.command("alice", "snippet add spam buy now")


async def test_bad_snippet_names_change_nothing(desk, runtime):
    await ask(desk)
    assert "lowercase letters" in await desk.command("bob", "snippet add Bad!Name text")
    assert rows(runtime, Snippet) == []


async def test_close_with_a_closing_message(desk, platform, runtime):
    thread = await ask(desk)
    reply = await runtime.concierge.handle(CommandInvoked(
        "c-close", Address("local", "concierge-staff", "bob", thread),
        ("close", "--message", "Glad I could help; write any time.")))
    assert reply.text == "Conversation 1 closed and the member was told."
    await desk.settle()
    assert platform.dms_to("alice") == ["Glad I could help; write any time."]
    assert platform.thread_posts(thread)[-1] == "Closed by bob."


async def test_members_see_their_questions(desk, clock):
    thread = await ask(desk)
    assert "#1 nutrition" in await desk.command("alice", "my-questions")
    assert "waiting for an answer" in await desk.command("alice", "my-questions")
    await desk.staff_writes("bob", thread, "Two litres.")
    assert "answered, open" in await desk.command("alice", "my-questions")
    await desk.command("bob", "close", thread=thread)
    assert "closed" in await desk.command("alice", "my-questions")
    assert "members only" in await desk.command("mallory", "my-questions")


async def test_a_block_for_some_days_ends_by_itself(desk, platform, runtime, clock):
    await ask(desk)
    assert "until 2026-11-27 09:00 UTC" in await desk.command("admin", "member block alice shouting --days 2")
    await desk.member_writes("alice", "anyone there?")
    await desk.settle()
    assert platform.dms_to("alice")[-1].startswith("Your messages are not being forwarded")
    assert "whole number" in await desk.command("admin", "member block alice --days soon")
    clock.advance(2 * 86400 + 1)
    await desk.member_writes("alice", "sorry about before")
    await desk.settle()
    assert platform.thread_posts(desk.threads()[0])[-1] == "alice: sorry about before"


async def test_a_member_writing_too_fast_is_told_once_and_nothing_is_lost_from_the_record(desk, platform,
                                                                                         runtime, clock):
    thread = await ask(desk, "first")
    for number in range(12):
        await desk.member_writes("alice", f"message {number}")
    await desk.settle()
    relayed = [text for text in platform.thread_posts(thread) if text.startswith("alice: message")]
    assert len(relayed) == 9  # ten a minute, the opening question included
    notices = [text for text in platform.dms_to("alice") if "faster than our team" in text]
    assert len(notices) == 1
    assert sorted(m.direction for m in rows(runtime, Message)).count("dropped") == 3
    clock.advance(61)
    await desk.member_writes("alice", "calmer now")
    await desk.settle()
    assert platform.thread_posts(thread)[-1] == "alice: calmer now"


async def test_one_rating_request_after_close_and_the_rating_is_kept(desk, platform, runtime, clock):
    from adapters.local.platform import LocalPlatform
    from concierge.inbound import ButtonPressed
    from concierge.records import Conversation

    thread = await ask(desk)
    await desk.command("bob", "close", thread=thread)  # unanswered: no request
    await desk.settle()
    assert not any("Rate the answer" in text for text in platform.dms_to("alice"))
    await desk.command("bob", "reopen", thread=thread)
    await desk.staff_writes("bob", thread, "Two litres.")
    await desk.command("bob", "close", thread=thread)
    await desk.command("bob", "reopen", thread=thread)
    await desk.command("bob", "close", thread=thread)
    await desk.settle()
    requests = [s for s in platform.sent if s.message.card and s.message.card.title == "Rate this answer"]
    assert len(requests) == 1, "one request per conversation"
    assert [b.value for b in requests[0].message.card.buttons] == [f"1:{n}" for n in range(1, 6)]
    reply = await runtime.concierge.handle(ButtonPressed("rate-1", LocalPlatform.dm_address("alice"), "rate", "1:4"))
    assert reply.text == "Thank you for your rating!"
    await desk.command("admin", "member add carol premium")
    assert "only rate your own" in await desk.command("carol", "rate 1 5")
    assert "from 1 to 5" in await desk.command("alice", "rate 1 9")
    assert await desk.command("alice", "rate 1 5 very helpful") == "Thank you for your rating!"
    [conversation] = rows(runtime, Conversation)
    assert (conversation.rating, conversation.rating_comment) == (5, "very helpful")
    stats = await desk.command("admin", "stats --since 1d")
    assert "1 conversations" in stats and "Rating: 5.0/5 from 1 ratings" in stats
    assert "p50" in stats and "--since looks like" in await desk.command("admin", "stats --since soon")


async def test_hand_over_to_another_expert(desk, platform, runtime):
    thread = await ask(desk)
    await desk.command("admin", "expert add carl nutrition")
    assert await desk.command("bob", "claim --to carl", thread=thread) == "Conversation 1 is now carl's."
    assert "not an expert" in await desk.command("bob", "claim --to alice", thread=thread)
    await desk.settle()
    assert platform.thread_posts(thread)[-1] == "Handed over to carl by bob."


async def test_answers_can_be_signed(database_url, platform, clock):
    from concierge.bootstrap import build_runtime
    from tests.conftest import make_settings
    from tests.contract.local_driver import LocalDriver

    runtime = build_runtime(make_settings(database_url, reply_signature="expert"), {"local": platform}, clock=clock)
    try:
        desk = LocalDriver(runtime, platform)
        thread = await ask(desk)
        await desk.staff_writes("bob", thread, "Two litres.")
        await desk.settle()
        assert platform.dms_to("alice") == ["Two litres.\n- bob"]
    finally:
        runtime.close()


async def test_idle_answered_conversations_close_from_the_tick_even_after_a_restart(database_url, platform, clock):
    from concierge.bootstrap import build_runtime
    from concierge.records import Conversation
    from scheduling.ticker import DigestScheduler
    from tests.conftest import make_settings
    from tests.contract.local_driver import LocalDriver

    settings = make_settings(database_url, auto_close_hours=24)
    runtime = build_runtime(settings, {"local": platform}, clock=clock)
    desk = LocalDriver(runtime, platform)
    thread = await ask(desk)
    await desk.member_writes("dave", "not a member")  # nothing
    await desk.staff_writes("bob", thread, "Two litres.")
    await desk.settle()
    runtime.close()  # a restart: the rule lives in the tick and the records, not in a timer

    runtime = build_runtime(settings, {"local": platform}, clock=clock)
    try:
        ticker = DigestScheduler(runtime.db, runtime.dispatcher, settings, clock)
        clock.advance(23 * 3600)
        await ticker.tick()
        await runtime.dispatcher.drain()
        assert rows(runtime, Conversation)[0].status == "open"
        clock.advance(2 * 3600)
        await ticker.tick()
        await runtime.dispatcher.drain()
        assert rows(runtime, Conversation)[0].status == "closed"
        assert "quiet for a while" in platform.dms_to("alice")[-2]  # then the rating request
        assert "Closed by auto-close." in platform.thread_posts(thread)
    finally:
        runtime.close()


async def test_stats_from_the_command_line_with_a_chart(desk, tmp_path, database_url):
    from tests.support.cli import concierge

    thread = await ask(desk)
    await desk.staff_writes("bob", thread, "Two litres.")
    chart = tmp_path / "stats.png"
    result = concierge("stats", "--since", "3650d", "--chart", str(chart), cwd=tmp_path,
                       env={"CONCIERGE_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "1 conversations, 1 open" in result.stdout and "First response, specialty nutrition: p50 0m" in result.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    bad = concierge("stats", "--since", "forever", cwd=tmp_path, env={"CONCIERGE_DATABASE_URL": database_url})
    assert bad.returncode == 2


async def test_a_reply_in_a_closed_conversation_tells_the_expert_and_offers_reopen(desk, platform):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    thread = desk.threads()[0]
    await desk.command("bob", "close", thread=thread)
    await desk.settle()
    from concierge.inbound import StaffReply
    from concierge.platform import Address

    told = await desk.runtime.concierge.handle(
        StaffReply("late-reply", Address("local", "concierge-staff", "bob", thread), "One more thing!"))
    await desk.settle()
    assert told.text.startswith("Conversation 1 is closed, so your reply was not sent.")
    assert [(b.label, b.action, b.value) for b in told.card.buttons] == [("Reopen", "reopen", "1")]
    assert "One more thing!" not in platform.dms_to("alice")


async def test_a_message_without_text_gets_an_answer(desk, runtime, platform):
    from adapters.local.platform import LocalPlatform
    from concierge.inbound import MemberMessage

    await desk.command("admin", "member add alice premium")
    await runtime.concierge.receive(MemberMessage("sticker", LocalPlatform.dm_address("alice"), "   "))
    await desk.settle()
    assert platform.dms_to("alice") == ["We could not read that message (there was no text in it). "
                                        "Please write your question out."]
