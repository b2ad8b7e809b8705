"""Digests on Slack through the real bolt app (signed requests, loopback Web API), SQLite and PostgreSQL.

Admins and experts build the catalogue with /concierge, members subscribe by command or on the
Home tab, the scheduler plans and the outbox delivers into the member's DM (conversations.open,
then chat.postMessage) a Block Kit message with an Unsubscribe button; pressing it revokes the
consent (how="button") before anything else is sent.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlmodel import select

from adapters.slack.blocks import action_of
from adapters.slack.manifest import METHOD_SCOPES
from adapters.slack.mrkdwn import escape
from concierge.digests.audit import consent_violations
from concierge.records import ConsentEvent, Digest, OutboxItem
from scheduling.ticker import DigestScheduler
from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.slack.fake_slack import Call
from tests.slack.harness import BotUnderTest, start_bot


@pytest.fixture
async def on_slack(database_url, fake_slack, clock):
    """The bot on each backend, with the digest scheduler the runtime would start."""
    bot = await start_bot(database_url, fake_slack, clock=clock)
    ticker = DigestScheduler(bot.runtime.db, bot.runtime.dispatcher, bot.runtime.concierge.settings, clock)
    try:
        yield bot, SlackDriver(bot), ticker
    finally:
        ticker.shutdown()
        await bot.close()
    assert all(call.ok for call in fake_slack.calls), [c for c in fake_slack.calls if not c.ok]
    assert fake_slack.methods_called() <= set(METHOD_SCOPES)


async def tick(bot: BotUnderTest, ticker: DigestScheduler) -> None:
    await ticker.tick()
    await bot.settle()


def digest_posts(bot: BotUnderTest, person: str) -> list[Call]:
    return [call for call in bot.fake.calls_to("chat.postMessage")
            if call.args.get("channel") == dm_channel(person) and "tips #" in call.args.get("text", "")]


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [element for block in blocks if block["type"] == "actions" for element in block["elements"]]


def home_buttons(view: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{digest: (action, label)} of the Home tab's buttons."""
    return {block["accessory"]["value"]: (action_of(block["accessory"]["action_id"]),
                                          block["accessory"]["text"]["text"])
            for block in view["blocks"] if "accessory" in block}


def ledger(bot: BotUnderTest) -> list[tuple[str, str, str, str]]:
    def read(session):
        rows = session.exec(select(ConsentEvent, Digest).join(Digest, Digest.id == ConsentEvent.digest_id)
                            .order_by(ConsentEvent.id)).all()
        return [(digest.slug, event.action, event.how, event.platform) for event, digest in rows]

    return bot.runtime.db.run_sync(read)


def audit(bot: BotUnderTest) -> list[str]:
    return bot.runtime.db.run_sync(consent_violations)


async def open_home(bot: BotUnderTest, person: str) -> None:
    await bot.post_event({"type": "app_home_opened", "user": user_id(person), "channel": dm_channel(person),
                          "tab": "home", "event_ts": f"{time.time():.6f}"})
    await bot.listeners.idle(timeout=10)


