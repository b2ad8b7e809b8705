"""Catch-up after downtime on Slack: what was written while the bot was stopped is read back from history.

Messages are written into the fake's history (`FakeSlack.write`) and never delivered as events, as
happens while the bot is down; a new bot on the same database then reads them back on start (or
after a Socket Mode reconnect). SQLite and PostgreSQL where the database matters.
"""

from __future__ import annotations

import asyncio
import logging

import adapters.slack
from adapters.slack import server
from concierge.settings import Settings
from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.slack.harness import STAFF, core_settings, slack_settings
from tests.support.net import free_port, wait_for
from tests.support.slack import alice_writes, catch_up, events_api, running

LATE_FOR_STAFF = "UTC: it arrived late)"
LATE_FOR_MEMBER = "it reached you late because of a delay on our side."


def texts(fake, channel: str, thread: str | None = None) -> list[str]:
    """What the bot posted in `channel` (the replies in `thread`), as the history keeps it."""
    return [message["text"] for message in fake.history(channel) if message.get("bot_id") and (
        thread is None or (message.get("thread_ts") == thread and message["ts"] != thread))]


async def test_messages_written_while_stopped_reach_staff_once_in_order_marked_late(database_url, fake_slack, clock):
    async with running(database_url, fake_slack, clock) as bot:
        driver = SlackDriver(bot)
        await setup_desk(driver)
        await driver.command("admin", f"member add {driver.mention('carol')} premium carol")
        await driver.member_writes("alice", "How long should I rest after a marathon?")
        await driver.settle()
        [thread] = driver.threads()
    # Stopped: alice follows up twice, carol writes to the bot for the first time (a DM we never saw).
    fake_slack.write(dm_channel("alice"), user_id("alice"), "Also: is swimming fine meanwhile?")
    fake_slack.write(dm_channel("alice"), user_id("alice"), "And cycling?")
    fake_slack.write(dm_channel("carol"), user_id("carol"), "Do I need a heart rate strap?")
    clock.advance(20 * 60)
    async with running(database_url, fake_slack, clock) as bot:
        counts = await catch_up(bot)
        follow_ups = texts(fake_slack, STAFF, thread)
        assert [text.split("\n")[0] for text in follow_ups] == [
            "alice: Also: is swimming fine meanwhile?", "alice: And cycling?"]
        assert all(LATE_FOR_STAFF in text for text in follow_ups)
        [carol] = [text for text in texts(fake_slack, STAFF) if "heart rate strap" in text]
        assert LATE_FOR_STAFF in carol
        assert (counts.new, counts.places) == (3, 3)  # alice's and carol's DMs, alice's thread
        # Read again (a reconnect): nothing new, nothing posted twice.
        again = await catch_up(bot)
        assert again.new == 0
        assert len(texts(fake_slack, STAFF)) == 2 + 2  # two cards, two follow-ups
    users = [call for call in fake_slack.calls_to("users.conversations")]
    assert users and all(call.args["types"] == "im" for call in users)


async def alice_asked(database_url, fake_slack, clock, text: str) -> str:  # noqa: ANN001
    """A bot that ran and stopped: the desk set up, alice asked `text`; her staff thread."""
    async with running(database_url, fake_slack, clock) as bot:
        driver = SlackDriver(bot)
        await setup_desk(driver)
        await driver.member_writes("alice", text)
        await driver.settle()
        [thread] = driver.threads()
    return thread


async def test_an_expert_reply_written_while_stopped_reaches_the_member_once(database_url, fake_slack, clock):
    thread = await alice_asked(database_url, fake_slack, clock, "Best time to stretch?")
    fake_slack.write(STAFF, user_id("bob"), "After the run, never cold.", thread_ts=thread)
    fake_slack.write(STAFF, user_id("bob"), "note: she asked before", thread_ts=thread)
    clock.advance(30 * 60)
    async with running(database_url, fake_slack, clock) as bot:
        await catch_up(bot)
        await catch_up(bot)
    [answer] = texts(fake_slack, dm_channel("alice"))
    assert answer.startswith("After the run, never cold.") and LATE_FOR_MEMBER in answer


async def test_catch_up_reads_every_page_and_waits_out_a_429(sqlite_url, fake_slack, clock):
    fake_slack.max_page = 2
    async with running(sqlite_url, fake_slack, clock) as bot:
        driver = SlackDriver(bot)
        await setup_desk(driver)
        await driver.member_writes("alice", "First question")
        await driver.settle()
    for n in range(5):
        fake_slack.write(dm_channel("alice"), user_id("alice"), f"follow-up {n}")
    clock.advance(120)
    fake_slack.fail("conversations.history", status=429, retry_after=0.3,
                    when=lambda args: args.get("channel") == dm_channel("alice"))
    async with running(sqlite_url, fake_slack, clock) as bot:
        counts = await catch_up(bot)
        [thread] = driver.threads()
    assert [text.split("\n")[0] for text in texts(fake_slack, STAFF, thread)] == [f"alice: follow-up {n}" for n in range(5)]
    assert counts.new == 5
    history = fake_slack.calls_to("conversations.history", ok_only=False)
    limited, *pages = [call for call in history if call.args["channel"] == dm_channel("alice")]
    assert limited.status == 429 and len(pages) == 3  # 5 messages, 2 a page
    assert pages[0].at - limited.at >= 0.3, "did not wait for Retry-After"


