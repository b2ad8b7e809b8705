"""CONCIERGE_SPECIALTY_CHANNELS on Slack, through signed requests: a specialty's card opens in its own
channel, expert replies there reach the member, and the doctor checks every staff channel.

SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import time

import pytest

from adapters.slack.cli import find_problems
from concierge.records import Conversation
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.slack.fake_slack import Channel
from tests.slack.harness import STAFF, core_settings, slack_settings, start_bot

TRAINING = "CTRAINING1"


@pytest.fixture
async def training_bot(database_url, fake_slack, clock):
    bot = await start_bot(database_url, fake_slack, clock=clock, specialty_channels={"training": TRAINING})
    try:
        yield bot
    finally:
        await bot.close()


def cards_in(bot, channel: str) -> list:
    """The thread-opening posts (staff cards) in `channel`."""
    return [call for call in bot.fake.calls_to("chat.postMessage")
            if call.args.get("channel") == channel and not call.args.get("thread_ts")]


async def expert_replies(bot, person: str, channel: str, thread: str, text: str) -> None:
    ts = f"{time.time():.6f}"
    await bot.post_event({"type": "message", "channel": channel, "user": user_id(person), "text": text, "ts": ts,
                          "thread_ts": thread, "event_ts": ts, "channel_type": "channel"})
    await bot.settle()


async def test_a_specialty_card_opens_in_its_channel_and_replies_there_reach_the_member(training_bot):
    bot, driver = training_bot, SlackDriver(training_bot)
    await driver.command("admin", f"member add {driver.mention('alice')} premium alice")
    await driver.command("admin", f"member add {driver.mention('carol')} premium carol")
    await driver.command("admin", f"expert add {driver.mention('bob')} training,nutrition bob")
    await driver.member_writes("alice", "A training question: how many intervals?")
    await driver.member_writes("carol", "A nutrition question: how many eggs?")
    await driver.settle()

    [training_card] = cards_in(bot, TRAINING)
    assert "training" in training_card.args["blocks"][0]["text"]["text"]
    assert training_card.args["text"].startswith("<@UBOB> ")  # the expert on duty is paged there
    [nutrition_card] = cards_in(bot, STAFF)
    assert "nutrition" in nutrition_card.args["blocks"][0]["text"]["text"]

    thread = training_card.response["ts"]
    await expert_replies(bot, "bob", TRAINING, thread, "Six, then rest.")
    to_alice = [call for call in bot.fake.calls_to("chat.postMessage")
                if call.args.get("channel") in (dm_channel("alice"), user_id("alice"))]
    assert [call.args["text"] for call in to_alice] == ["Six, then rest."]

    # The member's follow-up joins the thread in the training channel.
    await driver.member_writes("alice", "And the rest?")
    await driver.settle()
    follow_ups = [call for call in bot.fake.calls_to("chat.postMessage") if call.args.get("thread_ts") == thread]
    assert [(call.args["channel"], call.args["text"]) for call in follow_ups] == [(TRAINING, "alice: And the rest?")]

    # Slash commands in the specialty channel work as in the staff channel.
    number = SlackDriver._buttons(training_card)[0]["value"]  # the conversation number, as on the card
    key = await bot.post_command(user_id("bob"), TRAINING, f"close {number}")
    await bot.settle()
    assert "closed" in bot.fake.responses_to(key)[0]["text"].lower()
    stored = await bot.runtime.db.run(lambda session: session.get(Conversation, int(number)))
    assert (stored.status, stored.staff_channel) == ("closed", TRAINING)


async def test_top_level_chatter_in_a_specialty_channel_is_not_relayed(training_bot):
    bot, driver = training_bot, SlackDriver(training_bot)
    await driver.command("admin", f"expert add {driver.mention('bob')} training bob")
    before = len(bot.fake.calls_to("chat.postMessage"))
    ts = f"{time.time():.6f}"
    await bot.post_event({"type": "message", "channel": TRAINING, "user": user_id("bob"), "text": "coffee?",
                          "ts": ts, "event_ts": ts, "channel_type": "channel"})
    await bot.settle()
    assert len(bot.fake.calls_to("chat.postMessage")) == before


async def test_the_doctor_checks_every_specialty_channel(fake_slack):
    fake_slack.channels[STAFF] = Channel(STAFF, "concierge-staff")
    fake_slack.channels[TRAINING] = Channel(TRAINING, "training-desk", is_member=False)
    settings = core_settings("sqlite:///unused.db", specialty_channels={"training": TRAINING, "nutrition": STAFF})
    [problem] = await find_problems(settings, slack_settings(fake_slack))
    assert "not in the staff channel #training-desk" in problem
    fake_slack.channels[TRAINING].is_member = True
    assert await find_problems(settings, slack_settings(fake_slack)) == []

    named = core_settings("sqlite:///unused.db", specialty_channels={"physio": "physio-desk"})
    [problem] = await find_problems(named, slack_settings(fake_slack))
    assert problem.startswith("CONCIERGE_SPECIALTY_CHANNELS (physio)='physio-desk' is not a channel id")
