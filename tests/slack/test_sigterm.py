"""SIGTERM (systemd, containers) stops `concierge run` like Ctrl-C: what was acknowledged is sent and recorded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from urllib.parse import urlencode

import aiohttp
from sqlmodel import select

from concierge.database import Database
from concierge.records import OutboxItem
from tests.slack.harness import ADMIN, SIGNING_SECRET, STAFF, envelope, sign
from tests.support.net import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def test_sigterm_finishes_what_was_acknowledged_and_exits_0(database_url, fake_slack, tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CONCIERGE_", "SLACK_", "DISCORD_"))}
    env.update(SLACK_BOT_TOKEN=fake_slack.bot_token, SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_API_URL=fake_slack.api_url, CONCIERGE_HTTP_HOST="127.0.0.1", CONCIERGE_HTTP_PORT=str(port),
               CONCIERGE_DATABASE_URL=database_url, CONCIERGE_STAFF_CHANNEL=STAFF, CONCIERGE_ADMINS=f"slack:{ADMIN}",
               CONCIERGE_CATCH_UP_HOURS="0", PYTHONPATH=ROOT)
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "concierge.cli", "run", "--platform", "slack", "--http", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            for number, text in enumerate(("member add <@UALICE|alice> premium Alice", "expert add <@UBOB|bob> general Bob")):
                form = urlencode({"command": "/concierge", "text": text, "user_id": ADMIN, "channel_id": "DADMIN",
                                  "team_id": "T0", "trigger_id": f"trigger.{number}",
                                  "response_url": fake_slack.response_url(f"k{number}")})
                async with http.post(f"{url}/slack/events", data=form, headers={
                        "Content-Type": "application/x-www-form-urlencoded", **sign(form)}) as response:
                    assert response.status == 200
            for _ in range(100):  # both answered: the enrolment is done
                if len(fake_slack.responses) == 2:
                    break
                await asyncio.sleep(0.05)
            ts = f"{time.time():.6f}"
            body = json.dumps(envelope({"type": "message", "channel": "DALICE", "channel_type": "im",
                                        "user": "UALICE", "text": "Question before I go?", "ts": ts}, "Ev1"))
            async with http.post(f"{url}/slack/events", data=body, headers={
                    "Content-Type": "application/json", **sign(body)}) as response:
                assert response.status == 200
        bot.send_signal(signal.SIGTERM)  # at once: the card may still be on its way
        out, err = await asyncio.wait_for(bot.communicate(), 30)
    finally:
        if bot.returncode is None:
            bot.kill()
            await bot.wait()
    assert bot.returncode == 0, err.decode()[-2000:]
    cards = [call for call in fake_slack.calls_to("chat.postMessage") if call.args.get("channel") == STAFF]
    assert len(cards) == 1
    db = Database.from_url(database_url)
    try:
        statuses = db.run_sync(lambda session: list(session.exec(select(OutboxItem.status)).all()))
    finally:
        db.close()
    assert "sending" not in statuses, statuses
