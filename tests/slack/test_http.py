"""HTTP mode: bolt's handler behind aiohttp on a loopback port, request signatures, and `run(http=True)`."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp

from adapters.slack import server
from tests.slack.driver import dm_channel, user_id
from tests.slack.harness import SIGNING_SECRET, core_settings, envelope, sign, slack_settings
from tests.support.net import free_port, wait_for


def member_dm(text: str) -> dict:
    ts = f"{time.time():.6f}"
    return {"type": "message", "channel": dm_channel("alice"), "user": user_id("alice"), "text": text, "ts": ts,
            "event_ts": ts, "channel_type": "im"}


async def test_a_bad_signature_is_refused(bot):
    body = json.dumps(envelope(member_dm("hello"), "Ev0BAD"))
    refused = await bot.post(body, "application/json", secret="not-the-signing-secret")
    assert refused.status == 401
    unsigned_status = 0
    async with aiohttp.ClientSession() as session:
        async with session.post(bot.url, data=body, headers={"Content-Type": "application/json"}) as response:
            unsigned_status = response.status
    assert unsigned_status == 401
    await bot.settle()
    assert bot.fake.calls == []  # not even bolt's auth.test: refused before any listener


async def test_a_stale_timestamp_is_refused(bot):
    body = json.dumps(envelope(member_dm("hello"), "Ev0STALE"))
    refused = await bot.post(body, "application/json", timestamp=int(time.time()) - 6 * 60)
    assert refused.status == 401
    accepted = await bot.post(body, "application/json", timestamp=int(time.time()) - 60)
    assert accepted.status == 200


async def test_url_verification_and_health(bot):
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    answered = await bot.post(json.dumps({"token": "x", "challenge": challenge, "type": "url_verification"}),
                              "application/json")
    assert answered.status == 200 and challenge in answered.text
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{bot.base}/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok")


async def test_run_in_http_mode_serves_events_and_delivers_with_the_outbox(sqlite_url, fake_slack, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()
    settings = core_settings(sqlite_url)
    slack = slack_settings(fake_slack, http_port=port)
    running = asyncio.create_task(server.run(settings, http=True, slack=slack))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async def healthy() -> bool:
                try:
                    async with session.get(f"{url}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            deadline = time.monotonic() + 5
            while not await healthy():
                assert not running.done(), running
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            body = json.dumps(envelope(member_dm("hello there"), "Ev0RUN"))
            headers = {"Content-Type": "application/json", **sign(body)}
            async with session.post(f"{url}/slack/events", data=body, headers=headers) as response:
                assert response.status == 200
        # The running dispatcher (not a test drain) sends the join text to the stranger.
        await wait_for(lambda: fake_slack.calls_to("chat.postMessage"))
        sent = fake_slack.calls_to("chat.postMessage")[0]
        assert sent.args["channel"] == dm_channel("alice") and "members of Peak Club" in sent.args["text"]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert "serving Slack events" in caplog.text and "Sending a request" in caplog.text  # logs were captured
    for secret in (fake_slack.bot_token, fake_slack.app_token, SIGNING_SECRET):
        assert secret not in caplog.text


async def test_slack_dropping_events_is_acknowledged_and_logged(bot, caplog):
    notice = {"token": "x", "type": "app_rate_limited", "team_id": "T0CONCIERGE", "minute_rate_limited": 1518467820,
              "api_app_id": "A0CONCIERGE"}
    answered = await bot.post(json.dumps(notice), "application/json")
    assert answered.status == 200
    assert "dropping events of workspace T0CONCIERGE" in caplog.text
