"""The main conversations, written once, run against every platform driver."""

from __future__ import annotations

from tests.contract.driver import ConversationDriver


async def setup_desk(d: ConversationDriver) -> None:
    assert "premium" in await d.command(d.admin, f"member add {d.mention('alice')} premium alice")
    assert "nutrition" in await d.command(d.admin, f"expert add {d.mention('bob')} nutrition bob")


async def question_answer_note_close(d: ConversationDriver) -> None:
    """A member asks; the staff thread opens; the reply reaches the DM; notes stay internal."""
    await setup_desk(d)
    await d.member_writes("alice", "What should I eat before a 10k race?")
    await d.settle()
    assert len(d.threads()) == 1
    thread = d.threads()[0]
    assert "What should I eat before a 10k race?" in d.thread_texts(thread)[0]

    await d.staff_writes("bob", thread, "Oats and a banana two hours before.")
    answer = await d.staff_writes("bob", thread, "note: check her allergies next time")
    await d.settle()
    assert d.dms("alice") == ["Oats and a banana two hours before."]
    assert answer is not None and "internal" in answer

    await d.member_writes("alice", "And after the race?")
    await d.settle()
    assert len(d.threads()) == 1, "a follow-up goes into the same thread"
    assert any("And after the race?" in text for text in d.thread_texts(thread)[1:])

    assert "closed" in (await d.command("bob", "close", thread=thread)).lower()
    await d.settle()
    assert any("Closed by bob" in text for text in d.thread_texts(thread))


async def stranger_is_told_how_to_join(d: ConversationDriver) -> None:
    """Someone not enrolled gets the join text; staff see nothing."""
    await setup_desk(d)
    await d.member_writes("mallory", "Hi, can I ask something?")
    await d.settle()
    assert d.threads() == []
    assert len(d.dms("mallory")) == 1 and "members of" in d.dms("mallory")[0]


async def members_cannot_run_admin_commands(d: ConversationDriver) -> None:
    await setup_desk(d)
    answer = await d.command("alice", f"member add {d.mention('carol')} premium")
    assert "admins only" in answer
    listing = await d.command(d.admin, "member list")
    assert "alice" in listing and "carol" not in listing


async def redelivered_event_is_relayed_once(d: ConversationDriver) -> None:
    await setup_desk(d)
    await d.member_writes("alice", "Is coffee fine before a run?", event_id="evt-1")
    await d.member_writes("alice", "Is coffee fine before a run?", event_id="evt-1")
    await d.settle()
    assert len(d.threads()) == 1
    assert sum("coffee" in text for text in d.thread_texts(d.threads()[0])) == 1


async def claim_button_and_after_close_a_new_thread(d: ConversationDriver) -> None:
    """The Claim button works; a member writing after close starts a new conversation."""
    await setup_desk(d)
    await d.member_writes("alice", "How much water per day?")
    await d.settle()
    first = d.threads()[0]
    assert "claimed" in (await d.press("bob", first, "claim")).lower()
    await d.command("bob", "close", thread=first)
    await d.member_writes("alice", "One more question about protein.")
    await d.settle()
    assert len(d.threads()) == 2
    second = d.threads()[1]
    await d.staff_writes("bob", second, "About 1.6 g per kg.")
    await d.settle()
    assert d.dms("alice")[-1] == "About 1.6 g per kg."


async def unknown_command_and_bad_arguments_answer_politely(d: ConversationDriver) -> None:
    await setup_desk(d)
    assert "Unknown command" in await d.command(d.admin, "frobnicate")
    assert "Usage:" in await d.command(d.admin, "member add")


SCENARIOS = [
    question_answer_note_close,
    stranger_is_told_how_to_join,
    members_cannot_run_admin_commands,
    redelivered_event_is_relayed_once,
    claim_button_and_after_close_a_new_thread,
    unknown_command_and_bad_arguments_answer_politely,
]
