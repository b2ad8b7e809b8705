"""Relaying between members and staff, on SQLite and PostgreSQL, through the local platform."""

from __future__ import annotations

from adapters.local.platform import LocalPlatform
from concierge.inbound import Attachment, MemberMessage
from concierge.records import Conversation, Message, OutboxItem
from tests.conftest import rows
from tests.support.desk import enrol


async def test_question_opens_a_thread_with_a_card(desk, platform, runtime):
    await enrol(desk, specialties="nutrition,training")
    await desk.member_writes("alice", "What about nutrition before a race?")
    await desk.settle()
    [opened] = platform.threads_opened()
    card = opened.message.card
    assert card.title == "alice, premium, nutrition"
    assert [button.action for button in card.buttons] == ["claim", "close"]
    assert dict(card.fields)["Member"] == "alice"
    [conversation] = rows(runtime, Conversation)
    assert conversation.staff_thread == opened.ref.address.thread
    assert conversation.status == "open"
    assert [m.direction for m in rows(runtime, Message)] == ["in"]


async def test_reply_reaches_member_and_note_stays_internal(desk, platform, runtime):
    await enrol(desk)
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    thread = desk.threads()[0]
    assert await desk.staff_writes("bob", thread, "Answer.") is None
    assert await desk.staff_writes("bob", thread, "NOTE: private remark") == "(internal, not sent)"
    await desk.settle()
    assert platform.dms_to("alice") == ["Answer."]
    assert all("private remark" not in sent.message.text for sent in platform.sent)
    directions = [(m.direction, m.text) for m in rows(runtime, Message)]
    assert ("internal", "private remark") in directions and ("out", "Answer.") in directions
    [conversation] = rows(runtime, Conversation)
    assert conversation.first_response_at is not None
    assert conversation.claimed_by is not None  # the first expert to answer owns it


async def test_stranger_creates_nothing_for_staff(desk, platform, runtime):
    await desk.member_writes("mallory", "hello")
    await desk.settle()
    assert platform.threads_opened() == []
    assert rows(runtime, Conversation) == []
    assert platform.dms_to("mallory") == [
        "This service is for members of Peak Club. Ask your account manager or visit the program page to join."
    ]


async def test_blocked_member_is_not_relayed(desk, platform, runtime):
    await enrol(desk)
    assert "blocked" in await desk.command("admin", "member block alice spamming")
    await desk.member_writes("alice", "let me in")
    await desk.settle()
    assert platform.threads_opened() == [] and rows(runtime, Conversation) == []
    assert platform.dms_to("alice") == ["Your messages are not being forwarded to our team at the moment."]
    await desk.command("admin", "member unblock alice")
    await desk.member_writes("alice", "sorry")
    await desk.settle()
    assert len(platform.threads_opened()) == 1


async def test_oversized_message_is_refused_politely(desk, platform, runtime):
    await enrol(desk)
    await desk.member_writes("alice", "x" * 4001)
    await desk.settle()
    assert rows(runtime, Conversation) == []
    [notice] = platform.dms_to("alice")
    assert "4001 characters" in notice and "limit is 4000" in notice


async def test_non_expert_in_thread_is_not_relayed(desk, platform):
    await enrol(desk)
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    answer = await desk.staff_writes("eve", desk.threads()[0], "I am not staff")
    await desk.settle()
    assert "Only experts" in answer
    assert platform.dms_to("alice") == []


async def test_chatter_outside_conversation_threads_is_ignored(desk, platform, runtime):
    await enrol(desk)
    assert await desk.staff_writes("bob", "999", "random thread") is None
    await desk.settle()
    assert platform.sent == [] and rows(runtime, Message) == []


async def test_reply_in_closed_conversation_is_refused(desk, platform):
    await enrol(desk)
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    thread = desk.threads()[0]
    await desk.command("bob", "close", thread=thread)
    answer = await desk.staff_writes("bob", thread, "late answer")
    await desk.settle()
    assert "closed" in answer and platform.dms_to("alice") == []
    assert "reopened" in await desk.command("bob", "reopen", thread=thread)
    await desk.staff_writes("bob", thread, "answer after reopening")
    await desk.settle()
    assert platform.dms_to("alice") == ["answer after reopening"]


async def test_attachments_are_relayed_as_links(runtime, desk, platform):
    await enrol(desk)
    await runtime.concierge.handle(MemberMessage(
        "att-1", LocalPlatform.dm_address("alice"), "my plan",
        attachments=(Attachment("plan.pdf", "https://files.example/plan.pdf", 1200),)))
    await desk.settle()
    assert platform.threads_opened()[0].message.text == "my plan\n[file] plan.pdf: https://files.example/plan.pdf"


async def test_specialty_named_in_the_text_routes_the_conversation(desk, platform, runtime):
    await enrol(desk, specialties="nutrition,training")
    await desk.member_writes("alice", "A training question: intervals?")
    await desk.settle()
    [conversation] = rows(runtime, Conversation)
    assert conversation.specialty == "training"


async def test_every_relay_is_queued_before_it_is_sent(desk, runtime):
    """Nothing leaves without an outbox row: every delivery is recorded and marked sent."""
    await enrol(desk)
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    await desk.staff_writes("bob", desk.threads()[0], "Answer.")
    await desk.settle()
    items = rows(runtime, OutboxItem)
    # The card, the answer, and the card redrawn: answered, and claimed by the expert who answered.
    assert [item.kind for item in items] == ["open_thread", "post", "edit_card"]
    assert all(item.status == "sent" and item.sent_message_id for item in items)


async def test_a_question_naming_no_topic_asks_the_member_to_pick_one(desk, platform, runtime):
    from concierge.inbound import ButtonPressed

    await enrol(desk, specialties="nutrition,training,physio")
    await desk.command("admin", "tier set premium --specialties training,nutrition")
    await desk.member_writes("alice", "I have a question")
    await desk.member_writes("alice", "about my week")
    await desk.settle()
    assert platform.threads_opened() == [], "staff see it once the topic is picked"
    [prompt] = [s for s in platform.sent if s.message.card and s.message.card.title == "Pick a topic"]
    assert [(b.label, b.value) for b in prompt.message.card.buttons] == [("Nutrition", "1:nutrition"),
                                                                         ("Training", "1:training")]
    assert "not a topic you can pick" in await desk.command("alice", "topic 1:physio")
    reply = await runtime.concierge.handle(ButtonPressed("t1", LocalPlatform.dm_address("alice"), "topic",
                                                         "1:training"))
    assert reply.text == "Thank you: your question is with our training experts."
    await desk.settle()
    [opened] = platform.threads_opened()
    assert opened.message.card.title == "alice, premium, training"
    assert opened.message.text == "I have a question\nabout my week"
    assert "already with our experts" in await desk.command("alice", "topic 1:nutrition")


async def test_quick_messages_handled_at_once_open_one_conversation(desk, platform, runtime):
    """Platforms hand over events concurrently; on PostgreSQL they run in parallel transactions."""
    import asyncio

    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    messages = [MemberMessage(f"quick-{n}", LocalPlatform.dm_address("alice"), f"nutrition {n}") for n in range(8)]
    await asyncio.gather(*(runtime.concierge.handle(message) for message in messages))
    await desk.settle()
    assert len(rows(runtime, Conversation)) == 1
    assert len(platform.threads_opened()) == 1
    assert sorted(m.text for m in rows(runtime, Message)) == [f"nutrition {n}" for n in range(8)]
