"""Running the Slack bot: Socket Mode (default) or HTTP mode, on a runtime it may share with other platforms."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.bodies import body_problem
from adapters.slack.files import slack_files
from adapters.slack.listeners import SlackListeners
from adapters.slack.manifest import EVENTS_PATH
from adapters.slack.platform import SlackPlatform
from adapters.slack.settings import SlackSettings, looks_like_channel_id
from concierge.bootstrap import Runtime, build_runtime
from concierge.clock import Clock
from concierge.health import Health
from concierge.serve import serve_connections, settings_for
from concierge.settings import Settings
from monitoring import add_routes

log = logging.getLogger(__name__)

WEB_API_TIMEOUT_S = 30


def events_web_app(app: AsyncApp, path: str = EVENTS_PATH, *, signing_secret: str = "",
                   health: Health | None = None) -> web.Application:
    """An aiohttp application serving bolt's request handler at `POST path`, plus `GET /healthz`
    (and, given the runtime's `health`, `GET /readyz` and `GET /metrics`: see `monitoring`).

    bolt checks each request's `X-Slack-Signature` against the signing secret (and refuses
    timestamps older than five minutes) with 401 before any listener runs. A body whose shape
    Slack never sends (`adapters.slack.bodies`) is answered before bolt parses it: 401 when
    unsigned, else 400 and one log line.
    """
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        body = await request.read()
        problem = body_problem(body, request.content_type or "")
        if problem:
            if verifier is None or not verifier.is_valid(body, request.headers.get("X-Slack-Request-Timestamp", ""),
                                                         request.headers.get("X-Slack-Signature", "")):
                return web.Response(status=401, text="invalid signature")
            log.warning("refused a malformed Slack request: %s", problem)
            return web.Response(status=400, text=f"malformed request: {problem}")
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post(path, slack_events)
    web_app.router.add_get("/healthz", healthz)
    if health is not None:
        add_routes(web_app, health, healthz=False)
    return web_app


async def start_http(app: AsyncApp, host: str, port: int, *, signing_secret: str = "",
                     health: Health | None = None) -> tuple[web.AppRunner, int]:
    """Serve `app` over HTTP; returns the runner (to `cleanup()`) and the bound port (for port 0)."""
    runner = web.AppRunner(events_web_app(app, signing_secret=signing_secret, health=health), access_log=None)
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
    platform = SlackPlatform(client, slack_files(client, settings))
    runtime = build_runtime(settings, {"slack": platform}, clock=clock)
    return SlackListeners(runtime, settings, platform, signing_secret=signing_secret,
                          catch_up_per_min=catch_up_per_min)


def catch_up_on_hello(listeners: SlackListeners) -> Callable[[object, dict, str | None], Awaitable[None]]:
    """A Socket Mode message listener: each `hello` (the first connection, every reconnect) starts a catch-up."""

    async def on_message(_client: object, message: dict, _raw: str | None) -> None:
        if message.get("type") == "hello":
            listeners.start_catch_up()

    return on_message


def staff_channel_warnings(settings: Settings) -> list[str]:
    """Staff channels that are not Slack channel ids, when the staff threads live on Slack."""
    if settings.staff_platform not in ("", "slack"):
        return []  # the staff channels are another platform's: its adapter checks them
    warnings = []
    for channel in settings.staff_channels():  # the staff channel, and each CONCIERGE_SPECIALTY_CHANNELS one
        if not looks_like_channel_id(channel):
            setting = "CONCIERGE_STAFF_CHANNEL" if channel == settings.staff_channel else "CONCIERGE_SPECIALTY_CHANNELS"
            warnings.append(f"{setting}: {channel!r} is not a Slack channel id (C0123ABCD); staff replies will not "
                            "be recognised. Run `concierge slack doctor`.")
    return warnings


class SlackConnection:
    """Slack's side of a running bot (`concierge.serve.Connection`): the Web API client and its
    `SlackPlatform` first, then, attached to the shared runtime, the bolt app served over HTTP
    (`http=True`) or Socket Mode, with the catch-up after downtime."""

    def __init__(self, settings: Settings, slack: SlackSettings, *, http: bool = False) -> None:
        missing = slack.missing_for(http)
        if missing:
            raise SystemExit(f"Slack is not configured: set {', '.join(missing)} (see docs/slack.md).")
        for warning in staff_channel_warnings(settings):
            log.warning("%s", warning)
        self.settings = settings
        self.slack = slack
        self.http = http
        # Made inside the running loop (aiohttp wants one); closed last, after the outbox stopped.
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEB_API_TIMEOUT_S))
        client = web_client(slack, self.session)
        self.platform = SlackPlatform(client, slack_files(client, settings))
        self.listeners: SlackListeners | None = None
        self.port: int | None = None  # HTTP mode: the port bound
        self._runner: web.AppRunner | None = None
        self._handler: AsyncSocketModeHandler | None = None

    async def start(self, runtime: Runtime) -> None:
        slack = self.slack
        self.listeners = listeners = SlackListeners(runtime, self.settings, self.platform,
                                                    signing_secret=slack.secret("signing_secret"),
                                                    catch_up_per_min=slack.catch_up_per_min)
        if self.http:
            self._runner, self.port = await start_http(listeners.app, slack.http_host, slack.http_port,
                                                       signing_secret=listeners.signing_secret, health=runtime.health)
            log.info("serving Slack events at http://%s:%s%s (HTTP mode)", slack.http_host, self.port, EVENTS_PATH)
            # What was written while we were stopped; events arriving meanwhile are fine (de-duplicated).
            listeners.start_catch_up()
        else:
            self._handler = AsyncSocketModeHandler(listeners.app, slack.secret("app_token"))
            # Slack says hello on every new connection: the catch-up reads what was missed meanwhile.
            self._handler.client.message_listeners.append(catch_up_on_hello(listeners))
            await self._handler.connect_async()
            log.info("connected to Slack (Socket Mode)")

    async def wait(self) -> None:
        await asyncio.Event().wait()  # the server and the socket client keep themselves up

    async def stop(self) -> None:
        # No new events (the server or the socket is closed); what was acknowledged finishes.
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._handler is not None:
            await self._handler.close_async()
            self._handler = None
        if self.listeners is not None:
            await self.listeners.stop_catch_up()
            with contextlib.suppress(asyncio.TimeoutError):
                await self.listeners.idle(timeout=10)

    async def close(self) -> None:
        await self.session.close()

    def connected(self) -> bool:
        """HTTP mode: the events server is up; Socket Mode: the socket is open (`/readyz`)."""
        if self.http:
            return self._runner is not None
        client = self._handler.client if self._handler is not None else None
        return (client is not None and not client.closed and not client.stale
                and client.current_session is not None and not client.current_session.closed)


async def run(settings: Settings, http: bool = False, *, slack: SlackSettings | None = None) -> None:
    """Serve Slack alone until cancelled (Ctrl-C): Socket Mode, or HTTP mode with `http=True`.

    `concierge run` migrates the database before it calls this.
    """
    settings = settings_for(settings, ["slack"])
    await serve_connections(settings, [SlackConnection(settings, slack or SlackSettings(), http=http)])
