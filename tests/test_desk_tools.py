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
