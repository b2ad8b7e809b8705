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
    """The Web API client for the bot token, at SLACK_API_URL."""
    return AsyncWebClient(token=slack.secret("bot_token"), base_url=slack.api_url, session=session,
                          timeout=WEB_API_TIMEOUT_S)


def wire(settings: Settings, client: AsyncWebClient, *, signing_secret: str = "",
         clock: Clock | None = None) -> SlackListeners:
    """A runtime with the Slack platform, and the bolt app in front of it (`.runtime`, `.app`)."""
    platform = SlackPlatform(client)
    runtime = build_runtime(settings, {"slack": platform}, clock=clock)
    return SlackListeners(runtime, settings, platform, signing_secret=signing_secret)


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
        listeners = wire(settings, web_client(slack, session), signing_secret=slack.secret("signing_secret"))
        runtime = listeners.runtime
        # The outbox loop, and the digest scheduler where the core offers it (`run_background`).
        background = getattr(runtime, "run_background", None)
        work = background() if background is not None else runtime.dispatcher.run()
        worker = asyncio.create_task(work, name="concierge-background")
        try:
            if http:
                runner, port = await start_http(listeners.app, slack.http_host, slack.http_port)
                log.info("serving Slack events at http://%s:%s%s (HTTP mode)", slack.http_host, port, EVENTS_PATH)
                try:
                    await asyncio.Event().wait()
                finally:
                    await runner.cleanup()
            else:
                handler = AsyncSocketModeHandler(listeners.app, slack.secret("app_token"))
                try:
                    await handler.connect_async()
                    log.info("connected to Slack (Socket Mode)")
                    await asyncio.Event().wait()
                finally:
                    await handler.close_async()
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            with contextlib.suppress(asyncio.TimeoutError):
                await listeners.idle(timeout=10)
            runtime.close()
