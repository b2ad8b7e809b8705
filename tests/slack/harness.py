"""The Slack bot under test: the real bolt app served over loopback HTTP, fed signed requests.

Payload builders follow the shapes of Slack's Events API, slash command and block_actions
requests; every request is signed with the v0 HMAC scheme, as Slack signs them.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from adapters.slack.listeners import SlackListeners
from adapters.slack.manifest import EVENTS_PATH, bot_events
from adapters.slack.server import start_http, web_client, wire
from adapters.slack.settings import SlackSettings
from concierge.clock import Clock
from tests.conftest import make_settings
from tests.slack.fake_slack import TEAM, FakeSlack

SIGNING_SECRET = "test-signing-secret-0123456789"
STAFF = "CSTAFF0001"
ADMIN = "UADMIN"


def slack_settings(fake: FakeSlack, **overrides: Any) -> SlackSettings:
    values: dict[str, Any] = dict(bot_token=fake.bot_token, app_token=fake.app_token,
                                  signing_secret=SIGNING_SECRET, api_url=fake.api_url, http_host="127.0.0.1",
                                  http_port=0)
    values.update(overrides)
    return SlackSettings(_env_file=None, **values)


def core_settings(url: str, **overrides: Any):
    values: dict[str, Any] = dict(admins=[f"slack:{ADMIN}"], staff_channel=STAFF)
    values.update(overrides)
    return make_settings(url, **values)


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def envelope(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """An Events API `event_callback` body around `event`."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0CONCIERGE",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}],
    }


def subscription_of(event: dict[str, Any]) -> str:
    """The manifest subscription that makes Slack deliver `event`."""
    if event["type"] == "message":
        kind = event.get("channel_type", "channel")
        return {"im": "message.im", "channel": "message.channels", "group": "message.groups"}[kind]
    return event["type"]


@dataclass
class Posted:
    status: int
    text: str


