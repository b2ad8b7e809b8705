"""A loopback fake of Discord: a real aiohttp server answering the REST calls the bot makes.

It records every request (method, path, JSON body), keeps the channels, threads and messages it
was asked to create, answers with payloads shaped like Discord's, and queues the gateway events
Discord would send back (a new thread's THREAD_CREATE) for the test to feed to the bot. Tests
can make the next matching requests fail (429 with retry_after, 403 with code 50007, 503...).

A message with files comes as multipart/form-data (`payload_json` and `files[n]`, as discord.py
sends it): the JSON part is recorded as the body, the files beside it (`Call.files`, and an
interaction answer's `files`, see `answer_files`).

Channels keep a history (`GET /channels/{id}/messages`, newest first, with `after`, `before`,
`around` and `limit` as Discord reads them): the bot's posts and what people wrote, including
messages written while the bot was away (`write`, no gateway event). A post with a `nonce` and
`enforce_nonce` repeated within `NONCE_WINDOW` returns the first message instead of a copy, and
stored messages do not show their nonce (as on Discord). `accept_then_fail` makes a request take
effect and still answer with an error (a post whose outcome the bot cannot know).
Ids are snowflakes of the test's clock, so a message's time (`Message.created_at`) is the time
the test says it is.

It also serves a minimal gateway websocket (HELLO, IDENTIFY, READY, GUILD_CREATE, heartbeat
acks, then pushed events) so one test can run the bot exactly as `concierge run` does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

TIMESTAMP = "2026-11-25T09:00:00.000000+00:00"
EVERYTHING = str((1 << 50) - 1)
BOT_ROLE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 35) | (1 << 38)
MESSAGE_CONTENT_FLAG = 1 << 18  # GATEWAY_MESSAGE_CONTENT
DISCORD_EPOCH_MS = 1_420_070_400_000
NONCE_WINDOW = timedelta(minutes=3)  # Discord: "a few minutes"


@dataclass
class Upload:
    """A file sent with a message (one `files[n]` part of a multipart request)."""

    part: str  # "files[0]", ...
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One request the bot made."""

    method: str
    path: str  # after /api/v10
    json: Any  # the JSON body; of a multipart request, its `payload_json`
    query: dict[str, str]
    files: list[Upload] = field(default_factory=list)


@dataclass
class Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int
    after: bool = False  # the request takes effect, then the error is the answer


@dataclass
class Thread:
    payload: dict[str, Any]
    archived: bool = False


FILES = web.RequestKey("files", list)  # a request's uploaded files, for the route handlers


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "global_name": name, "discriminator": "0", "avatar": None,
            "bot": bot, "public_flags": 0, "flags": 0}


def member_payload(user: dict[str, Any], roles: list[int] = (), permissions: str | None = None) -> dict[str, Any]:
    data = {"user": user, "roles": [str(role) for role in roles], "joined_at": TIMESTAMP, "deaf": False,
            "mute": False, "flags": 0, "nick": None, "avatar": None, "pending": False}
    if permissions is not None:
        data["permissions"] = permissions
    return data


def role_payload(role_id: int, name: str, permissions: int, position: int) -> dict[str, Any]:
    return {"id": str(role_id), "name": name, "permissions": str(permissions), "position": position, "color": 0,
            "hoist": False, "managed": False, "mentionable": False, "flags": 0, "icon": None,
            "unicode_emoji": None}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py decodes a body only when Content-Type is exactly application/json, as Discord sends it.
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=timezone.utc)


