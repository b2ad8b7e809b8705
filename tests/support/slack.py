"""Shared Slack test steps: a running bot and its catch-up, Socket Mode envelopes, signed commands, a failing database."""

from __future__ import annotations

import contextlib
import time
import uuid
from urllib.parse import urlencode

import aiohttp
from sqlalchemy.exc import OperationalError

from tests.slack.driver import dm_channel, user_id
from tests.slack.harness import envelope, sign, start_bot
from tests.support.net import wait_for


def events_api(event_id: str, event: dict, retry_attempt: int = 0) -> dict:
    """A Socket Mode envelope of the Events API around a message `event` (as `FakeSlack.write` returns it)."""
    return {"envelope_id": str(uuid.uuid4()), "type": "events_api", "accept_response_payload": False,
            "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else "",
            "payload": envelope(event, event_id)}


def alice_writes(fake, text: str) -> dict:
    return fake.write(dm_channel("alice"), user_id("alice"), text)


def database_down(monkeypatch, bot) -> None:
    """Every transaction of the bot under test fails, as when the database is unreachable or locked."""

    async def unavailable(work):
        raise OperationalError("BEGIN", {}, Exception("database is locked"))

    monkeypatch.setattr(bot.runtime.db, "run", unavailable)
    monkeypatch.setattr(bot.runtime.db, "run_grouped", unavailable)  # the hot path's group commit


@contextlib.asynccontextmanager
async def running(url: str, fake, clock, **overrides):
    bot = await start_bot(url, fake, clock=clock, **overrides)
    try:
        yield bot
    finally:
        await bot.close()


async def catch_up(bot):
    """The catch-up a start runs in the background, awaited; then what it queued is delivered."""
    counts = await bot.listeners.start_catch_up()
    await bot.settle()
    return counts


async def slack_command(session: aiohttp.ClientSession, url: str, fake_slack, user: str, text: str) -> str:  # noqa: ANN001
    """`user` runs `/concierge text` in their DM with the bot; returns the private answer."""
    key = f"cmd{time.monotonic_ns()}"
    body = urlencode({"team_id": "T0CONCIERGE", "channel_id": "D" + user[1:], "user_id": user,
                      "command": "/concierge", "text": text, "response_url": fake_slack.response_url(key),
                      "trigger_id": f"trigger.{key}"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    async with session.post(f"{url}/slack/events", data=body, headers=headers) as response:
        assert response.status == 200
    await wait_for(lambda: fake_slack.responses_to(key))
    return fake_slack.responses_to(key)[0]["text"]