class BotUnderTest:
    """A wired runtime, the bolt app on a loopback port, and a client that signs what it sends."""

    def __init__(self, listeners: SlackListeners, fake: FakeSlack, runner, port: int,
                 session: aiohttp.ClientSession, web_session: aiohttp.ClientSession) -> None:
        self.listeners = listeners
        self.runtime = listeners.runtime
        self.platform = listeners.platform
        self.fake = fake
        self.url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        self.base = f"http://127.0.0.1:{port}"
        self._runner = runner
        self._session = session
        self._web_session = web_session
        self._ids = itertools.count(1)

    def new_id(self, prefix: str = "Ev") -> str:
        return f"{prefix}{next(self._ids):06d}"

    async def post(self, body: str, content_type: str, headers: dict[str, str] | None = None,
                   *, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> Posted:
        all_headers = {"Content-Type": content_type, **sign(body, timestamp, secret), **(headers or {})}
        async with self._session.post(self.url, data=body.encode(), headers=all_headers) as response:
            return Posted(response.status, await response.text())

    async def post_event(self, event: dict[str, Any], *, event_id: str | None = None,
                         retry_num: int | None = None, expect: int | None = 200) -> Posted:
        """Deliver `event` in an Events API envelope; `expect` is the HTTP status asserted (None: any)."""
        assert subscription_of(event) in bot_events(), f"the manifest does not subscribe to {event}"
        headers = {}
        if retry_num:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_error"}
        body = json.dumps(envelope(event, event_id or self.new_id()))
        posted = await self.post(body, "application/json", headers)
        assert expect is None or posted.status == expect, posted
        return posted

    async def post_command(self, user: str, channel: str, text: str, *, key: str | None = None) -> str:
        """Run `/concierge text` as `user` in `channel`; returns the response_url key of the answer."""
        key = key or self.new_id("cmd")
        form = {
            "token": "legacy-verification-token", "team_id": TEAM, "team_domain": "concierge-test",
            "channel_id": channel, "channel_name": "directmessage" if channel.startswith("D") else "staff",
            "user_id": user, "user_name": user.lower(), "command": "/concierge", "text": text,
            "api_app_id": "A0CONCIERGE", "response_url": self.fake.response_url(key),
            "trigger_id": f"trigger.{key}",
        }
        posted = await self.post(urlencode(form), "application/x-www-form-urlencoded")
        assert posted.status == 200 and posted.text == "", posted  # acknowledged at once, answered later
        return key

    async def post_button(self, user: str, channel: str, message: dict[str, Any] | None,
                          button: dict[str, Any]) -> str:
        """Press `button` of `message` (as the Web API recorded it) as `user`; returns the response_url key.

        `message=None` presses a button of an ephemeral answer: Slack sends no message then.
        """
        key = self.new_id("act")
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": "A0CONCIERGE",
            "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": message["ts"] if message else f"{time.time():.6f}",
                          "channel_id": channel, "is_ephemeral": message is None},
            "trigger_id": f"trigger.{key}",
            "team": {"id": TEAM, "domain": "concierge-test"},
            "channel": {"id": channel, "name": "staff"},
            "response_url": self.fake.response_url(key),
            "actions": [{"action_id": button["action_id"], "block_id": "b1", "type": "button",
                         "value": button.get("value", ""), "text": button["text"],
                         "action_ts": f"{time.time():.6f}"}],
        }
        if message is not None:
            payload["message"] = message
        posted = await self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
        assert posted.status == 200, posted
        return key

    async def post_view_submission(self, user: str, view: dict[str, Any], text: str) -> Posted:
        """`user` writes `text` in the one text box of the modal `view` (as views.open recorded it) and sends it."""
        [block] = [block for block in view["blocks"] if block["type"] == "input"]
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "concierge-test"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": "A0CONCIERGE",
            "token": "legacy-verification-token",
            "trigger_id": f"trigger.{self.new_id('view')}",
            "view": {**view, "state": {"values": {block["block_id"]: {
                block["element"]["action_id"]: {"type": block["element"]["type"], "value": text}}}}},
            "response_urls": [],
        }
        return await self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    async def post_home_button(self, user: str, view: dict[str, Any], button: dict[str, Any]) -> Posted:
        """Press `button` of the App Home `view` (as views.publish recorded it) as `user`.

        Slack sends such a press with the view and no channel, message or response_url.
        """
        key = self.new_id("home")
        view_id = f"V{key.upper()}"
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": "A0CONCIERGE",
            "token": "legacy-verification-token",
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": f"trigger.{key}",
            "team": {"id": TEAM, "domain": "concierge-test"},
            "is_enterprise_install": False,
            "view": {**view, "id": view_id, "team_id": TEAM, "type": "home", "private_metadata": "",
                     "callback_id": "", "state": {"values": {}}, "hash": f"{int(time.time())}.{key}",
                     "app_id": "A0CONCIERGE", "bot_id": "BBOT"},
            "actions": [{"action_id": button["action_id"], "block_id": "b1", "type": "button",
                         "value": button.get("value", ""), "text": button["text"],
                         "action_ts": f"{time.time():.6f}"}],
        }
        posted = await self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
        assert posted.status == 200, posted
        return posted

    async def settle(self) -> None:
        """Let the listeners finish their hand-overs, then process due inbound events and deliver what is queued."""
        await self.listeners.idle(timeout=10)
        await self.runtime.drain()

    async def close(self) -> None:
        await self.listeners.stop_catch_up()
        await self.listeners.idle(timeout=10)
        await self._runner.cleanup()
        await self._session.close()
        await self._web_session.close()
        self.runtime.close()


async def start_bot(url: str, fake: FakeSlack, *, clock: Clock | None = None, **overrides: Any) -> BotUnderTest:
    """The real wiring (`server.wire`) with the Web API client pointed at `fake`, served on a loopback port."""
    settings = core_settings(url, **overrides)
    slack = slack_settings(fake)
    web_session = aiohttp.ClientSession()
    listeners = wire(settings, web_client(slack, web_session), signing_secret=slack.secret("signing_secret"),
                     clock=clock)
    runner, port = await start_http(listeners.app, "127.0.0.1", 0, signing_secret=listeners.signing_secret)
    return BotUnderTest(listeners, fake, runner, port, aiohttp.ClientSession(), web_session)
