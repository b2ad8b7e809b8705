"""CONCIERGE_SPECIALTY_CHANNELS: a specialty's threads open in its own staff channel, through the local platform."""

from __future__ import annotations

import pytest

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.inbound import ButtonPressed, CommandInvoked, StaffReply
from concierge.platform import Address
from concierge.records import Conversation
from tests.conftest import make_settings, rows
from tests.support.desk import enrol

TRAINING_DESK = "training-desk"


@pytest.fixture
def runtime(database_url, platform, clock):
    settings = make_settings(database_url, specialty_channels={"training": TRAINING_DESK})
    rt = build_runtime(settings, {"local": platform}, clock=clock)
    yield rt
    rt.close()


def opened_in(platform) -> dict[str, str]:
    """Card title -> the channel its thread opened in."""
    return {sent.message.card.title: sent.address.channel for sent in platform.threads_opened()}


async def in_channel(runtime, event_id, channel, person, thread, text):
    reply = await runtime.concierge.handle(StaffReply(event_id, Address("local", channel, person, thread), text))
    return reply.text if reply else None


async def test_a_specialty_with_its_own_channel_opens_its_threads_there(desk, platform, runtime):
    await enrol(desk, "alice", "carol", specialties="nutrition,training")
    await desk.member_writes("alice", "A training question: intervals?")
    await desk.member_writes("carol", "A nutrition question: carbs?")
    await desk.settle()
    assert opened_in(platform) == {"alice, premium, training": TRAINING_DESK,
                                   "carol, premium, nutrition": "concierge-staff"}
    stored = {c.specialty: (c.staff_platform, c.staff_channel) for c in rows(runtime, Conversation)}
    assert stored == {"training": ("local", TRAINING_DESK), "nutrition": ("local", "concierge-staff")}


async def test_staff_replies_and_follow_ups_stay_in_the_specialty_channel(desk, platform, runtime):
    await enrol(desk, "alice", specialties="nutrition,training")
    await desk.member_writes("alice", "A training question: intervals?")
    await desk.settle()
    [opened] = platform.threads_opened()
    thread = opened.ref.address.thread
    assert opened.ref.address.channel == TRAINING_DESK
    assert await in_channel(runtime, "r1", TRAINING_DESK, "bob", thread, "Twice a week.") is None
    await desk.member_writes("alice", "And how long?")
    reply = await runtime.concierge.handle(CommandInvoked("c1", Address("local", TRAINING_DESK, "bob", thread),
                                                          ("claim",)))
    await desk.settle()
    assert reply.text == "You already have conversation 1."  # answering claimed it, from that channel too
    assert platform.dms_to("alice") == ["Twice a week."]
    follow_up = [sent for sent in platform.sent if sent.message.text == "alice: And how long?"]
    assert [(sent.address.channel, sent.address.thread) for sent in follow_up] == [(TRAINING_DESK, thread)]


async def test_a_topic_picked_with_the_buttons_routes_to_its_channel(desk, platform, runtime):
    await desk.command("admin", "expert add bob nutrition,training")
    await desk.command("admin", "tier set premium --specialties nutrition,training")
    await desk.command("admin", "member add alice premium")
    await desk.member_writes("alice", "I have a question")  # names no topic: the member picks one
    await desk.settle()
    assert platform.threads_opened() == []
    reply = await runtime.concierge.handle(ButtonPressed("t1", LocalPlatform.dm_address("alice"), "topic",
                                                         "1:training"))
    assert reply.text == "Thank you: your question is with our training experts."
    await desk.settle()
    assert opened_in(platform) == {"alice, premium, training": TRAINING_DESK}
    [conversation] = rows(runtime, Conversation)
    assert conversation.staff_channel == TRAINING_DESK
    thread = platform.threads_opened()[0].ref.address.thread
    assert await in_channel(runtime, "r1", TRAINING_DESK, "bob", thread, "Sure, tell me more.") is None
    await desk.settle()
    assert platform.dms_to("alice")[-1] == "Sure, tell me more."


async def test_a_topic_without_its_own_channel_picked_with_the_buttons_uses_the_staff_channel(desk, platform):
    await desk.command("admin", "expert add bob nutrition,training")
    await desk.command("admin", "member add alice premium")
    await desk.member_writes("alice", "I have a question")
    await desk.settle()
    assert "nutrition experts" in await desk.press_in_dm("alice", "Nutrition")
    await desk.settle()
    assert opened_in(platform) == {"alice, premium, nutrition": "concierge-staff"}
