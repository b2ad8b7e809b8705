"""Socket Mode: the real Socket Mode client connects to a loopback websocket standing in for Slack's."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from sqlmodel import select

import adapters.slack
from concierge.records import InboxItem
from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel
from tests.slack.harness import core_settings
from tests.support.net import wait_for
from tests.support.slack import alice_writes, database_down, events_api


async def test_events_over_socket_mode_are_acknowledged_and_relayed_once(bot, fake_slack):
    driver = SlackDriver(bot)
    await setup_desk(driver)
    handler = AsyncSocketModeHandler(bot.listeners.app, fake_slack.app_token)
    try:
        await handler.connect_async()
        message = alice_writes(fake_slack, "Can I train twice a day?")
        first = events_api("Ev0SOCKET", message)
        await fake_slack.deliver(first)
        assert await fake_slack.next_from_socket() == {"envelope_id": first["envelope_id"]}
        again = events_api("Ev0SOCKET", message, retry_attempt=1)
        await fake_slack.deliver(again)
        assert await fake_slack.next_from_socket() == {"envelope_id": again["envelope_id"]}
        await driver.settle()
    finally:
        await handler.close_async()
    opened = fake_slack.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].token == fake_slack.app_token
    assert len(driver.threads()) == 1
    assert sum("twice a day" in text for text in driver.thread_texts(driver.threads()[0])) == 1


async def test_a_slash_command_over_socket_mode_is_answered_privately(bot, fake_slack):
    handler = AsyncSocketModeHandler(bot.listeners.app, fake_slack.app_token)
    try:
        await handler.connect_async()
        command = {"envelope_id": str(uuid.uuid4()), "type": "slash_commands", "accept_response_payload": True,
                   "payload": {"team_id": "T0CONCIERGE", "channel_id": "DADMIN", "user_id": "UADMIN",
                               "command": "/concierge", "text": "expert list", "trigger_id": "trigger.socket",
                               "response_url": fake_slack.response_url("socket-cmd")}}
        await fake_slack.deliver(command)
        assert await fake_slack.next_from_socket() == {"envelope_id": command["envelope_id"]}
        await bot.listeners.idle(timeout=10)
    finally:
        await handler.close_async()
    answers = fake_slack.responses_to("socket-cmd")
    assert [(a["response_type"], a["text"]) for a in answers] == [
        ("ephemeral", "No experts yet. Add one with `/concierge expert add &lt;user&gt; &lt;specialties&gt;`.")]


async def test_run_connects_with_settings_from_the_environment(sqlite_url, fake_slack, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", fake_slack.app_token)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.api_url)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    assert adapters.slack.is_configured()
    running = asyncio.create_task(adapters.slack.run(core_settings(sqlite_url)))
    try:
        await asyncio.wait_for(fake_slack.socket_connected.wait(), 5)
        delivered = events_api("Ev0RUNSOCKET", alice_writes(fake_slack, "hello?"))
        await fake_slack.deliver(delivered)
        assert await fake_slack.next_from_socket() == {"envelope_id": delivered["envelope_id"]}
        await wait_for(lambda: fake_slack.calls_to("chat.postMessage"))
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    sent = fake_slack.calls_to("chat.postMessage")[0]
    assert sent.args["channel"] == dm_channel("alice") and "members of Peak Club" in sent.args["text"]


async def test_socket_mode_acks_only_after_the_message_is_recorded(bot, fake_slack, monkeypatch):
    driver = SlackDriver(bot)
    await setup_desk(driver)
    concierge = bot.runtime.concierge
    receive = concierge.receive
    committed: list[float] = []

    async def slow_commit(event):  # a database that takes its time
        await asyncio.sleep(0.3)
        receipt = await receive(event)
        committed.append(time.monotonic())
        return receipt

    monkeypatch.setattr(concierge, "receive", slow_commit)
    handler = AsyncSocketModeHandler(bot.listeners.app, fake_slack.app_token)
    try:
        await handler.connect_async()
        delivered = events_api("Ev0ACK", alice_writes(fake_slack, "Ice bath or not?"))
        await fake_slack.deliver(delivered)
        assert await fake_slack.next_from_socket() == {"envelope_id": delivered["envelope_id"]}
        acked = time.monotonic()
        assert committed and committed[0] <= acked, "acknowledged before the message was recorded"
        rows = await bot.runtime.db.run(lambda session: session.exec(select(InboxItem)).all())
        assert any(row.kind == "member_message" for row in rows)
    finally:
        await handler.close_async()


async def test_socket_mode_sends_no_ack_while_the_database_cannot_record(bot, fake_slack, monkeypatch):
    driver = SlackDriver(bot)
    await setup_desk(driver)
    handler = AsyncSocketModeHandler(bot.listeners.app, fake_slack.app_token)
    message = alice_writes(fake_slack, "Is yoga training?")
    try:
        await handler.connect_async()
        with monkeypatch.context() as patch:
            database_down(patch, bot)
            await fake_slack.deliver(events_api("Ev0NOACK", message))
            with pytest.raises(asyncio.TimeoutError):
                await fake_slack.next_from_socket(timeout=1)
        again = events_api("Ev0NOACK", message, retry_attempt=1)  # Slack's retry of the unacknowledged event
        await fake_slack.deliver(again)
        assert await fake_slack.next_from_socket() == {"envelope_id": again["envelope_id"]}
        await driver.settle()
    finally:
        await handler.close_async()
    [thread] = driver.threads()
    assert sum("yoga" in text for text in driver.thread_texts(thread)) == 1