async def test_a_digest_arrives_with_an_unsubscribe_button_that_stops_the_next_ones(on_slack, clock):
    bot, d, ticker = on_slack
    await setup_desk(d)
    # Typed text reaches the bot escaped, as Slack sends it (should_escape).
    assert "created" in await d.command(
        d.admin, 'digest create nutrition-tips "Weekly nutrition tips" --cadence weekly')
    assert "Added to the next edition" in await d.command(
        "bob", escape("digest add nutrition-tips Hydrate: 500 ml two hours before & after <long> runs."))
    answer = await d.command("alice", "subscribe nutrition-tips --cadence daily --hour 10")
    assert "Subscribed to Weekly nutrition tips: every day at 10:00 UTC" in answer
    assert "Edition #1" in await d.command(d.admin, "digest publish nutrition-tips")

    await tick(bot, ticker)
    assert digest_posts(bot, "alice") == [], "not before her hour"
    clock.advance(3600)
    await tick(bot, ticker)
    [post] = digest_posts(bot, "alice")
    # The outbox addressed her by user id alone: the DM was opened first.
    assert [call.args["users"] for call in bot.fake.calls_to("conversations.open")] == [user_id("alice")]
    assert post.args["parse"] == "none" and post.args["link_names"] is False
    blocks = post.args["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Weekly nutrition tips #1"}}
    body = "\n".join(block["text"]["text"] for block in blocks if block["type"] == "section")
    assert "Hydrate: 500 ml two hours before &amp; after &lt;long&gt; runs." in body
    assert "Weekly nutrition tips #1" not in body, "the header carries the title, once"
    assert "To stop: /concierge unsubscribe nutrition-tips" in body, "the text form of unsubscribing"
    assert "To stop: /concierge unsubscribe nutrition-tips" in post.args["text"], "and in the notification text"
    [button] = buttons(blocks)
    assert (button["text"]["text"], action_of(button["action_id"]), button["value"], button["style"]) == (
        "Unsubscribe", "unsubscribe", "nutrition-tips", "danger")

    clock.advance(30)  # she reads it, then presses (the audit cannot order a revocation at the send's instant)
    message = {"type": "message", "ts": post.response["ts"], "text": post.args["text"], "blocks": blocks,
               "user": "UBOT", "bot_id": "BBOT"}
    key = await bot.post_button(user_id("alice"), dm_channel("alice"), message, button)
    assert (await d._answer(key)).startswith("Unsubscribed from Weekly nutrition tips.")
    assert ledger(bot) == [("nutrition-tips", "granted", "command", "slack"),
                           ("nutrition-tips", "revoked", "button", "slack")]
    # Her Home tab was published again: the digest is offered, no longer listed as hers.
    assert home_buttons(d.home("alice")) == {"nutrition-tips": ("subscribe", "Subscribe")}
    assert "You are not subscribed" in await d._answer(
        await bot.post_button(user_id("alice"), dm_channel("alice"), message, button)), "a second press changes nothing"

    await d.command("bob", "digest add nutrition-tips Sleep eight hours.")
    assert "Edition #2" in await d.command(d.admin, "digest publish nutrition-tips")
    for _ in range(3):
        clock.advance(86400)
        await tick(bot, ticker)
    assert len(digest_posts(bot, "alice")) == 1, "nothing after unsubscribing"
    deliveries = bot.runtime.db.run_sync(lambda session: session.exec(
        select(OutboxItem.edition_id, OutboxItem.status).where(OutboxItem.edition_id.is_not(None))).all())
    assert [tuple(row) for row in deliveries] == [(1, "sent")], "edition 2 was never even queued for her"
    assert audit(bot) == []


