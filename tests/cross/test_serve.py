"""`concierge run` with Slack and Discord both configured: one process, one runtime, a clean stop.

The real orchestration (`concierge.serve.serve`) with the settings read from the environment:
Slack in HTTP mode on a loopback port (signed requests, the fake Web API), Discord over the fake
gateway websocket and REST API. A member writes on Discord, the card opens in the Slack staff
channel, the expert's reply there reaches the member's Discord DM, all delivered by the running
outbox. Cancelling (what Ctrl-C and SIGTERM do) stops both platforms and leaves no task running,
no socket open and nothing to warn about.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import warnings

import aiohttp
import pytest
from typer.testing import CliRunner

import scheduling
from concierge.cli import app
from concierge.serve import serve
from tests.conftest import make_settings
from tests.discord.harness import DiscordWorld
from tests.slack.harness import ADMIN, STAFF, envelope, sign
from tests.support.net import wait_for
from tests.support.slack import slack_command


def running_tasks() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks() if task is not asyncio.current_task() and not task.done()]


async def test_one_process_serves_slack_and_discord_and_stops_cleanly(environment, fake, fake_slack, sqlite_url,
                                                                      clock, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    settings = make_settings(sqlite_url, staff_platform="slack", staff_channel=STAFF, admins=[f"slack:{ADMIN}"])
    people = DiscordWorld(fake, settings, clock)  # builds Discord payloads; the bot itself runs in `serve`
    attached = []

    def attach(runtime):  # noqa: ANN001, ANN202 - the digest scheduler, as the runtime's background starts it
        attached.append(runtime)
        return attach.real(runtime)

    attach.real = scheduling.attach
    monkeypatch.setattr(scheduling, "attach", attach)
    before = set(asyncio.all_tasks())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        running = asyncio.create_task(serve(settings, ["slack", "discord"], http=True))
        async with aiohttp.ClientSession() as session:
            await asyncio.wait_for(fake.connected.wait(), 10)
            await wait_for(lambda: attached, timeout=10)
            [runtime] = attached  # one runtime, one background for the process
            assert set(runtime.dispatcher.platforms) == {"slack", "discord"}
            assert set(runtime.dispatcher.limiters) == {"slack", "discord"}, "digest fan-out limited per platform"

            alice = people.person("alice")
            assert "premium" in await slack_command(session, environment, fake_slack, ADMIN,
                                                    f"member add discord:{alice['id']} premium alice")
            assert "nutrition" in await slack_command(session, environment, fake_slack, ADMIN,
                                                      "expert add <@UBOB|bob> nutrition bob")

            fake.emit("MESSAGE_CREATE", fake.message_payload(people.dm_channel("alice"), alice, "Carbs before a race?"))
            await wait_for(lambda: [call for call in fake_slack.calls_to("chat.postMessage")
                                    if call.args["channel"] == STAFF], timeout=10)
            [card] = fake_slack.calls_to("chat.postMessage")
            assert "Carbs before a race?" in card.args["text"] and "discord:" in json.dumps(card.args["blocks"])

            reply = fake_slack.write(STAFF, "UBOB", "Yes, *two hours* before.", thread_ts=card.response["ts"])
            body = json.dumps(envelope(reply, "Ev0SERVE"))
            async with session.post(f"{environment}/slack/events", data=body,
                                    headers={"Content-Type": "application/json", **sign(body)}) as response:
                assert response.status == 200
            await wait_for(lambda: people.dms("alice"), timeout=10)
            assert people.dms("alice") == ["Yes, **two hours** before."]

            running.cancel()  # what Ctrl-C and SIGTERM do
            with pytest.raises(asyncio.CancelledError):
                await running
            with pytest.raises(aiohttp.ClientConnectionError):  # Slack's events endpoint is closed
                async with session.get(f"{environment}/healthz"):
                    pass
        await asyncio.sleep(0.1)  # the fakes notice closed connections
        assert not fake._sockets, "the Discord gateway connection is closed"
        assert [repr(task) for task in running_tasks() if task not in before] == []
        gc.collect()  # an unclosed session or transport warns when collected
    assert [str(warning.message) for warning in caught] == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text


def test_two_platforms_without_a_staff_platform_refuse_to_start(environment, monkeypatch, tmp_path):
    monkeypatch.setenv("CONCIERGE_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1
    assert "set CONCIERGE_STAFF_PLATFORM to the platform where experts answer (discord or slack)" in result.output
    assert not (tmp_path / "never.db").exists(), "refused before anything started"