async def test_nothing_older_than_the_window_and_nothing_when_off(sqlite_url, fake_slack, clock):
    async with running(sqlite_url, fake_slack, clock) as bot:
        await setup_desk(SlackDriver(bot))
    fake_slack.write(dm_channel("alice"), user_id("alice"), "Written long ago")
    clock.advance(73 * 3600)  # CONCIERGE_CATCH_UP_HOURS is 72 by default
    async with running(sqlite_url, fake_slack, clock) as bot:
        assert (await catch_up(bot)).new == 0
    fake_slack.write(dm_channel("alice"), user_id("alice"), "Written while off")
    clock.advance(60)
    before = len(fake_slack.calls)
    async with running(sqlite_url, fake_slack, clock, catch_up_hours=0) as bot:
        await catch_up(bot)
    assert not {"users.conversations", "conversations.history"} & {call.method for call in fake_slack.calls[before:]}
    assert texts(fake_slack, STAFF) == []


async def test_run_in_http_mode_catches_up_on_start(sqlite_url, fake_slack, clock, caplog):
    caplog.set_level(logging.INFO, logger="adapters.slack")
    fake_slack.write(dm_channel("dave"), user_id("dave"), "Hi, can I join?")  # before the bot ever ran
    clock.advance(300)
    port = free_port()
    running_bot = asyncio.create_task(server.run(core_settings(sqlite_url), http=True,
                                                 slack=slack_settings(fake_slack, http_port=port)))
    try:
        await wait_for(lambda: texts(fake_slack, dm_channel("dave")))
        await wait_for(lambda: "caught up:" in caplog.text)
    finally:
        running_bot.cancel()
        await asyncio.gather(running_bot, return_exceptions=True)
    [join] = texts(fake_slack, dm_channel("dave"))
    assert "members of Peak Club" in join
    assert "caught up: 1 messages read in 1 channels, 1 new" in caplog.text


async def test_socket_mode_catches_up_on_connect_and_after_a_reconnect(sqlite_url, fake_slack, clock, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", fake_slack.app_token)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.api_url)
    fake_slack.write(dm_channel("dave"), user_id("dave"), "Anyone there?")
    clock.advance(300)
    running_bot = asyncio.create_task(adapters.slack.run(core_settings(sqlite_url)))
    try:
        await wait_for(lambda: texts(fake_slack, dm_channel("dave")))  # caught up on connect
        # Connected: a live event is acknowledged as usual.
        live = events_api("Ev0LIVE", alice_writes(fake_slack, "hello?"))
        await fake_slack.deliver(live)
        assert await fake_slack.next_from_socket() == {"envelope_id": live["envelope_id"]}
        # Erin writes while the connection is being replaced; Slack asks the client to reconnect.
        fake_slack.write(dm_channel("erin"), user_id("erin"), "Hello from the gap")
        await fake_slack.deliver({"type": "disconnect", "reason": "refresh_requested"})
        await wait_for(lambda: texts(fake_slack, dm_channel("erin")))
    finally:
        running_bot.cancel()
        await asyncio.gather(running_bot, return_exceptions=True)
    assert len(fake_slack.calls_to("apps.connections.open")) == 2
    assert len(texts(fake_slack, dm_channel("dave"))) == 1 and len(texts(fake_slack, dm_channel("alice"))) == 1


def test_the_pace_is_a_setting():
    from adapters.slack.settings import SlackSettings

    assert SlackSettings(_env_file=None).catch_up_per_min == 50
    assert SlackSettings(_env_file=None, catch_up_per_min=1).catch_up_per_min == 1
    assert Settings(_env_file=None).catch_up_hours == 72


async def test_a_live_message_right_after_a_restart_waits_for_the_plan(database_url, fake_slack, clock, monkeypatch):
    """The plan is taken at the (re)connect, before anything of the new connection is recorded. A live
    message recorded first would make its DM look read up to it, and what the member wrote before it
    while the bot was away would be skipped: lost."""
    import concierge.app
    from tests.support.hold import hold_up

    thread = await alice_asked(database_url, fake_slack, clock, "How long should I rest after a marathon?")
    fake_slack.write(dm_channel("alice"), user_id("alice"), "Written while you were away")
    clock.advance(20 * 60)
    release = hold_up(monkeypatch, concierge.app, "plan_catch_up")  # a plan over a long history
    async with running(database_url, fake_slack, clock) as bot:
        catching_up = bot.listeners.start_catch_up()  # as on start, or on Socket Mode's hello
        live = asyncio.ensure_future(SlackDriver(bot).member_writes("alice", "Written just now"))
        await asyncio.sleep(0.3)
        assert not live.done(), "the live message waits for the plan"
        release.set()
        await live
        await catching_up
        await bot.settle()
        follow_ups = [text.split("\n")[0] for text in texts(fake_slack, STAFF, thread)]
        # Both, once each (the one read back comes later, marked late).
        assert sorted(follow_ups) == ["alice: Written just now", "alice: Written while you were away"]
