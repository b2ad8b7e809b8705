"""CONCIERGE_SPECIALTY_CHANNELS on Discord, through gateway events and the fake REST API: a specialty's
thread opens in its own channel, replies there reach the member, and the checks cover every channel."""

from __future__ import annotations

import pytest

from adapters.discord.bot import startup_problems
from adapters.discord.cli import find_problems
from adapters.discord.settings import DiscordSettings
from tests.conftest import make_settings
from tests.discord.conftest import discord_settings_for
from tests.discord.fake_discord import answer_text, is_private
from tests.discord.harness import DiscordWorld, custom_ids
from tests.support.discord import enrol


@pytest.fixture
async def training(fake, database_url, clock):
    """A bot whose training questions go to their own channel `training-desk`; (world, its channel id)."""
    channel = fake.add_text_channel("training-desk")
    admin, settings = discord_settings_for(fake, database_url, specialty_channels={"training": str(channel)})
    world = DiscordWorld(fake, settings, clock)
    world.people["admin"] = admin
    await world.start()
    try:
        yield world, channel
    finally:
        await world.stop()


def threads_in(world: DiscordWorld, channel: int) -> list[int]:
    return [thread_id for thread_id, thread in world.fake.threads.items()
            if int(thread.payload["parent_id"]) == channel]


async def test_a_specialty_thread_opens_in_its_channel_and_replies_there_reach_the_member(training):
    world, channel = training
    await enrol(world, "alice", "dora", specialties="training,nutrition")
    await world.dm("alice", "A training question: how many intervals?")
    await world.dm("dora", "A nutrition question: how many eggs?")
    await world.settle()

    [thread] = threads_in(world, channel)
    card = world.card_of(thread)
    assert int(card["channel_id"]) == channel
    assert card["embeds"][0]["title"] == "alice, premium, training"
    assert card["content"].startswith(f"<@{world.user_id('bob')}>"), "the expert on duty is paged there"
    assert world.fake.calls_to("POST", rf"/channels/{channel}/messages/{thread}/threads")
    [other] = world.fake.staff_threads()
    assert world.card_of(other)["embeds"][0]["title"] == "dora, premium, nutrition"

    await world.write_in_thread("bob", thread, "Six, then rest.")
    await world.settle()
    assert world.dms("alice") == ["Six, then rest."]
    await world.dm("alice", "And the rest?")
    await world.settle()
    assert world.thread_texts(thread)[-1] == "alice: And the rest?"

    # Commands and card buttons in the specialty channel's thread work as in the staff channel.
    claimed = await world.slash("bob", "claim", thread_id=thread)
    assert answer_text(claimed) == "You already have conversation 1."  # answering claimed it
    assert "concierge:claim:1" not in custom_ids(world.card_of(thread)), "the card dropped Claim"
    closed = await world.press("bob", thread, "concierge:close:1")
    assert is_private(closed) and "closed" in answer_text(closed)
    await world.settle()
    assert any("Closed by bob" in text for text in world.thread_texts(thread))


async def test_a_topic_picked_with_the_buttons_opens_in_its_channel(training):
    world, channel = training
    await world.slash("admin", f"member add <@{world.user_id('alice')}> premium alice")
    await world.slash("admin", f"expert add <@{world.user_id('bob')}> nutrition bob")
    await world.slash("admin", f"expert add <@{world.user_id('carol')}> training carol")
    await world.dm("alice", "Is coffee fine before a long run?")
    await world.settle()
    assert world.fake.threads == {}
    [picker] = [post for post in world.fake.posts_in(world.dm_channel("alice")) if custom_ids(post)]
    answer = await world.press("alice", int(picker["id"]), "concierge:topic:1:training")
    assert answer_text(answer) == "Thank you: your question is with our training experts."
    await world.settle()
    [thread] = threads_in(world, channel)
    assert world.fake.staff_threads() == []
    await world.write_in_thread("carol", thread, "Yes, an hour before.")
    await world.settle()
    assert world.dms("alice")[-1] == "Yes, an hour before."


async def test_chatter_in_a_specialty_channel_outside_threads_is_not_relayed(training):
    world, channel = training
    await enrol(world, "alice", "dora", specialties="training,nutrition")
    message = await world.write_in_thread("bob", channel, "coffee, anyone?")  # the channel itself
    await world.settle()
    assert world.bot_posts_after(message) == [] and world.dms("alice") == []


async def test_startup_and_doctor_check_every_specialty_channel(training):
    world, channel = training
    assert await find_problems(world.settings, world.discord_settings) == []
    missing = world.settings.model_copy(update={"specialty_channels": {"training": str(channel),
                                                                       "physio": str(world.fake.new_id())}})
    [problem] = await find_problems(missing, world.discord_settings)
    assert "is not in server 'Peak Club'" in problem
    named = make_settings("sqlite://", staff_channel="123", specialty_channels={"physio": "physio-desk"})
    assert startup_problems(named, DiscordSettings(_env_file=None, token="t", guild_id=1)) == [
        "CONCIERGE_SPECIALTY_CHANNELS must give channel ids, not 'physio-desk' for physio "
        "(right-click the channel > Copy Channel ID)."]
