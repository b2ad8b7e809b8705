"""Issue 10 on Slack, "nothing lost on the way in": recorded before acknowledged, de-duplicated by the
message, processing retried from the database, and a post whose answer was lost not posted twice.

Through signed requests into the real bolt app and the loopback Web API; SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlmodel import select

from concierge.records import InboxItem, OutboxItem
from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.slack.harness import STAFF
from tests.support.slack import database_down


async def inbox(bot) -> list[InboxItem]:
    return list(await bot.runtime.db.run(lambda session: session.exec(select(InboxItem).order_by(InboxItem.id)).all()))


async def outbox(bot) -> list[OutboxItem]:
    return list(await bot.runtime.db.run(lambda session: session.exec(select(OutboxItem).order_by(OutboxItem.id)).all()))


async def test_an_event_the_database_cannot_record_is_refused_and_slacks_retry_applied_once(desk_bot, monkeypatch):
    bot = desk_bot
    driver = SlackDriver(bot)
    await setup_desk(driver)
    message = bot.fake.write(dm_channel("alice"), user_id("alice"), "Is a rest day a week enough?")
    with monkeypatch.context() as patch:
        database_down(patch, bot)
        refused = await bot.post_event(message, event_id="Ev0DOWN", expect=None)
    assert not 200 <= refused.status < 300, "acknowledged an event that was not recorded"
    await driver.settle()
    assert driver.threads() == []
    # The database is back; Slack sends the same body again, with X-Slack-Retry-Num.
    await bot.post_event(message, event_id="Ev0DOWN", retry_num=1)
    await bot.post_event(message, event_id="Ev0DOWN", retry_num=2)
    await driver.settle()
    assert len(driver.threads()) == 1
    assert sum("rest day" in text for text in driver.thread_texts(driver.threads()[0])) == 1


async def test_the_same_message_under_two_envelopes_has_one_effect(desk_bot):
    bot = desk_bot
    driver = SlackDriver(bot)
    await setup_desk(driver)
    question = bot.fake.write(dm_channel("alice"), user_id("alice"), "Creatine or not?")
    await bot.post_event(question, event_id="Ev0FIRST")
    await bot.post_event(question, event_id="Ev0SECOND")  # e.g. redelivered after a Socket Mode reconnect
    await driver.settle()
    [thread] = driver.threads()
    assert sum("Creatine" in text for text in driver.thread_texts(thread)) == 1
    reply = bot.fake.write(STAFF, user_id("bob"), "Not needed for you.", thread_ts=thread)
    await bot.post_event(reply, event_id="Ev0THIRD")
    await bot.post_event(reply, event_id="Ev0FOURTH")
    await driver.settle()
    assert driver.dms("alice") == ["Not needed for you."]
    ids = [item.event_id for item in await inbox(bot) if item.kind in ("member_message", "staff_reply")]
    assert ids == [f"{dm_channel('alice')}:{question['ts']}", f"{STAFF}:{reply['ts']}"]


async def test_an_edit_is_named_by_the_message_and_the_edit_time(desk_bot):
    bot = desk_bot
    driver = SlackDriver(bot)
    await setup_desk(driver)
    question = bot.fake.write(dm_channel("alice"), user_id("alice"), "Is 2 litres enough?")
    await bot.post_event(question)
    await driver.settle()
    edited_ts = bot.fake.next_ts()
    edit = {"type": "message", "subtype": "message_changed", "channel": dm_channel("alice"), "channel_type": "im",
            "hidden": True, "ts": edited_ts, "event_ts": edited_ts,
            "message": {"type": "message", "user": user_id("alice"), "text": "Is 3 litres enough?", "ts": question["ts"],
                        "edited": {"user": user_id("alice"), "ts": edited_ts}},
            "previous_message": {"type": "message", "user": user_id("alice"), "text": "Is 2 litres enough?",
                                 "ts": question["ts"]}}
    await bot.post_event(edit, event_id="Ev0EDIT1")
    await bot.post_event(edit, event_id="Ev0EDIT2")
    await driver.settle()
    assert driver.thread_texts(driver.threads()[0])[1:] == ["alice: (edited) Is 3 litres enough?"]
    assert f"{dm_channel('alice')}:{question['ts']}:edit:{edited_ts}" in [item.event_id for item in await inbox(bot)]


async def test_a_message_whose_processing_fails_is_acknowledged_and_processed_once_later(desk_bot, monkeypatch, clock):
    bot = desk_bot
    driver = SlackDriver(bot)
    await setup_desk(driver)
    import concierge.relay as relay

    real = relay.member_message
    calls = {"n": 0}

    def fails_first(session, ctx, event):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug in the relay")
        return real(session, ctx, event)

    monkeypatch.setattr("concierge.app.member_message", fails_first)
    receipts = []
    receive = bot.runtime.concierge.receive

    async def noting(event):
        receipts.append(await receive(event))
        return receipts[-1]

    monkeypatch.setattr(bot.runtime.concierge, "receive", noting)
    message = bot.fake.write(dm_channel("alice"), user_id("alice"), "Sauna after training?")
    accepted = await bot.post_event(message)
    assert accepted.status == 200
    assert [receipt.status for receipt in receipts] == ["queued"]
    await driver.settle()
    assert driver.threads() == [], "retried only after its backoff"
    [item] = [item for item in await inbox(bot) if item.kind == "member_message"]
    assert item.status == "pending" and item.payload["text"] == "Sauna after training?"
    clock.advance(5)
    await bot.runtime.drain()
    await bot.runtime.drain()
    assert len(driver.threads()) == 1 and "Sauna after training?" in driver.thread_texts(driver.threads()[0])[0]
    [item] = [item for item in await inbox(bot) if item.kind == "member_message"]
    assert item.status == "done" and calls["n"] == 2


async def test_posts_slack_took_but_answered_500_are_posted_once(desk_bot, clock):
    """A card, a thread post and a DM each taken by Slack with a 500 answer: found by their metadata, not re-sent."""
    bot = desk_bot
    fake = bot.fake
    driver = SlackDriver(bot)
    await setup_desk(driver)

    def posts(channel: str, thread: str | None = None) -> list[str]:
        return [message["text"] for message in fake.history(channel)
                if message.get("bot_id") and (thread is None or message.get("thread_ts") == thread)]

    fake.fail("chat.postMessage", status=500, store=True, when=lambda args: args.get("channel") == STAFF)
    await driver.member_writes("alice", "Protein powder: which one?")
    await driver.settle()
    clock.advance(10)
    await driver.settle()
    [card] = [message for message in fake.history(STAFF) if message.get("bot_id")]
    assert "Protein powder" in card["text"]
    thread = card["ts"]  # the post Slack took names the thread (its answer never arrived)

    fake.fail("chat.postMessage", status=500, store=True, when=lambda args: args.get("thread_ts") == thread)
    await driver.member_writes("alice", "Or just food?")
    await driver.settle()
    clock.advance(10)
    await driver.settle()
    assert [text for text in posts(STAFF, thread) if "Or just food?" in text] == ["alice: Or just food?"]

    fake.fail("chat.postMessage", status=502, store=True, when=lambda args: args.get("channel") == dm_channel("alice"))
    await driver.staff_writes("bob", thread, "Food first.")
    await driver.settle()
    clock.advance(10)
    await driver.settle()
    assert posts(dm_channel("alice")) == ["Food first."]

    items = await outbox(bot)
    assert [item.status for item in items] == ["sent"] * len(items)
    refs = {item.sent_message_id for item in items}
    assert {message["ts"] for channel in (STAFF, dm_channel("alice")) for message in fake.history(channel)
            if message.get("bot_id")} == refs
    checked = [call for call in fake.calls if call.method in ("conversations.history", "conversations.replies")]
    assert {call.method for call in checked} == {"conversations.history", "conversations.replies"}
    assert all(call.args.get("include_all_metadata") in ("1", "true", True) for call in checked)
