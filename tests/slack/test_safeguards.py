"""Issue 13 on Slack: safeguards pinned by tests of their own, through the real bolt app and `run`.

- HTTP mode refuses to start without SLACK_SIGNING_SECRET (`SlackSettings.missing_for`, checked
  by `server.run`), so it never serves requests nobody signed (or signed with an empty secret).
- The same message redelivered under a new envelope has one effect through the core's own
  de-duplication (`inbox.record` raising `AlreadyHandled`), not only through the unique outbox
  key: an internal note queues nothing, so only the inbox stands between a redelivery and a
  second transcript row.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import aiohttp
from sqlmodel import select

from adapters.slack import server
from concierge.records import InboxItem, Message
from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.slack.harness import STAFF, core_settings, envelope, slack_settings
from tests.support.net import free_port


async def all_rows(bot, model) -> list:
    return list(await bot.runtime.db.run(lambda session: session.exec(select(model).order_by(model.id)).all()))


# 5. HTTP mode refuses to start without SLACK_SIGNING_SECRET.

def signed_with_an_empty_secret(body: str) -> dict[str, str]:
    """What anyone can forge for a server whose secret is empty (the SDK's own signer refuses "")."""
    timestamp = str(int(time.time()))
    digest = hmac.new(b"", f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


async def test_http_mode_without_a_signing_secret_refuses_to_start_and_serves_nothing(sqlite_url, fake_slack,
                                                                                     monkeypatch):
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    port = free_port()
    slack = slack_settings(fake_slack, http_port=port, signing_secret=None)
    assert slack.bot_token and slack.signing_secret is None

    async def attempt():
        try:
            await server.run(core_settings(sqlite_url), http=True, slack=slack)
        except (SystemExit, Exception) as refusal:  # caught here: a task must not pass SystemExit to the loop
            return refusal
        return None

    running = asyncio.create_task(attempt())
    served: list[int] = []
    try:
        done, _ = await asyncio.wait({running}, timeout=3)
        if not done:  # it started: what does it do with requests no secret signed?
            ts = f"{time.time():.6f}"
            message = {"type": "message", "channel": dm_channel("mallory"), "user": user_id("mallory"),
                       "text": "hello", "ts": ts, "event_ts": ts, "channel_type": "im"}
            body = json.dumps(envelope(message, "Ev0FORGED"))
            async with aiohttp.ClientSession() as session:
                for headers in ({}, signed_with_an_empty_secret(body)):
                    try:
                        async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                                headers={"Content-Type": "application/json", **headers}) as response:
                            served.append(response.status)
                    except aiohttp.ClientConnectionError:
                        pass
            await asyncio.sleep(0.5)
    finally:
        if not running.done():
            running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert not running.cancelled(), f"HTTP mode started without a signing secret (answered {served})"
    refusal = running.result()
    assert isinstance(refusal, SystemExit) and "SLACK_SIGNING_SECRET" in str(refusal.code), (
        f"not refused with what to set: {refusal!r}")
    assert served == [] and fake_slack.calls == [], "nothing was served, nothing reached Slack"


# 8. Slack redelivery has one effect through the inbox's de-duplication.

async def test_the_same_message_under_two_envelopes_is_one_transcript_row_and_one_inbox_row(desk_bot):
    bot = desk_bot
    driver = SlackDriver(bot)
    await setup_desk(driver)
    question = bot.fake.write(dm_channel("alice"), user_id("alice"), "Creatine or not?")
    await bot.post_event(question, event_id="Ev0QUESTION1")
    await bot.post_event(question, event_id="Ev0QUESTION2")  # redelivered under a new envelope (a reconnect)
    await driver.settle()
    [thread] = driver.threads()
    note = bot.fake.write(STAFF, user_id("bob"), "note: ask about her kidneys first", thread_ts=thread)
    told_before = len(bot.fake.calls_to("chat.postEphemeral"))
    await bot.post_event(note, event_id="Ev0NOTE1")
    await bot.post_event(note, event_id="Ev0NOTE2")  # acknowledged (200) both times: see post_event
    await driver.settle()

    transcript = [(m.direction, m.text) for m in await all_rows(bot, Message)]
    assert transcript == [("in", "Creatine or not?"), ("internal", "ask about her kidneys first")]
    inbox = [item.event_id for item in await all_rows(bot, InboxItem)
             if item.kind in ("member_message", "staff_reply")]
    assert inbox == [f"{dm_channel('alice')}:{question['ts']}", f"{STAFF}:{note['ts']}"]
    told = bot.fake.calls_to("chat.postEphemeral")[told_before:]
    assert [call.args["text"] for call in told] == ["(internal, not sent)"], "bob was told once"
    assert driver.dms("alice") == []
    assert sum("Creatine" in text for text in driver.thread_texts(thread)) == 1
