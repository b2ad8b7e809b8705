"""The staff card follows its conversation: waiting, claimed, answered, escalated, closed, rated; buttons follow."""

from __future__ import annotations

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.records import OutboxItem
from tests.conftest import make_settings, rows
from tests.contract.local_driver import LocalDriver


async def ask(desk) -> str:
    await desk.command("admin", "member add alice premium Alice")
    await desk.command("admin", "expert add bob nutrition Bob")
    await desk.member_writes("alice", "What should I eat before a race?")
    await desk.settle()
    return desk.threads()[0]


def status(card) -> str:
    return dict(card.fields)["Status"]


def buttons(card) -> list[str]:
    return [button.label for button in card.buttons]


def last_edit(platform):
    ref, message = platform.edits[-1]
    return ref, message


async def test_the_card_changes_with_the_conversation(desk, platform, clock):
    thread = await ask(desk)
    [opened] = platform.threads_opened()
    assert status(opened.message.card) == "Waiting for an answer"
    assert buttons(opened.message.card) == ["Claim", "Close"]
    assert dict(opened.message.card.fields)["Id"] == "local:alice"
    assert platform.edits == []

    await desk.press("bob", thread, "claim")
    await desk.settle()
    ref, message = last_edit(platform)
    assert ref.message_id == opened.ref.message_id and ref.address.thread == thread
    assert status(message.card) == "Waiting for an answer, claimed by Bob"
    assert buttons(message.card) == ["Close"], "Claim goes once claimed"
    assert message.text == "What should I eat before a race?" and message.mentions == ()

    clock.advance(600)
    await desk.staff_writes("bob", thread, "Oats and a banana.")
    await desk.settle()
    assert status(last_edit(platform)[1].card) == "Answered 2026-11-25 09:10 UTC, claimed by Bob"

    await desk.command("bob", "close", thread=thread)
    await desk.settle()
    closed = last_edit(platform)[1].card
    assert status(closed).startswith("Closed by Bob 2026-11-25 09:10 UTC")
    assert buttons(closed) == ["Reopen"]

    await desk.press_in_dm("alice", "5")
    closed = last_edit(platform)[1].card
    assert status(closed).endswith("rated 5/5")

    reply = await desk.command("bob", "reopen 1")
    assert reply == "Conversation 1 reopened."
    await desk.settle()
    assert buttons(last_edit(platform)[1].card) == ["Close"]
    assert all(ref.message_id == opened.ref.message_id for ref, _ in platform.edits), "always the same card"


async def test_escalation_shows_on_the_card(desk, platform, runtime):
    await desk.command("admin", "tier set premium --target 1h")
    await ask(desk)
    await desk.later(2 * 3600)
    assert status(last_edit(platform)[1].card) == "Waiting for an answer, over the response target"
    await desk.later(2 * 3600)
    assert status(last_edit(platform)[1].card) == "Waiting for an answer, escalated to the admins"


async def test_a_burst_of_changes_costs_at_most_two_edits_showing_the_last_state(desk, platform, runtime):
    thread = await ask(desk)
    await desk.command("admin", "expert add carl nutrition Carl")
    await desk.press("bob", thread, "claim")  # no delivery in between: the changes come in a burst
    await desk.command("admin", f"claim {1} --to carl")
    await desk.command("admin", f"claim {1} --to bob")
    await desk.command("bob", "close", thread=thread)
    await desk.settle()
    assert 1 <= len(platform.edits) <= 2
    assert status(last_edit(platform)[1].card).startswith("Closed by Bob")
    edits = rows(runtime, OutboxItem, OutboxItem.kind == "edit_card")
    assert len(edits) <= 2 and all(item.status == "sent" for item in edits)


async def test_after_a_restart_the_next_change_edits_the_same_card(database_url, clock):
    first = LocalPlatform()
    runtime = build_runtime(make_settings(database_url), {"local": first}, clock=clock)
    try:
        desk = LocalDriver(runtime, first)
        thread = await ask(desk)
        card_id = first.threads_opened()[0].ref.message_id
    finally:
        runtime.close()
    second = LocalPlatform()
    runtime = build_runtime(make_settings(database_url), {"local": second}, clock=clock)
    try:
        desk = LocalDriver(runtime, second)
        await desk.command("bob", "claim", thread=thread)
        await desk.settle()
        [(ref, message)] = second.edits
        assert ref.message_id == card_id and status(message.card) == "Waiting for an answer, claimed by Bob"
    finally:
        runtime.close()
