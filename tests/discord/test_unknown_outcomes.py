"""Unknown outcomes are checked, not repeated: a post Discord took but answered with an error (as when
the bot is killed between Discord accepting a post and the outcome being recorded) reaches its
reader once, by the post's nonce (a retry within minutes gets the first message back) or, later,
by `find_sent` (the outbox asks before sending again). SQLite and PostgreSQL.
"""

from __future__ import annotations

import aiohttp
import discord
import pytest
from sqlmodel import select

from adapters.discord.errors import neutral_error
from adapters.discord.part_matching import NONCE_CHARS
from concierge.platform import Address, Outbound, PlatformDown
from concierge.records import OutboxItem
from tests.discord.fake_discord import NONCE_WINDOW
from tests.support.discord import assert_nobody_pinged, open_conversation

PAST_THE_NONCE_WINDOW = NONCE_WINDOW.total_seconds() + 60


async def outbox(world, *where):  # noqa: ANN001, ANN201
    return await world.bot.runtime.db.run(lambda session: list(session.exec(
        select(OutboxItem).where(*where).order_by(OutboxItem.id)).all()))


async def test_a_post_discord_took_but_answered_500_is_not_doubled(world):
    thread = await open_conversation(world)
    dm = world.dm_channel("alice")
    world.fake.accept_then_fail("POST", rf"/channels/{dm}/messages", 500)
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()  # discord.py tries a 500 again itself, with the same nonce
    assert world.dms("alice") == ["Yes, an hour before."]
    first, again = world.fake.calls_to("POST", rf"/channels/{dm}/messages")
    assert first.json["nonce"] == again.json["nonce"] and len(first.json["nonce"]) <= NONCE_CHARS
    assert first.json["enforce_nonce"] is True
    [item] = await outbox(world, OutboxItem.address["channel"].as_string() == str(dm))
    assert item.status == "sent" and item.sent_message_id == world.fake.posts_in(dm)[0]["id"]


async def test_a_lost_outcome_is_checked_with_discord_before_sending_again(world, clock):
    thread = await open_conversation(world)
    dm = world.dm_channel("alice")
    world.fake.accept_then_fail("POST", rf"/channels/{dm}/messages", 503)  # discord.py does not retry a 503
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    assert world.dms("alice") == ["Yes, an hour before."], "Discord took it"
    clock.advance(PAST_THE_NONCE_WINDOW)  # the nonce would not help any more
    await world.settle()
    assert world.dms("alice") == ["Yes, an hour before."]
    assert len(world.fake.calls_to("POST", rf"/channels/{dm}/messages")) == 1, "found, not sent again"
    assert world.fake.calls_to("GET", rf"/channels/{dm}/messages"), "the outbox asked Discord first"
    items = await outbox(world, OutboxItem.address["channel"].as_string() == str(dm))
    assert [(item.status, item.sent_message_id) for item in items] == [("sent", world.fake.posts_in(dm)[0]["id"])]


async def test_an_identical_older_answer_is_not_taken_for_the_lost_one(world, clock):
    thread = await open_conversation(world)
    dm = world.dm_channel("alice")
    await world.write_in_thread("bob", thread, "Noted.")
    await world.settle()
    await world.dm("alice", "Also, is tea fine?")  # alice wrote after the first "Noted."
    await world.settle()
    world.fake.fail("POST", rf"/channels/{dm}/messages", 503)  # this time Discord did not take it
    await world.write_in_thread("bob", thread, "Noted.")
    await world.settle()
    clock.advance(PAST_THE_NONCE_WINDOW)
    await world.settle()
    assert world.dms("alice") == ["Noted.", "Noted."]


async def test_a_card_discord_took_but_answered_503_gets_one_thread(world, clock):
    await open_conversation(world)
    staff = world.fake.staff_channel_id
    await world.slash("admin", f"member add <@{world.user_id('carol')}> premium carol")
    world.fake.accept_then_fail("POST", rf"/channels/{staff}/messages", 503)
    await world.dm("carol", "Hello from carol")
    await world.settle()
    clock.advance(PAST_THE_NONCE_WINDOW)
    await world.settle()
    [card] = [message for message in world.fake.posts_in(staff) if message["content"].endswith("\nHello from carol")]
    assert int(card["id"]) in world.fake.threads, "the thread was opened on the card Discord had taken"
    await world.write_in_thread("bob", int(card["id"]), "Welcome, carol.")
    await world.settle()
    assert world.dms("carol") == ["Welcome, carol."]


async def test_sending_the_same_outbox_message_twice_posts_it_once(world):
    channel = str(world.fake.staff_channel_id)
    message = Outbound("Hello", idempotency_key="outbox:42")
    first = await world.bot.platform.send(Address("discord", channel), message)
    again = await world.bot.platform.send(Address("discord", channel), message)
    assert first == again and len(world.fake.posts_in(int(channel))) == 1
    other = await world.bot.platform.send(Address("discord", channel), Outbound("Hello", idempotency_key="outbox:43"))
    assert other.message_id != first.message_id, "another outbox message is another post"


async def test_a_word_to_staff_is_a_plain_post_in_their_thread_that_pings_nobody(world):
    thread = await open_conversation(world)
    message = await world.write_in_thread("mallory", thread, "I can answer that!")
    [told] = [post for post in world.fake.posts_in(thread) if int(post["id"]) > int(message["id"])]
    assert told["content"] == "Only experts can answer members; your message was not relayed."
    assert "message_reference" not in told and "nonce" not in told
    assert_nobody_pinged(world.fake, paged=[world.user_id("bob")])


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "reason"
        self.headers: dict[str, str] = {}


@pytest.mark.parametrize("error, unknown", [
    (discord.DiscordServerError(_Response(500), {"message": "500", "code": 0}), True),
    (discord.DiscordServerError(_Response(503), {"message": "503", "code": 0}), True),
    (TimeoutError(), True),
    (aiohttp.ServerDisconnectedError(), True),
    (discord.Forbidden(_Response(403), {"message": "Missing Access", "code": 50001}), False),
    (discord.HTTPException(_Response(401), {"message": "401: Unauthorized", "code": 0}), False),
    (ConnectionRefusedError(111, "Connection refused"), False),
], ids=["500", "503", "timeout", "disconnected", "403", "401", "refused"])
def test_an_error_after_which_discord_may_have_done_it_is_an_unknown_outcome(error, unknown):
    neutral = neutral_error(error)
    assert isinstance(neutral, PlatformDown) and neutral.outcome_unknown is unknown


async def test_a_discord_nobody_answers_is_down_with_a_known_outcome(world):
    base = discord.http.Route.BASE
    discord.http.Route.BASE = "http://127.0.0.1:9/api/v10"  # nothing listens on the discard port
    try:
        with pytest.raises(PlatformDown) as raised:
            await world.bot.platform.send(Address("discord", str(world.fake.staff_channel_id)), Outbound("hi"))
    finally:
        discord.http.Route.BASE = base
    assert raised.value.outcome_unknown is False, "the connection was refused: nothing arrived"