class FakeDiscord:
    """Discord's REST API on 127.0.0.1, port 0, with the objects of one guild and its staff channel.

    `clock` (anything with `now()`) dates the ids it hands out; real time when None.
    """

    def __init__(self, clock=None) -> None:  # noqa: ANN001
        self.clock = clock
        self._last_id = 0
        self.token = "fake-token"
        self.application_id = self.new_id()
        self.bot = user_payload(self.application_id, "Concierge", bot=True)  # a bot's user id is its app id
        self.guild_id = self.new_id()
        self.bot_role_id = self.new_id()
        self.staff_channel_id = self.new_id()
        self.application_flags = MESSAGE_CONTENT_FLAG
        self.bot_role_permissions = BOT_ROLE_PERMISSIONS
        self.commands: list[dict[str, Any]] = []  # the application's global commands
        self.calls: list[Call] = []
        self.users: dict[int, dict[str, Any]] = {self.application_id: self.bot}
        self.channels: dict[int, dict[str, Any]] = {self.staff_channel_id: self.text_channel_payload()}
        self.more_text_channels: dict[int, str] = {}  # id -> name: the guild's other text channels
        self.threads: dict[int, Thread] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.messages: dict[int, dict[str, Any]] = {}  # every message the bot posted, by id
        self.written: dict[int, dict[str, Any]] = {}  # what people wrote in DMs and threads, by id
        self._nonces: dict[str, tuple[int, datetime]] = {}  # the bot's recent nonces: message id, when
        self.gateway_events: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[int, list[dict[str, Any]]] = {}  # interaction id -> callback and follow-up bodies
        self._answered: dict[int, asyncio.Event] = {}
        self._failures: list[Failure] = []
        # Called after a request was carried out and before it is answered (a test's "the bot dies now").
        self.after_call: Callable[[str, str, Any], None] | None = None
        self._runner: web.AppRunner | None = None
        self.base = ""
        self.gateway_url = ""
        self.cdn_base = ""
        self.cdn_files: dict[int, bytes] = {}  # attachment id -> the bytes of a file someone attached
        self.cdn_reads: list[int] = []  # attachment ids read from the CDN
        self.identify: dict[str, Any] | None = None  # what the bot sent when it connected
        self.connected = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = itertools.count(1)
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Awaitable[web.Response]]]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/oauth2/applications/@me", self._get_application),
            ("GET", r"/applications/(\d+)/commands", self._get_commands),
            ("PUT", r"/applications/(\d+)/commands", self._put_commands),
            ("POST", r"/channels/(\d+)/messages", self._post_message),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._edit_message),
            ("DELETE", r"/channels/(\d+)/messages/(\d+)", self._delete_message),
            ("POST", r"/channels/(\d+)/messages/(\d+)/threads", self._start_thread),
            ("GET", r"/channels/(\d+)/messages", self._get_messages),
            ("GET", r"/channels/(\d+)", self._get_channel),
            ("PATCH", r"/channels/(\d+)", self._edit_channel),
            ("POST", r"/users/@me/channels", self._open_dm),
            ("POST", r"/interactions/(\d+)/([\w-]+)/callback", self._interaction_callback),
            ("POST", r"/webhooks/(\d+)/([\w-]+)", self._followup),
            ("GET", r"/guilds/(\d+)", self._get_guild),
            ("GET", r"/guilds/(\d+)/channels", self._get_guild_channels),
            ("GET", r"/guilds/(\d+)/members/(\d+)", self._get_member),
            ("GET", r"/gateway/bot", self._get_gateway),
        ]

    # Lifecycle.

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_get("/cdn/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}/api/v10"
        self.cdn_base = f"http://127.0.0.1:{port}/cdn"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway/"
        return self.base

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # What tests set up and read.

    def now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(timezone.utc)

    def new_id(self) -> int:
        """A snowflake of now (by the clock), larger than every id handed out before."""
        now_ms = int(self.now().timestamp() * 1000)
        self._last_id = max(self._last_id + 1, (now_ms - DISCORD_EPOCH_MS) << 22)
        return self._last_id

    def add_user(self, name: str) -> dict[str, Any]:
        user = user_payload(self.new_id(), name)
        self.users[int(user["id"])] = user
        return user

    def add_text_channel(self, name: str) -> int:
        """Another text channel in the guild (e.g. a specialty's staff channel); its id."""
        channel_id = self.new_id()
        self.more_text_channels[channel_id] = name
        self.channels[channel_id] = self.text_channel_payload(channel_id, name)
        return channel_id

    def dm_channel_of(self, user_id: int) -> int:
        if user_id not in self.dm_channels:
            channel_id = self.new_id()
            self.dm_channels[user_id] = channel_id
            self.channels[channel_id] = {"id": str(channel_id), "type": 1, "last_message_id": None,
                                         "recipients": [self.users[user_id]], "flags": 0}
        return self.dm_channels[user_id]

    def fail(self, method: str, path_pattern: str, status: int, body: dict[str, Any] | None = None,
             *, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next `times` requests matching method and path (a regex) with an error."""
        self._failures.append(Failure(method, re.compile(path_pattern), status, body or {}, headers or {}, times))

    def accept_then_fail(self, method: str, path_pattern: str, status: int = 500,
                         body: dict[str, Any] | None = None, *, times: int = 1) -> None:
        """Carry out the next `times` matching requests, then answer them with an error all the same."""
        self._failures.append(Failure(method, re.compile(path_pattern), status,
                                      body or {"message": "500: Internal Server Error", "code": 0}, {}, times,
                                      after=True))

    def rate_limit(self, method: str, path_pattern: str, retry_after: float) -> None:
        self.fail(method, path_pattern, 429,
                  {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
                  headers={"Via": "1.1 google", "Retry-After": str(int(retry_after))})

    def archive(self, thread_id: int) -> None:
        self.threads[thread_id].archived = True
        self.threads[thread_id].payload["thread_metadata"]["archived"] = True

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        return [call for call in self.calls if call.method == method and re.fullmatch(pattern, call.path)]

    def message_bodies(self) -> list[tuple[Call, dict[str, Any]]]:
        """Every message the bot asked Discord to create or edit: posts, edits, interaction answers."""
        bodies = []
        for call in self.calls:
            if call.method == "POST" and re.fullmatch(r"/channels/\d+/messages|/webhooks/\d+/[\w-]+", call.path):
                bodies.append((call, call.json))
            elif call.method == "PATCH" and re.fullmatch(r"/channels/\d+/messages/\d+", call.path):
                bodies.append((call, call.json))
            elif call.method == "POST" and call.path.endswith("/callback") and call.json["type"] in (4, 7):
                bodies.append((call, call.json["data"]))
        return bodies

    def write(self, message: dict[str, Any]) -> dict[str, Any]:
        """Keep what a person wrote in its channel's history (the gateway event, if any, is the test's)."""
        self.written[int(message["id"])] = message
        return message

    def history(self, channel_id: int) -> list[dict[str, Any]]:
        """Everything in a channel, thread or DM, oldest first, as `GET .../messages` serves it."""
        kept = [message for message in (*self.messages.values(), *self.written.values())
                if int(message["channel_id"]) == channel_id]
        return [self._served(message) for message in sorted(kept, key=lambda message: int(message["id"]))]

    def _served(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as Discord serves it: no nonce any more; the thread started on it, if any."""
        served = {key: value for key, value in message.items() if key != "nonce"}
        thread = self.threads.get(int(message["id"]))
        if thread is not None:
            served["thread"] = thread.payload
        return served

    def posts_in(self, channel_id: int) -> list[dict[str, Any]]:
        """Messages the bot posted in a channel, thread or DM, oldest first."""
        return [message for message in self.messages.values() if int(message["channel_id"]) == channel_id]

    def staff_threads(self) -> list[int]:
        return [thread_id for thread_id, thread in self.threads.items()
                if int(thread.payload["parent_id"]) == self.staff_channel_id]

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """An event Discord sends the bot: pushed on connected websockets, else queued for the test."""
        if not self._sockets:
            self.gateway_events.append((event, data))
            return
        frame = {"op": 0, "t": event, "s": next(self._sequence), "d": data}
        for socket in self._sockets:
            asyncio.ensure_future(socket.send_json(frame))

    def take_gateway_events(self) -> list[tuple[str, dict[str, Any]]]:
        events, self.gateway_events = self.gateway_events, []
        return events

    async def answer_to(self, interaction_id: int, timeout: float = 10.0) -> dict[str, Any]:
        """The body of the bot's first answer to an interaction (waits for it)."""
        event = self._answered.setdefault(interaction_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)
        return self.answers[interaction_id][0]

    # Payloads.

    def text_channel_payload(self, channel_id: int | None = None, name: str = "concierge-staff") -> dict[str, Any]:
        return {"id": str(channel_id or self.staff_channel_id), "type": 0, "guild_id": str(self.guild_id),
                "name": name, "position": 0, "permission_overwrites": [], "nsfw": False,
                "parent_id": None, "topic": None, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}

    def guild_payload(self) -> dict[str, Any]:
        """A GUILD_CREATE payload (also GET /guilds/{id})."""
        return {
            "id": str(self.guild_id), "name": "Peak Club", "icon": None, "owner_id": str(self.new_id()),
            "roles": [role_payload(self.guild_id, "@everyone", 0, 0),
                      role_payload(self.bot_role_id, "Concierge", self.bot_role_permissions, 1)],
            "channels": [self.text_channel_payload(), *(self.text_channel_payload(channel_id, name)
                                                        for channel_id, name in self.more_text_channels.items())],
            "threads": [], "members": [], "emojis": [], "stickers": [],
            "features": [], "member_count": 3, "large": False, "unavailable": False, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
            "premium_tier": 0, "preferred_locale": "en-US", "system_channel_flags": 0, "afk_timeout": 300,
            "joined_at": TIMESTAMP, "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [],
        }

    def thread_payload(self, thread_id: int, parent_id: int, name: str, auto_archive: int) -> dict[str, Any]:
        return {"id": str(thread_id), "type": 11, "guild_id": str(self.guild_id), "parent_id": str(parent_id),
                "owner_id": str(self.application_id), "name": name, "last_message_id": None,
                "message_count": 0, "member_count": 1, "rate_limit_per_user": 0, "flags": 0,
                "thread_metadata": {"archived": False, "auto_archive_duration": auto_archive,
                                    "archive_timestamp": TIMESTAMP, "locked": False}}

    def message_payload(self, channel_id: int, author: dict[str, Any], content: str, *,
                        message_id: int | None = None, embeds: list | None = None,
                        components: list | None = None, attachments: list | None = None,
                        reference: dict | None = None) -> dict[str, Any]:
        channel = self.channels.get(channel_id) or self.threads.get(channel_id, Thread({})).payload
        message_id = message_id or self.new_id()
        data = {"id": str(message_id), "channel_id": str(channel_id), "author": author,
                "content": content, "timestamp": snowflake_time(message_id).isoformat(), "edited_timestamp": None,
                "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
                "attachments": attachments or [], "embeds": embeds or [], "pinned": False, "type": 0, "flags": 0,
                "components": components or []}
        if channel.get("guild_id"):
            data["guild_id"] = channel["guild_id"]
        if reference:
            data["message_reference"] = reference
            data["type"] = 19
        return data

    def attachment(self, channel_id: int, filename: str, data: bytes,
                   content_type: str = "application/octet-stream") -> dict[str, Any]:
        """A file someone attaches to a message: its bytes on the fake CDN; returns the attachment payload."""
        attachment_id = self.new_id()
        self.cdn_files[attachment_id] = data
        url = f"{self.cdn_base}/attachments/{channel_id}/{attachment_id}/{filename}"
        return {"id": str(attachment_id), "filename": filename, "size": len(data), "url": url, "proxy_url": url,
                "content_type": content_type}

    async def _cdn(self, request: web.Request) -> web.Response:
        self.cdn_reads.append(int(request.match_info["attachment_id"]))
        data = self.cdn_files.get(int(request.match_info["attachment_id"]))
        if data is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=data, content_type="application/octet-stream")

    # The server.

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        files: list[Upload] = []
        if request.content_type == "multipart/form-data":
            form = await request.post()
            payload = json.loads(form["payload_json"]) if "payload_json" in form else None
            files = [Upload(name, part.filename, part.content_type, part.file.read())
                     for name, part in form.items() if isinstance(part, web.FileField)]
        else:
            body = await request.read()
            payload = json.loads(body) if body and request.content_type == "application/json" else None
        request[FILES] = files
        self.calls.append(Call(request.method, path, payload, dict(request.query), files))
        late: Failure | None = None
        for failure in self._failures:
            if failure.times > 0 and failure.method == request.method and failure.pattern.fullmatch(path):
                failure.times -= 1
                if not failure.after:
                    return _json(failure.body, status=failure.status, headers=failure.headers)
                late = failure
                break
        if request.headers.get("Authorization") != f"Bot {self.token}" and not path.startswith(
                ("/interactions/", "/webhooks/")):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        for method, pattern, handler in self._routes:
            match = re.fullmatch(pattern, path)
            if match and method == request.method:
                response = await handler(payload, request, *(int(part) if part.isdigit() else part
                                                            for part in match.groups()))
                if self.after_call is not None:
                    self.after_call(request.method, path, payload)
                if late is not None:
                    return _json(late.body, status=late.status, headers=late.headers)
                return response
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return _json({"message": message, "code": code}, status=status)

    async def _get_me(self, payload, request) -> web.Response:
        return _json(self.bot)

    async def _get_application(self, payload, request) -> web.Response:
        return _json({
            "id": str(self.application_id), "name": "Concierge", "icon": None, "description": "",
            "rpc_origins": [], "bot_public": False, "bot_require_code_grant": False, "owner": self.add_user("owner"),
            "summary": "", "verify_key": "0" * 64, "flags": self.application_flags, "bot": self.bot,
            "interactions_endpoint_url": None,
        })

    async def _get_commands(self, payload, request, application_id) -> web.Response:
        return _json(self.commands)

    async def _put_commands(self, payload, request, application_id) -> web.Response:
        self.commands = [{**command, "id": str(self.new_id()), "application_id": str(application_id),
                          "version": str(self.new_id()), "default_member_permissions": None, "nsfw": False}
                         for command in payload]
        return _json(self.commands)

    async def _post_message(self, payload, request, channel_id) -> web.Response:
        if channel_id in self.threads and self.threads[channel_id].archived:
            return self._error(400, 50083, "Thread is archived")
        if channel_id not in self.channels and channel_id not in self.threads:
            return self._error(404, 10003, "Unknown Channel")
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            earlier = self._nonces.get(str(nonce))
            if earlier is not None and self.now() - earlier[1] < NONCE_WINDOW:
                if earlier[0] not in self.messages:  # created, then deleted: Discord does not create it again
                    return self._error(404, 10008, "Unknown Message")
                return _json(self.messages[earlier[0]])
        message = self.message_payload(channel_id, self.bot, payload.get("content") or "",
                                       embeds=payload.get("embeds"), components=payload.get("components"),
                                       reference=payload.get("message_reference"))
        if nonce is not None:
            message["nonce"] = str(nonce)
            self._nonces[str(nonce)] = (int(message["id"]), self.now())
        self.messages[int(message["id"])] = message
        return _json(message)

    async def _get_messages(self, payload, request, channel_id) -> web.Response:
        if channel_id not in self.channels and channel_id not in self.threads:
            return self._error(404, 10003, "Unknown Channel")
        query = request.query
        limit = int(query.get("limit", 50))
        if not 1 <= limit <= 100:
            return self._error(400, 50035, "Invalid Form Body")
        messages = self.history(channel_id)  # oldest first
        if "around" in query:
            around = int(query["around"])
            older = [m for m in messages if int(m["id"]) <= around][-((limit + 1) // 2):]
            newer = [m for m in messages if int(m["id"]) > around][:limit // 2]
            chosen = older + newer
        elif "after" in query:  # the `limit` messages right after `after`
            chosen = [m for m in messages if int(m["id"]) > int(query["after"])][:limit]
        else:  # the `limit` messages right before `before` (or the newest)
            before = int(query["before"]) if "before" in query else None
            chosen = [m for m in messages if before is None or int(m["id"]) < before][-limit:]
        return _json(list(reversed(chosen)))  # Discord lists newest first

    async def _edit_message(self, payload, request, channel_id, message_id) -> web.Response:
        message = self.messages.get(message_id)
        if message is None or int(message["channel_id"]) != channel_id:
            return self._error(404, 10008, "Unknown Message")
        for key in ("content", "embeds", "components"):
            if key in payload:
                message[key] = payload[key] if payload[key] is not None else ("" if key == "content" else [])
        message["edited_timestamp"] = datetime.now(timezone.utc).isoformat()
        return _json(message)

    async def _delete_message(self, payload, request, channel_id, message_id) -> web.Response:
        self.messages.pop(message_id, None)
        return web.Response(status=204)

    async def _start_thread(self, payload, request, channel_id, message_id) -> web.Response:
        if message_id in self.threads:
            return self._error(400, 160004, "A thread has already been created for this message")
        # Discord gives a thread started from a message the message's id.
        thread = self.thread_payload(message_id, channel_id, payload["name"], payload["auto_archive_duration"])
        self.threads[message_id] = Thread(thread)
        self.emit("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    async def _get_channel(self, payload, request, channel_id) -> web.Response:
        if channel_id in self.threads:
            return _json(self.threads[channel_id].payload)
        if channel_id in self.channels:
            return _json(self.channels[channel_id])
        return self._error(404, 10003, "Unknown Channel")

    async def _edit_channel(self, payload, request, channel_id) -> web.Response:
        thread = self.threads.get(channel_id)
        if thread is None:
            return self._error(404, 10003, "Unknown Channel")
        if payload.get("archived") is False:
            thread.archived = False
            thread.payload["thread_metadata"]["archived"] = False
            self.emit("THREAD_UPDATE", dict(thread.payload))
        return _json(thread.payload)

    async def _open_dm(self, payload, request) -> web.Response:
        user_id = int(payload["recipient_id"])
        if user_id not in self.users:
            return self._error(400, 50035, "Invalid Form Body")
        return _json(self.channels[self.dm_channel_of(user_id)])

    def _answered_event(self, interaction_id: int) -> asyncio.Event:
        return self._answered.setdefault(interaction_id, asyncio.Event())

    async def _interaction_callback(self, payload, request, interaction_id, token) -> web.Response:
        self.answers.setdefault(interaction_id, []).append(
            {**payload, "files": request[FILES]} if request[FILES] else payload)
        self._answered_event(interaction_id).set()
        data = payload.get("data") or {}
        message = self.message_payload(self.staff_channel_id, self.bot, data.get("content") or "")
        return _json({
            "interaction": {"id": str(interaction_id), "type": 2, "response_message_id": message["id"],
                            "response_message_loading": payload["type"] == 5,
                            "response_message_ephemeral": bool(data.get("flags", 0) & 64)},
            "resource": {"type": payload["type"], "message": message},
        })

    async def _followup(self, payload, request, application_id, token) -> web.Response:
        interaction_id = int(str(token).removeprefix("tok"))
        answer = {"type": "followup", "data": payload}
        if request[FILES]:
            answer["files"] = request[FILES]
        self.answers.setdefault(interaction_id, []).append(answer)
        self._answered_event(interaction_id).set()
        return _json(self.message_payload(self.staff_channel_id, self.bot, payload.get("content") or ""))

    async def _get_guild(self, payload, request, guild_id) -> web.Response:
        if guild_id != self.guild_id:
            return self._error(403, 50001, "Missing Access")
        return _json(self.guild_payload())

    async def _get_guild_channels(self, payload, request, guild_id) -> web.Response:
        return _json([self.channels[self.staff_channel_id], *(self.channels[channel_id]
                                                              for channel_id in self.more_text_channels)])

    async def _get_gateway(self, payload, request) -> web.Response:
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """HELLO; on IDENTIFY, READY and the guild; heartbeats acknowledged."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"op": 10, "d": {"heartbeat_interval": 45_000}})
        async for frame in socket:
            message = json.loads(frame.data)
            if message["op"] == 1:
                await socket.send_json({"op": 11})
            elif message["op"] == 2:
                self.identify = message["d"]
                if message["d"].get("token") != self.token:
                    await socket.close(code=4004, message=b"Authentication failed.")
                    break
                await socket.send_json({"op": 0, "t": "READY", "s": next(self._sequence), "d": {
                    "v": 10, "user": self.bot, "session_id": "fake-session", "resume_gateway_url": self.gateway_url,
                    "guilds": [{"id": str(self.guild_id), "unavailable": True}], "private_channels": [],
                    "application": {"id": str(self.application_id), "flags": self.application_flags}}})
                await socket.send_json({"op": 0, "t": "GUILD_CREATE", "s": next(self._sequence),
                                        "d": self.guild_payload()})
                self._sockets.append(socket)
                self.connected.set()
        if socket in self._sockets:
            self._sockets.remove(socket)
        return socket

    async def _get_member(self, payload, request, guild_id, user_id) -> web.Response:
        if user_id not in self.users:
            return self._error(404, 10007, "Unknown Member")
        roles = [self.bot_role_id] if user_id == self.application_id else []
        return _json(member_payload(self.users[user_id], roles))


def answer_text(answer: dict[str, Any]) -> str:
    """The text of an interaction answer (a callback body or a follow-up)."""
    return (answer.get("data") or {}).get("content") or ""


def is_private(answer: dict[str, Any]) -> bool:
    return bool((answer.get("data") or {}).get("flags", 0) & 64)


def answer_files(answer: dict[str, Any]) -> list[Upload]:
    """The files sent with an interaction answer (a callback body or a follow-up)."""
    return list(answer.get("files") or [])

