"""Running the Slack bot: Socket Mode (default) or HTTP mode, with the outbox dispatcher alongside."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.listeners import SlackListeners
from adapters.slack.manifest import EVENTS_PATH
from adapters.slack.platform import SlackPlatform
from adapters.slack.settings import SlackSettings, looks_like_channel_id
from concierge.bootstrap import build_runtime
from concierge.clock import Clock
from concierge.settings import Settings

log = logging.getLogger(__name__)

WEB_API_TIMEOUT_S = 30


def events_web_app(app: AsyncApp, path: str = EVENTS_PATH) -> web.Application:
    """An aiohttp application serving bolt's request handler at `POST path`, plus `GET /healthz`.

    bolt checks each request's `X-Slack-Signature` against the signing secret (and refuses
    timestamps older than five minutes) with 401 before any listener runs.
    """

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post(path, slack_events)
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def start_http(app: AsyncApp, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` over HTTP; returns the runner (to `cleanup()`) and the bound port (for port 0)."""
    runner = web.AppRunner(events_web_app(app), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, bound


def web_client(slack: SlackSettings, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """The Web API client for the bot token, at SLACK_API_URL.

    The SDK would send a request again by itself after a dropped connection, when a post may have
    gone through: only a connection never made is tried again here. Anything else is the outbox's
    to retry, after it checked whether the post arrived (`SlackPlatform.find_sent`).
    """
    never_connected = AsyncConnectionErrorRetryHandler(error_types=[aiohttp.ClientConnectorError])
    return AsyncWebClient(token=slack.secret("bot_token"), base_url=slack.api_url, session=session,
                          timeout=WEB_API_TIMEOUT_S, retry_handlers=[never_connected])


def wire(settings: Settings, client: AsyncWebClient, *, signing_secret: str = "",
         clock: Clock | None = None, catch_up_per_min: float = 50) -> SlackListeners:
    """A runtime with the Slack platform, and the bolt app in front of it (`.runtime`, `.app`)."""
    platform = SlackPlatform(client)
    runtime = build_runtime(settings, {"slack": platform}, clock=clock)
    return SlackListeners(runtime, settings, platform, signing_secret=signing_secret,
                          catch_up_per_min=catch_up_per_min)


def catch_up_on_hello(listeners: SlackListeners):  # noqa: ANN201
    """A Socket Mode message listener: each `hello` (the first connection, every reconnect) starts a catch-up."""

    async def on_message(_client, message: dict, _raw: str) -> None:  # noqa: ANN001
        if message.get("type") == "hello":
            listeners.start_catch_up()

    return on_message


async def run(settings: Settings, http: bool = False, *, slack: SlackSettings | None = None) -> None:
    """Serve Slack until cancelled (Ctrl-C): Socket Mode, or HTTP mode with `http=True`.

    `concierge run` migrates the database before it calls this.
    """
    slack = slack or SlackSettings()
    missing = slack.missing_for(http)
    if missing:
        raise SystemExit(f"Slack is not configured: set {', '.join(missing)} (see docs/slack.md).")
    for channel in settings.staff_channels() if settings.staff_platform in ("", "slack") else ():
        if not looks_like_channel_id(channel):  # the staff channel, or a CONCIERGE_SPECIALTY_CHANNELS one
            setting = "CONCIERGE_STAFF_CHANNEL" if channel == settings.staff_channel else "CONCIERGE_SPECIALTY_CHANNELS"
            log.warning("%s: %r is not a Slack channel id (C0123ABCD); staff replies will not "
                        "be recognised. Run `concierge slack doctor`.", setting, channel)
    timeout = aiohttp.ClientTimeout(total=WEB_API_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        listeners = wire(settings, web_client(slack, session), signing_secret=slack.secret("signing_secret"),
                         catch_up_per_min=slack.catch_up_per_min)
        runtime = listeners.runtime
        # The outbox and inbox workers and the digest scheduler.
        worker = asyncio.create_task(runtime.run_background(), name="concierge-background")
        try:
            if http:
                runner, port = await start_http(listeners.app, slack.http_host, slack.http_port)
                log.info("serving Slack events at http://%s:%s%s (HTTP mode)", slack.http_host, port, EVENTS_PATH)
                # What was written while we were stopped; events arriving meanwhile are fine (de-duplicated).
                listeners.start_catch_up()
                try:
                    await asyncio.Event().wait()
                finally:
                    await runner.cleanup()
            else:
                handler = AsyncSocketModeHandler(listeners.app, slack.secret("app_token"))
                # Slack says hello on every new connection: the catch-up reads what was missed meanwhile.
                handler.client.message_listeners.append(catch_up_on_hello(listeners))
                try:
                    await handler.connect_async()
                    log.info("connected to Slack (Socket Mode)")
                    await asyncio.Event().wait()
                finally:
                    await handler.close_async()
        finally:
            # Ctrl-C or SIGTERM: no new events (the server or socket is closed above); what was
            # acknowledged finishes; the send in flight finishes and its outcome is recorded.
            await listeners.stop_catch_up()
            with contextlib.suppress(asyncio.TimeoutError):
                await listeners.idle(timeout=10)
            await runtime.stop_background(worker)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(runtime.concierge.told(), 5)
            runtime.close()
