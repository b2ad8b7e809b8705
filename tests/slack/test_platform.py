"""SlackPlatform against the fake Web API: rendering, DMs, threads, edits, and Slack errors made neutral."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from sqlmodel import select

from adapters.slack.platform import SlackPlatform
from adapters.slack.server import web_client
from concierge.platform import (
    Address,
    Button,
    Card,
    MessageRef,
    Outbound,
    PlatformDown,
    RateLimited,
    Unreachable,
)
from concierge.records import OutboxItem
from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel
from tests.slack.harness import STAFF, slack_settings

CARD = Outbound(
    "Can I eat <b>eggs</b> & bacon? <!channel>",
    Card("alice, premium, nutrition", (("Member", "alice <admin>"), ("Tier", "premium")),
         (Button("Claim", "claim", "7", "primary"), Button("Close", "close", "7", "danger"))),
)


@pytest.fixture
async def platform(fake_slack):
    async with aiohttp.ClientSession() as session:
        yield SlackPlatform(web_client(slack_settings(fake_slack), session))


async def test_open_thread_posts_a_block_kit_card_and_names_the_thread(platform, fake_slack):
    ref = await platform.open_thread(Address("slack", STAFF), CARD)
    call = fake_slack.calls_to("chat.postMessage")[-1]
    assert ref == MessageRef(Address("slack", STAFF, "", call.response["ts"]), call.response["ts"])
    assert call.args["text"] == "alice, premium, nutrition: Can I eat &lt;b&gt;eggs&lt;/b&gt; &amp; bacon? &lt;!channel&gt;"
    kinds = [block["type"] for block in call.args["blocks"]]
    assert kinds == ["header", "section", "section", "actions", "context"]
    header, question, fields, actions, hint = call.args["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "alice, premium, nutrition"}
    assert question["text"]["text"] == "Can I eat &lt;b&gt;eggs&lt;/b&gt; &amp; bacon? &lt;!channel&gt;"
    assert fields["fields"][0]["text"] == "*Member*\nalice &lt;admin&gt;"
    assert [(b["text"]["text"], b["value"], b["style"]) for b in actions["elements"]] == [
        ("Claim", "7", "primary"), ("Close", "7", "danger")]
    assert len({b["action_id"] for b in actions["elements"]}) == 2
    # Slash commands carry no thread: the card says how to type its buttons as commands.
    assert "`/concierge claim 7` \u00b7 `/concierge close 7`" in hint["elements"][0]["text"]


async def test_send_into_a_thread_and_to_a_dm(platform, fake_slack):
    thread = await platform.open_thread(Address("slack", STAFF), CARD)
    posted = await platform.send(thread.address, Outbound("alice: thanks"))
    assert fake_slack.calls_to("chat.postMessage")[-1].args["thread_ts"] == thread.address.thread
    assert posted.address.thread == thread.address.thread

    dm = await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("Hello"))
    assert dm.address.channel == "DALICE" and "thread_ts" not in fake_slack.calls_to("chat.postMessage")[-1].args


async def test_a_dm_by_user_id_alone_opens_the_conversation_first(platform, fake_slack):
    ref = await platform.send(Address("slack", user="UCAROL"), Outbound("Welcome"))
    assert [call.method for call in fake_slack.calls[-2:]] == ["conversations.open", "chat.postMessage"]
    assert ref.address.channel == "DCAROL"
    assert await platform.open_dm(Address("slack", user="UDAN")) == Address("slack", "DDAN", "UDAN")


async def test_edit_updates_the_message(platform, fake_slack):
    ref = await platform.open_thread(Address("slack", STAFF), CARD)
    await platform.edit(ref, Outbound("closed", Card("alice, premium, nutrition (closed)")))
    call = fake_slack.calls_to("chat.update")[-1]
    assert (call.args["channel"], call.args["ts"]) == (STAFF, ref.message_id)
    assert call.args["blocks"][0]["text"]["text"] == "alice, premium, nutrition (closed)"


async def test_429_is_rate_limited_with_retry_after(platform, fake_slack):
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    with pytest.raises(RateLimited) as raised:
        await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("Hello"))
    assert raised.value.retry_after == 30


@pytest.mark.parametrize(
    "failure",
    [dict(status=429), dict(error="ratelimited"), dict(status=500, error="internal_error"),
     dict(status=503, error="service_unavailable"), dict(error="fatal_error"), dict(error="invalid_auth"),
     dict(error="missing_scope")],
    ids=["429-without-retry-after", "ratelimited-without-header", "500", "503", "fatal_error", "invalid_auth",
         "missing_scope"],
)
async def test_transient_and_setup_failures_are_platform_down(platform, fake_slack, failure):
    fake_slack.fail("chat.postMessage", **failure)
    with pytest.raises(PlatformDown):
        await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("Hello"))


@pytest.mark.parametrize("error", ["channel_not_found", "user_not_found", "is_archived", "cannot_dm_bot",
                                   "user_disabled", "account_inactive", "not_in_channel", "msg_too_long"])
async def test_gone_recipients_and_refused_messages_are_unreachable(platform, fake_slack, error):
    fake_slack.fail("chat.postMessage", error=error)
    with pytest.raises(Unreachable, match=error):
        await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("Hello"))


async def test_a_429_waits_for_retry_after_then_delivers_once(bot, fake_slack, clock):
    driver = SlackDriver(bot)
    await setup_desk(driver)
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    await driver.member_writes("alice", "How much protein after a run?")
    await driver.settle()
    assert driver.threads() == []
    clock.advance(29)
    await driver.settle()
    assert driver.threads() == []
    clock.advance(2)
    await driver.settle()
    assert len(driver.threads()) == 1
    attempts = fake_slack.calls_to("chat.postMessage", ok_only=False)
    assert [call.status for call in attempts] == [429, 200]
    items = await bot.runtime.db.run(lambda session: session.exec(select(OutboxItem)).all())
    assert [(item.status, item.attempts) for item in items] == [("sent", 0)]


async def test_a_member_who_left_is_reported_in_the_thread(bot, fake_slack):
    driver = SlackDriver(bot)
    await setup_desk(driver)
    await driver.member_writes("alice", "How much protein after a run?")
    await driver.settle()
    thread = driver.threads()[0]
    fake_slack.fail("chat.postMessage", error="user_not_found", times=None,
                    when=lambda args: args.get("channel") == dm_channel("alice"))
    await driver.staff_writes("bob", thread, "About 20 g.")
    await driver.settle()
    assert driver.dms("alice") == []
    assert driver.thread_texts(thread)[-1] == (
        "Could not deliver to the member: Slack refused chat.postMessage: the Slack user no longer exists "
        "(user_not_found)")


@pytest.mark.parametrize(
    ("failure", "unknown"),
    [(dict(status=500, error="internal_error"), True), (dict(status=503, error="service_unavailable"), True),
     (dict(error="fatal_error"), True), (dict(status=429), False), (dict(error="ratelimited"), False),
     (dict(error="invalid_auth"), False), (dict(error="missing_scope"), False)],
    ids=["500", "503", "fatal_error", "429-without-retry-after", "ratelimited", "invalid_auth", "missing_scope"],
)
async def test_platform_down_says_whether_the_post_may_have_arrived(platform, fake_slack, failure, unknown):
    fake_slack.fail("chat.postMessage", **failure)
    with pytest.raises(PlatformDown) as raised:
        await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("Hello"))
    assert raised.value.outcome_unknown is unknown


async def test_an_unreachable_slack_is_platform_down_and_certainly_sent_nothing():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        from adapters.slack.settings import SlackSettings

        settings = SlackSettings(_env_file=None, bot_token="xoxb-x", api_url=f"http://127.0.0.1:{port}/api/")
        platform = SlackPlatform(web_client(settings, session))
        with pytest.raises(PlatformDown) as raised:
            await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("Hello"))
    assert raised.value.outcome_unknown is False


async def test_a_dropped_connection_may_have_posted_and_is_not_sent_again_blindly():
    """Slack read the request and the connection dropped before the answer: the SDK must not post again."""
    requests = []

    async def read_then_hang_up(reader, writer):
        requests.append(await reader.read(65536))
        writer.close()

    listener = await asyncio.start_server(read_then_hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            from adapters.slack.settings import SlackSettings

            settings = SlackSettings(_env_file=None, bot_token="xoxb-x", api_url=f"http://127.0.0.1:{port}/api/")
            platform = SlackPlatform(web_client(settings, session))
            with pytest.raises(PlatformDown) as raised:
                await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("Hello", idempotency_key="k1"))
    finally:
        listener.close()
        await listener.wait_closed()
    assert raised.value.outcome_unknown is True
    assert len(requests) == 1, "the post was sent twice"


async def test_find_sent_returns_the_ref_send_and_open_thread_returned(platform, fake_slack):
    card = Outbound("a card", idempotency_key="outbox-1")
    opened = await platform.open_thread(Address("slack", STAFF), card)
    reply = Outbound("in the thread", idempotency_key="outbox-2")
    posted = await platform.send(opened.address, reply)
    dm = Outbound("to alice", idempotency_key="outbox-3")
    sent = await platform.send(Address("slack", user="UALICE"), dm)
    assert fake_slack.calls_to("chat.postMessage")[0].args["metadata"] == {
        "event_type": "concierge_send", "event_payload": {"key": "outbox-1"}}
    assert await platform.find_sent(Address("slack", STAFF), card, opens_thread=True) == opened
    assert await platform.find_sent(opened.address, reply) == posted
    assert await platform.find_sent(Address("slack", user="UALICE"), dm) == sent
    # Not there: another key, a person's message with the same text, a message without a key.
    fake_slack.write("DALICE", "UALICE", "to alice")
    assert await platform.find_sent(Address("slack", "DALICE", "UALICE"), Outbound("to alice", idempotency_key="x")) is None
    assert await platform.find_sent(opened.address, Outbound("in the thread", idempotency_key="outbox-1")) is None
    assert await platform.find_sent(Address("slack", "DALICE", "UALICE"), Outbound("to alice")) is None
    await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("no key"))
    assert "metadata" not in fake_slack.calls_to("chat.postMessage")[-1].args


async def test_find_sent_reads_a_long_thread_to_its_end(platform, fake_slack):
    fake_slack.max_page = 3
    opened = await platform.open_thread(Address("slack", STAFF), Outbound("card", idempotency_key="c"))
    for n in range(10):
        await platform.send(opened.address, Outbound(f"reply {n}", idempotency_key=f"r{n}"))
    found = await platform.find_sent(opened.address, Outbound("reply 9", idempotency_key="r9"))
    assert found is not None and found.message_id == fake_slack.history(STAFF)[-1]["ts"]


async def test_find_sent_looks_through_the_newest_fifty_messages_of_a_channel(platform, fake_slack):
    fake_slack.max_page = 15  # as Slack pages history for apps outside the Marketplace
    sent = await platform.send(Address("slack", "DALICE", "UALICE"), Outbound("the one", idempotency_key="k"))
    for n in range(40):
        fake_slack.write("DALICE", "UALICE", f"chatter {n}")
    assert await platform.find_sent(Address("slack", "DALICE", "UALICE"), Outbound("the one", idempotency_key="k")) == sent
    assert len(fake_slack.calls_to("conversations.history")) == 3  # 15 + 15 + 11
    for n in range(10):
        fake_slack.write("DALICE", "UALICE", f"more chatter {n}")
    assert await platform.find_sent(Address("slack", "DALICE", "UALICE"), Outbound("the one", idempotency_key="k")) is None
