"""`/metrics` and `/readyz` in the combined process: Slack in HTTP mode (the routes on its own events
server too) and Discord on the gateway, one runtime, the endpoint on CONCIERGE_METRICS_PORT.

A member writes on Discord, the card opens in the Slack staff channel, the expert answers there
and the member gets the answer: the counters say so, by platform. When Discord's gateway goes
away, `/readyz` says Discord is not connected.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from concierge.serve import serve
from tests.conftest import make_settings
from tests.discord.harness import DiscordWorld
from tests.slack.harness import ADMIN, STAFF, envelope, sign
from tests.support.net import free_port, wait_for
from tests.support.slack import slack_command


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_the_combined_process_serves_metrics_and_readiness(environment, fake, fake_slack, sqlite_url,  # noqa: F811
                                                                 clock):
    port = free_port()
    metrics = f"http://127.0.0.1:{port}"
    settings = make_settings(sqlite_url, staff_platform="slack", staff_channel=STAFF, admins=[f"slack:{ADMIN}"],
                             metrics_port=port)
    people = DiscordWorld(fake, settings, clock)
    running = asyncio.create_task(serve(settings, ["slack", "discord"], http=True))
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.wait_for(fake.connected.wait(), 10)
            await wait_for(lambda: running.done() or fake._sockets, timeout=10)
            alice = people.person("alice")
            await slack_command(session, environment, fake_slack, ADMIN, f"member add discord:{alice['id']} premium alice")
            await slack_command(session, environment, fake_slack, ADMIN, "expert add <@UBOB|bob> nutrition bob")
            fake.emit("MESSAGE_CREATE", fake.message_payload(people.dm_channel("alice"), alice, "Carbs before a race?"))
            await wait_for(lambda: fake_slack.calls_to("chat.postMessage"), timeout=10)
            [card] = fake_slack.calls_to("chat.postMessage")
            reply = fake_slack.write(STAFF, "UBOB", "Yes, two hours before.", thread_ts=card.response["ts"])
            body = json.dumps(envelope(reply, "Ev0METRICS"))
            async with session.post(f"{environment}/slack/events", data=body,
                                    headers={"Content-Type": "application/json", **sign(body)}) as response:
                assert response.status == 200
            await wait_for(lambda: people.dms("alice"), timeout=10)

            status, text = await get(session, f"{metrics}/metrics")
            assert status == 200
            samples = samples_of(text)

            def value(name: str, **labels: str) -> float:
                return samples.get((name, tuple(sorted(labels.items()))), 0.0)

            assert value("concierge_inbound_events_total", platform="discord", kind="member_message", outcome="done") == 1
            assert value("concierge_inbound_events_total", platform="slack", kind="staff_reply", outcome="done") == 1
            assert value("concierge_inbound_events_total", platform="slack", kind="command_invoked", outcome="done") == 2
            assert value("concierge_relays_total", direction="to_staff") == 1
            assert value("concierge_relays_total", direction="to_member") == 1
            assert value("concierge_first_response_seconds_count", specialty="nutrition") == 1
            assert value("concierge_sends_total", platform="slack", outcome="sent") >= 1  # the card (and its redraw)
            assert value("concierge_sends_total", platform="discord", outcome="sent") == 1  # the answer
            assert ("concierge_outbox_depth", ()) in samples

            # Slack's events server serves the same routes (HTTP mode), from the same registry.
            status, slack_text = await get(session, f"{environment}/metrics")
            assert status == 200
            assert samples_of(slack_text)[("concierge_relays_total", (("direction", "to_member"),))] == 1
            for _ in range(100):  # discord.py is ready once the guilds of its READY came (up to 2 s)
                if (await get(session, f"{metrics}/readyz"))[0] == 200:
                    break
                await asyncio.sleep(0.05)
            assert await get(session, f"{metrics}/readyz") == (200, "ready")
            assert await get(session, f"{environment}/readyz") == (200, "ready")
            assert await get(session, f"{metrics}/healthz") == (200, "ok")

            await fake.stop()  # Discord's gateway goes away (and stays away)
            await wait_for(lambda: not fake._sockets, timeout=10)
            status, text = await get(session, f"{metrics}/readyz")
            assert (status, text) == (503, "discord: not connected\n")
            assert await get(session, f"{environment}/readyz") == (503, "discord: not connected\n")
            assert await get(session, f"{metrics}/healthz") == (200, "ok")
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
