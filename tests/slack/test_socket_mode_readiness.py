"""Socket Mode and `/readyz`: ready while the socket to Slack is open, not ready once it is gone."""

from __future__ import annotations

import asyncio

import aiohttp

import adapters.slack
from tests.slack.harness import core_settings
from tests.support.net import free_port


async def readiness(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def until(url: str, status: int) -> tuple[int, str]:
    for _ in range(200):
        answer = await readiness(url)
        if answer[0] == status:
            return answer
        await asyncio.sleep(0.05)
    return answer


async def test_readyz_follows_the_socket_mode_connection(sqlite_url, fake_slack, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", fake_slack.app_token)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.api_url)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    running = asyncio.create_task(adapters.slack.run(core_settings(sqlite_url, metrics_port=port)))
    try:
        await asyncio.wait_for(fake_slack.socket_connected.wait(), 5)
        assert await until(url, 200) == (200, "ready")
        await fake_slack.stop()  # Slack goes away: the socket closes, reconnecting fails
        assert await until(url, 503) == (503, "slack: not connected\n")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
