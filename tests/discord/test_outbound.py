"""Messages out: the Platform port on discord.py's HTTP client against the loopback fake of Discord."""

from __future__ import annotations

import discord
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.discord.cards import card_embed, card_view
from adapters.discord.dm_channels import DmChannels
from adapters.discord.limits import split_message
from concierge.platform import Address, Button, Card, MessageRef, Outbound, PlatformDown, RateLimited, Unreachable
from tests.conftest import make_settings
from tests.discord.fake_discord import Thread
from tests.discord.harness import DiscordWorld
from tests.support.discord import assert_nobody_pinged, open_conversation

# Splitting.

def test_a_long_text_is_split_on_line_boundaries_in_order():
    lines = [f"line {n} " + "x" * 90 for n in range(60)]  # 60 lines of ~98 characters
    parts = split_message("\n".join(lines))
    assert all(len(part) <= 2000 for part in parts)
    assert "\n".join(parts).split("\n") == lines
    assert all(part.split("\n")[0].startswith("line ") for part in parts), "no line is cut"


def test_a_line_longer_than_the_limit_is_cut_at_a_space():
    text = "word " * 1000
    parts = split_message(text.strip(), 2000)
    assert all(len(part) <= 2000 for part in parts)
    assert " ".join(parts).split() == text.split()


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=300), st.integers(min_value=5, max_value=40))
def test_splitting_keeps_every_word_in_order_within_the_limit(text, limit):
    parts = split_message(text, limit)
    assert all(0 < len(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


# Through the outbox, as the core sends.

async def test_a_long_expert_reply_reaches_the_member_in_parts_in_order(world):
    thread = await open_conversation(world)
    lines = [f"{n}. " + "y" * 896 for n in range(1, 4)]  # 2,700 characters on 3 lines
    await world.write_in_thread("bob", thread, "\n".join(lines))
    await world.settle()
    assert world.dms("alice") == ["\n".join(lines[:2]), lines[2]]
    assert_nobody_pinged(world.fake, paged=[world.user_id("bob")])


async def test_a_long_first_question_continues_inside_the_new_thread(world):
    lines = [f"{n}. " + "q" * 996 for n in range(1, 4)]  # 3,000 characters
    thread = await open_conversation(world, "\n".join(lines))
    texts = world.thread_texts(thread)
    assert len(texts) == 2 and all(len(text) <= 2000 for text in texts)
    assert "\n".join(texts).split("\n") == [f"<@{world.user_id('bob')}>", *lines], "the page opens the card"


async def test_a_member_with_closed_dms_is_reported_in_the_thread(world):
    thread = await open_conversation(world)
    dm = world.dm_channel("alice")
    world.fake.fail("POST", rf"/channels/{dm}/messages", 403,
                    {"message": "Cannot send messages to this user", "code": 50007}, times=5)
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    assert world.dms("alice") == []
    assert len(world.fake.calls_to("POST", rf"/channels/{dm}/messages")) == 1, "a permanent failure is not retried"
    report = world.thread_texts(thread)[-1]
    assert report.startswith("Could not deliver to the member: cannot send messages to this user")
    assert "50007" in report


async def test_a_rate_limit_sends_the_message_back_to_the_outbox_until_retry_after(world, clock):
    thread = await open_conversation(world)
    dm = world.dm_channel("alice")
    world.fake.rate_limit("POST", rf"/channels/{dm}/messages", retry_after=120.0)
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    assert world.dms("alice") == []
    clock.advance(60)
    await world.settle()
    assert len(world.fake.calls_to("POST", rf"/channels/{dm}/messages")) == 1, "no retry before retry_after"
    clock.advance(61)
    await world.settle()
    assert world.dms("alice") == ["Yes, an hour before."]


async def test_a_discord_outage_is_retried_with_backoff(world, clock):
    thread = await open_conversation(world)
    dm = world.dm_channel("alice")
    world.fake.fail("POST", rf"/channels/{dm}/messages", 503, {"message": "upstream unavailable", "code": 0})
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    assert world.dms("alice") == []
    clock.advance(5)
    await world.settle()
    assert world.dms("alice") == ["Yes, an hour before."]


@pytest.mark.parametrize("status, body, headers, expected", [
    (403, {"message": "Cannot send messages to this user", "code": 50007}, {}, Unreachable),
    (404, {"message": "Unknown Channel", "code": 10003}, {}, Unreachable),
    (404, {"message": "Unknown User", "code": 10013}, {}, Unreachable),
    (400, {"message": "No mutual guilds", "code": 50278}, {}, Unreachable),
    (400, {"message": "Invalid Form Body", "code": 50035}, {}, Unreachable),
    (403, {"message": "Missing Permissions", "code": 50013}, {}, PlatformDown),
    (401, {"message": "401: Unauthorized", "code": 0}, {}, PlatformDown),
    (503, {"message": "Service Unavailable", "code": 0}, {}, PlatformDown),
    (400, {"message": "You are opening direct messages too fast.", "code": 40003}, {}, RateLimited),
    (429, {"message": "You are being rate limited.", "retry_after": 300.0, "global": False},
     {"Via": "1.1 google"}, RateLimited),
    (429, {"message": "banned for a while"}, {"Retry-After": "900"}, RateLimited),  # Cloudflare, not Discord
], ids=lambda value: str(value) if isinstance(value, int) else None)
async def test_discord_errors_become_the_cores_neutral_errors(fake, status, body, headers, expected):
    world = DiscordWorld(fake, make_settings("sqlite://", staff_channel=str(fake.staff_channel_id)), clock=None,
                         sync_commands=False)
    await world.start()
    try:
        channel = str(fake.staff_channel_id)
        fake.fail("POST", rf"/channels/{channel}/messages", status, body, headers=headers)
        with pytest.raises(expected) as raised:
            await world.bot.platform.send(Address("discord", channel), Outbound("hello"))
        if expected is RateLimited:
            assert raised.value.retry_after == {429: body.get("retry_after", 900.0), 400: 60.0}[status]
        assert len(fake.calls_to("POST", rf"/channels/{channel}/messages")) == 1, "discord.py did not retry"
    finally:
        await world.stop()


async def test_an_unreachable_discord_is_platform_down(world):
    world_base = discord.http.Route.BASE
    discord.http.Route.BASE = "http://127.0.0.1:9/api/v10"  # nothing listens on the discard port
    try:
        with pytest.raises(PlatformDown):
            await world.bot.platform.send(Address("discord", str(world.fake.staff_channel_id)), Outbound("hi"))
    finally:
        discord.http.Route.BASE = world_base


async def test_a_thread_that_cannot_be_opened_takes_its_card_back(world, clock):
    await open_conversation(world)
    staff = world.fake.staff_channel_id
    world.fake.fail("POST", rf"/channels/{staff}/messages/\d+/threads", 403,
                    {"message": "Missing Permissions", "code": 50013})
    await world.slash("admin", f"member add <@{world.user_id('carol')}> premium carol")
    await world.dm("carol", "Hello from carol")
    await world.settle()
    cards = [message for message in world.fake.posts_in(staff) if message["content"].endswith("\nHello from carol")]
    assert cards == [], "the card without a thread was deleted"
    clock.advance(5)
    await world.settle()
    cards = [message for message in world.fake.posts_in(staff) if message["content"].endswith("\nHello from carol")]
    assert len(cards) == 1 and int(cards[0]["id"]) in world.fake.threads


async def test_a_thread_opened_by_a_lost_answer_is_not_opened_twice(world, clock):
    await open_conversation(world)
    staff = world.fake.staff_channel_id
    world.fake.fail("POST", rf"/channels/{staff}/messages/\d+/threads", 503, {"message": "timeout", "code": 0})
    await world.slash("admin", f"member add <@{world.user_id('carol')}> premium carol")
    await world.dm("carol", "Hello from carol")
    await world.settle()
    [card] = [message for message in world.fake.posts_in(staff) if message["content"].endswith("\nHello from carol")]
    # Discord did open the thread; only its answer was lost.
    card_id = int(card["id"])
    world.fake.threads[card_id] = Thread(world.fake.thread_payload(card_id, staff, "carol", 10080))
    clock.advance(5)
    await world.settle()
    assert [message["id"] for message in world.fake.posts_in(staff) if message["content"].endswith("\nHello from carol")] == [
        card["id"]], "no second card"
    await world.write_in_thread("bob", card_id, "Welcome, carol.")
    await world.settle()
    assert world.dms("carol") == ["Welcome, carol."]


# Paging: exactly the users the core names in `Outbound.mentions`, nobody else.

async def test_a_new_conversations_card_pages_the_on_duty_expert_and_nobody_else(world):
    thread = await open_conversation(world)
    bob = world.user_id("bob")
    staff = world.fake.staff_channel_id
    [card_post] = [call for call in world.fake.calls_to("POST", rf"/channels/{staff}/messages")
                   if f"<@{bob}>" in (call.json.get("content") or "")]
    assert card_post.json["allowed_mentions"]["users"] == [bob]
    assert card_post.json["allowed_mentions"]["parse"] == []
    assert not card_post.json["allowed_mentions"].get("replied_user")
    assert f"<@{bob}>" in world.card_of(thread)["content"]
    assert_nobody_pinged(world.fake, paged=[bob])


async def test_a_members_everyone_stays_inert(world):
    thread = await open_conversation(world)
    await world.dm("alice", "@everyone <@&1> <@1> help!")
    await world.settle()
    [relayed] = [call for call in world.fake.calls_to("POST", rf"/channels/{thread}/messages")
                 if "@everyone" in (call.json.get("content") or "")]
    assert relayed.json["allowed_mentions"] == {"parse": []}
    assert_nobody_pinged(world.fake, paged=[world.user_id("bob")])


async def test_only_the_first_part_of_a_long_paging_message_may_ping(world):
    bob = world.user_id("bob")
    staff = Address("discord", str(world.fake.staff_channel_id))
    text = "\n".join(f"{n}. " + "z" * 996 for n in range(1, 4)) + f"\nquoting <@{bob}>"
    await world.bot.platform.send(staff, Outbound(text, mentions=(str(bob), str(bob), "not-an-id")))
    calls = world.fake.calls_to("POST", rf"/channels/{staff.channel}/messages")
    assert len(calls) > 1 and f"quoting <@{bob}>" in calls[-1].json["content"]
    assert [call.json["allowed_mentions"].get("users") for call in calls] == [[bob]] + [None] * (len(calls) - 1)
    assert calls[0].json["content"].startswith(f"<@{bob}>\n1. ")


async def test_an_edit_keeps_the_page_and_allows_only_the_paged(world):
    bob = world.user_id("bob")
    platform = world.bot.platform
    staff = Address("discord", str(world.fake.staff_channel_id))
    ref = await platform.send(staff, Outbound("Waiting 5h @everyone", mentions=(str(bob),)))
    await platform.edit(ref, Outbound("Waiting 5h, claimed @everyone", mentions=(str(bob),)))
    [edit] = world.fake.calls_to("PATCH", rf"/channels/{staff.channel}/messages/\d+")
    assert edit.json["content"] == f"<@{bob}>\nWaiting 5h, claimed @everyone"
    assert edit.json["allowed_mentions"] == {"users": [bob], "parse": []}


# The port's other methods.

async def test_open_dm_remembers_channels_and_reuses_those_members_wrote_from(world):
    platform = world.bot.platform
    await world.dm("alice", "hello")
    alice = await platform.open_dm(Address("discord", user=str(world.user_id("alice"))))
    assert alice.channel == str(world.dm_channel("alice"))
    carol = Address("discord", user=str(world.user_id("carol")))
    first = await platform.open_dm(carol)
    again = await platform.open_dm(carol)
    assert first == again and first.channel == str(world.dm_channel("carol"))
    opened = world.fake.calls_to("POST", "/users/@me/channels")
    assert [call.json["recipient_id"] for call in opened] == [world.user_id("carol")]


async def test_a_message_to_a_user_opens_their_dm_first(world):
    ref = await world.bot.platform.send(Address("discord", user=str(world.user_id("carol"))), Outbound("Your digest"))
    assert ref.address.channel == str(world.dm_channel("carol"))
    assert world.dms("carol") == ["Your digest"]


async def test_opening_new_dms_is_spaced_out():
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def open_channel(user: str) -> str:
        return f"dm-{user}"

    channels = DmChannels(interval_s=1.0, max_wait_s=5.0, clock=lambda: now[0], sleep=sleep)
    assert await channels.channel_of("1", open_channel) == "dm-1"
    assert await channels.channel_of("2", open_channel) == "dm-2"
    assert await channels.channel_of("1", open_channel) == "dm-1"  # remembered: no wait, no call
    assert slept == [1.0] and channels.opened == 2
    channels.interval_s = 60.0
    await channels.channel_of("3", open_channel)
    with pytest.raises(RateLimited) as limited:
        await channels.channel_of("4", open_channel)
    assert limited.value.retry_after == pytest.approx(60.0)


async def test_edit_replaces_a_card_in_the_channel_and_a_post_in_its_thread(world):
    platform = world.bot.platform
    staff = Address("discord", str(world.fake.staff_channel_id))
    card = Card("carol, premium, general", (("Tier", "premium"),), (Button("Claim", "claim", "9", "primary"),))
    opened = await platform.open_thread(staff, Outbound("Question", card))
    post = await platform.send(opened.address, Outbound("first"))
    await platform.edit(opened, Outbound("Question (claimed)", Card("carol, claimed", (), ())))
    await platform.edit(post, Outbound("first, corrected @everyone"))
    starter = world.fake.messages[int(opened.message_id)]
    assert int(starter["channel_id"]) == world.fake.staff_channel_id
    assert starter["content"] == "Question (claimed)" and starter["components"] == []
    assert starter["embeds"][0]["title"] == "carol, claimed"
    assert world.fake.messages[int(post.message_id)]["content"] == "first, corrected @everyone"
    assert_nobody_pinged(world.fake)


async def test_edit_of_a_deleted_message_is_permanent(world):
    ref = MessageRef(Address("discord", str(world.fake.staff_channel_id)), str(world.fake.new_id()))
    with pytest.raises(Unreachable):
        await world.bot.platform.edit(ref, Outbound("nothing there"))


def test_a_card_fits_discords_embed_and_button_limits():
    card = Card("t" * 300, tuple((f"field {n} " + "n" * 300, "v" * 2000) for n in range(30)),
                (Button("Claim", "claim", "12345", "primary"), Button("Close" * 30, "close", "12345", "danger")))
    embed = card_embed(card)
    assert len(embed.title) == 256 and len(embed) <= 6000
    assert all(len(field.name) <= 256 and len(field.value) <= 1024 for field in embed.fields)
    view = card_view(card)
    assert [item.custom_id for item in view.children] == ["concierge:claim:12345", "concierge:close:12345"]
    assert all(len(item.item.label) <= 80 for item in view.children) and view.timeout is None