async def test_the_home_tab_lists_subscriptions_and_subscribes_with_a_button(on_slack, clock):
    bot, d, ticker = on_slack
    await setup_desk(d)
    await d.command(d.admin, 'digest create nutrition-tips "Weekly nutrition tips"')
    await d.command(d.admin, 'digest create race-tips "Race tips" --cadence weekly')
    await d.command("alice", "subscribe nutrition-tips --day fri --hour 7 --tz Europe/Paris")

    await open_home(bot, "alice")
    home = d.home("alice")
    texts = [block["text"]["text"] for block in home["blocks"] if block["type"] == "section"]
    assert any(text.startswith("*Your digests* (1)") for text in texts)
    assert "`nutrition-tips` Weekly nutrition tips: every fri at 07:00 Europe/Paris" in texts
    assert any(text.startswith("*Digests you can subscribe to*") for text in texts)
    assert "`race-tips` Race tips (weekly)" in texts
    assert home_buttons(home) == {"nutrition-tips": ("unsubscribe", "Unsubscribe"),
                                  "race-tips": ("subscribe", "Subscribe")}
    action_ids = [block["accessory"]["action_id"] for block in home["blocks"] if "accessory" in block]
    assert len(set(action_ids)) == len(action_ids), "Slack refuses a view with two equal action ids"

    published, answered = len(bot.fake.calls_to("views.publish")), len(bot.fake.responses)
    await d.press_on_home("alice", "subscribe", "race-tips")
    assert len(bot.fake.calls_to("views.publish")) == published + 1, "the tab is published again"
    home = d.home("alice")
    assert home["blocks"][1]["text"]["text"].startswith("Subscribed to Race tips: every mon at 09:00 UTC.")
    assert home_buttons(home) == {"nutrition-tips": ("unsubscribe", "Unsubscribe"),
                                  "race-tips": ("unsubscribe", "Unsubscribe")}
    assert ledger(bot)[-1] == ("race-tips", "granted", "button", "slack")
    assert len(bot.fake.responses) == answered, "a Home tab press has no response_url: the tab shows the answer"

    await d.press_on_home("alice", "unsubscribe", "nutrition-tips")
    home = d.home("alice")
    assert home["blocks"][1]["text"]["text"].startswith("Unsubscribed from Weekly nutrition tips.")
    assert home_buttons(home) == {"nutrition-tips": ("subscribe", "Subscribe"),
                                  "race-tips": ("unsubscribe", "Unsubscribe")}
    assert ledger(bot) == [("nutrition-tips", "granted", "command", "slack"),
                           ("race-tips", "granted", "button", "slack"),
                           ("nutrition-tips", "revoked", "button", "slack")]

    # The Home subscription delivers: Monday 09:00 UTC, with its own Unsubscribe button.
    await d.command("bob", "digest add race-tips Taper the last week.")
    await d.command("bob", "digest add nutrition-tips Not for alice any more.")
    await d.command(d.admin, "digest publish race-tips")
    await d.command(d.admin, "digest publish nutrition-tips")
    for _ in range(6):
        clock.advance(86400)
        await tick(bot, ticker)
    [post] = digest_posts(bot, "alice")
    assert post.args["blocks"][0]["text"]["text"] == "Race tips #1"
    assert [(action_of(b["action_id"]), b["value"]) for b in buttons(post.args["blocks"])] == [
        ("unsubscribe", "race-tips")]
    assert audit(bot) == []


async def test_a_home_tab_press_by_someone_who_is_not_a_member_is_refused_on_the_tab(on_slack):
    bot, d, ticker = on_slack
    await setup_desk(d)
    await d.command(d.admin, 'digest create race-tips "Race tips"')
    await open_home(bot, "alice")
    view = d.home("alice")
    await d.command(d.admin, f"member remove {d.mention('alice')}")
    button = next(block["accessory"] for block in view["blocks"] if "accessory" in block)
    await bot.post_home_button(user_id("alice"), view, button)
    await bot.listeners.idle(timeout=10)
    home = d.home("alice")
    assert "members only" in home["blocks"][1]["text"]["text"]
    assert home["blocks"][2] == {"type": "divider"}
    assert home_buttons(home) == {}
    assert ledger(bot) == []


async def test_the_catalogue_answer_subscribes_with_its_button_and_refreshes_the_home_tab(on_slack):
    bot, d, ticker = on_slack
    await setup_desk(d)
    await d.command(d.admin, 'digest create race-tips "Race tips"')
    key = await bot.post_command(user_id("alice"), dm_channel("alice"), "digests")
    await bot.listeners.idle(timeout=10)
    [answer] = bot.fake.responses_to(key)
    [button] = buttons(answer["blocks"])
    assert (button["text"]["text"], action_of(button["action_id"]), button["value"]) == (
        "Subscribe race-tips", "subscribe", "race-tips")
    key = await bot.post_button(user_id("alice"), dm_channel("alice"), None, button)  # on the private answer
    assert (await d._answer(key)).startswith("Subscribed to Race tips")
    assert ledger(bot) == [("race-tips", "granted", "button", "slack")]
    assert home_buttons(d.home("alice")) == {"race-tips": ("unsubscribe", "Unsubscribe")}
