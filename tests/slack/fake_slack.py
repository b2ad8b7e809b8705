"""A loopback fake of Slack: the Web API, response_url webhooks and a Socket Mode websocket.

A real aiohttp server on 127.0.0.1, port 0. It records every call, answers like Slack (`ok`,
`ts`, `channel`), checks the token's scopes against Slack's documented ones, and can be told
to answer an error code or a 429 with `Retry-After` (or to take a post and answer an error all
the same: `fail(..., store=True)`). File uploads go Slack's external way:
files.getUploadURLExternal hands out an upload URL on this server, the bytes are POSTed there,
files.completeUploadExternal shares them in a channel (`uploads`, `shared`).

Each channel has a history, as Slack keeps it: what people wrote (`write`, which tests may also
deliver as a live event) and what the bot posted (with its `bot_id` and metadata). The history
methods (conversations.history, conversations.replies, users.conversations) read it back in
pages of at most `max_page` messages, as Slack does for apps outside the Marketplace.
Message `ts` follow the test's clock (strictly increasing), so what people write is "on time".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

TEAM = "T0CONCIERGE"
BOT_USER = "UBOT"
BOT_ID = "BBOT"


def documented_scopes(method: str, args: dict[str, Any]) -> tuple[str, ...] | None:
    """The scopes Slack's method reference asks for (any one suffices); None for an unknown method.

    Written from Slack's docs independently of the adapter's own table, so a scope missing from
    the manifest shows up as `missing_scope` here.
    """
    if method in ("auth.test", "views.publish", "views.open", "apps.connections.open"):
        return ()
    if method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
        return ("files:write",)
    if method == "files.info":
        return ("files:read",)
    if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
        return ("chat:write",)
    if method == "conversations.open":
        return ("im:write",) if "," not in str(args.get("users", "")) else ("mpim:write",)
    if method == "conversations.info":
        kind = str(args.get("channel", "C"))[:1]
        return {"C": ("channels:read",), "G": ("groups:read",), "D": ("im:read",)}.get(kind, ("channels:read",))
    if method in ("conversations.history", "conversations.replies"):
        kind = str(args.get("channel", "C"))[:1]
        return {"C": ("channels:history",), "G": ("groups:history",), "D": ("im:history",)}.get(
            kind, ("channels:history",))
    if method == "users.conversations":
        # Each requested type needs its own scope (the default type is public_channel).
        per_type = {"public_channel": "channels:read", "private_channel": "groups:read", "im": "im:read",
                    "mpim": "mpim:read"}
        types = [kind.strip() for kind in str(args.get("types") or "public_channel").split(",")]
        if len(types) != 1:
            return tuple(per_type[kind] for kind in types)  # checked one by one in `_answer`
        return (per_type.get(types[0], "channels:read"),)
    if method == "users.info":
        return ("users:read",)
    return None


def channel_type(channel: str) -> str:
    """The `channel_type` of a message event in `channel`, from the id's first letter."""
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


@dataclass
class Call:
    """One Web API request and what the fake answered."""

    method: str
    args: dict[str, Any]
    token: str
    status: int
    response: dict[str, Any]
    at: float = field(default_factory=time.monotonic)  # when it was made (to order it among other answers)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class Failure:
    method: str
    error: str = ""
    status: int = 200
    retry_after: float | None = None
    times: int | None = 1  # None: every matching call
    when: Callable[[dict[str, Any]], bool] | None = None
    store: bool = False  # do what was asked (store the post), then answer the error all the same


@dataclass
class Upload:
    """A file announced with files.getUploadURLExternal; `data` once its bytes were POSTed."""

    id: str
    filename: str
    length: int
    data: bytes | None = None


@dataclass
class Shared:
    """A files.completeUploadExternal that succeeded: which files went where."""

    channel: str
    files: list[Upload]
    titles: list[str]
    initial_comment: str
    thread_ts: str = ""


@dataclass
class Channel:
    id: str
    name: str
    is_member: bool = True
    is_archived: bool = False
    is_private: bool = False


@dataclass
class FakeSlack:
    scopes: list[str] = field(default_factory=list)
    bot_token: str = "xoxb-test-bot-token"
    app_token: str = "xapp-test-app-token"
    channels: dict[str, Channel] = field(default_factory=dict)
    clock: Any = None  # `now()` of the test (message ts follow it); real time without
    max_page: int = 15  # history methods return at most this many items a page

    def __post_init__(self) -> None:
        self.calls: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []  # (response_url key, body) posted by the bot
        self.failures: list[Failure] = []
        self.uploads: dict[str, Upload] = {}  # file id -> the file, announced and maybe uploaded
        self.modals: dict[str, dict[str, Any]] = {}  # trigger id -> the modal views.open opened with it
        self.shared: list[Shared] = []
        self.hosted: dict[str, bytes] = {}  # file id -> the bytes of a file someone shared (`host_file`)
        self.downloads: list[tuple[str, str]] = []  # (file id, token) of every download from the file host
        self.histories: dict[str, list[dict[str, Any]]] = {}  # channel -> its messages, oldest first
        # Called after a call was carried out and before it is answered (a test's "the bot dies now").
        self.after_call: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None
        self.dm_users: dict[str, str] = {}  # DM channel -> the person the bot talks with there
        self.profiles: dict[str, dict[str, Any]] = {}  # user id -> the `profile` users.info shows
        self._last_ts = 0  # microseconds since the epoch of the newest ts handed out
        self._file_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_connected = asyncio.Event()
        self.from_socket: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    # Lifecycle.

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)  # some methods are GETs (conversations.info)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{file_id}/{name}", self._download)
        app.router.add_get("/socket-mode", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for socket in self.sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{key}"

    # Programming the fake.

    def fail(self, method: str, *, error: str = "", status: int = 200, retry_after: float | None = None,
             times: int | None = 1, when: Callable[[dict[str, Any]], bool] | None = None,
             store: bool = False) -> None:
        """Answer the next `times` calls of `method` (matching `when`) with an error.

        With `store=True` the call is carried out first (a post is in the history) and the error
        answered after: Slack took the post, the answer got lost.
        """
        self.failures.append(Failure(method, error, status, retry_after, times, when, store))

    def next_ts(self) -> str:
        """A new message ts: the clock's now, moved on by a microsecond when it did not move."""
        now = self.clock.now().timestamp() if self.clock is not None else time.time()
        self._last_ts = max(round(now * 1_000_000), self._last_ts + 1)
        return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    def write(self, channel: str, user: str, text: str, thread_ts: str | None = None,
              **extra: Any) -> dict[str, Any]:
        """`user` writes `text` in `channel` (in thread `thread_ts`): stored in its history as Slack would.

        Returns the message as a `message` event carries it (with `channel`, `channel_type` and
        `event_ts`), for a test that also delivers it live; the history keeps it without those.
        """
        ts = self.next_ts()
        message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM, **extra}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self._store(channel, message)
        if channel.startswith("D"):
            self.dm_users.setdefault(channel, user)
        return {**message, "channel": channel, "channel_type": channel_type(channel), "event_ts": ts}

    def _store(self, channel: str, message: dict[str, Any]) -> None:
        self.histories.setdefault(channel, []).append(message)
        thread = message.get("thread_ts")
        if thread and thread != message["ts"]:
            for parent in self.histories[channel]:
                if parent["ts"] == thread:
                    parent.setdefault("thread_ts", thread)
                    parent["reply_count"] = parent.get("reply_count", 0) + 1

    def history(self, channel: str) -> list[dict[str, Any]]:
        """Everything in `channel`, oldest first (top level and threads)."""
        return list(self.histories.get(channel, []))

    # What tests read.

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        return [call for call in self.calls if call.method == method and (call.ok or not ok_only)]

    def methods_called(self) -> set[str]:
        return {call.method for call in self.calls}

    def responses_to(self, key: str) -> list[dict[str, Any]]:
        return [body for posted_key, body in self.responses if posted_key == key]

    # Web API.

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.content_type == "application/json":
            args.update(await request.json())
        elif request.method == "POST":
            args.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth else str(args.pop("token", ""))
        status, body, headers = self._answer(method, args, token)
        self.calls.append(Call(method, args, token, status, body))
        if self.after_call is not None:
            self.after_call(method, args, body)
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, method: str, args: dict[str, Any], token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers: dict[str, str] = {}
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, headers
        if token != expected:
            return 200, {"ok": False, "error": "invalid_auth"}, headers
        if method != "apps.connections.open":
            headers["x-oauth-scopes"] = ",".join(self.scopes)
        needed = documented_scopes(method, args)
        if needed is None:
            return 200, {"ok": False, "error": "unknown_method"}, headers
        if method == "users.conversations" and not set(needed) <= set(self.scopes):
            return 200, {"ok": False, "error": "missing_scope", "needed": ",".join(needed),
                         "provided": ",".join(self.scopes)}, headers
        if needed and not set(needed) & set(self.scopes):
            return 200, {"ok": False, "error": "missing_scope", "needed": ",".join(needed),
                         "provided": ",".join(self.scopes)}, headers
        for failure in self.failures:
            if failure.method == method and failure.times != 0 and (failure.when is None or failure.when(args)):
                if failure.times is not None:
                    failure.times -= 1
                if failure.retry_after is not None:
                    headers["Retry-After"] = f"{failure.retry_after:g}"
                if failure.store:
                    self._success(method, args)  # Slack did it; only its answer is an error
                if failure.status == 429:
                    return 429, {"ok": False, "error": "ratelimited"}, headers
                return failure.status, {"ok": False, "error": failure.error or "internal_error"}, headers
        return 200, self._success(method, args), headers

    def _success(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://concierge-test.slack.com/", "team": "Concierge Test",
                    "user": "concierge", "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}
        if method in ("chat.postMessage", "chat.update"):
            channel = str(args.get("channel", ""))
            if channel.startswith(("U", "W")):  # a user id posts into the DM with that user
                self.dm_users.setdefault("D" + channel[1:], channel)
                channel = "D" + channel[1:]
            if method == "chat.update":
                ts = str(args.get("ts"))
                for stored in self.histories.get(channel, []):
                    if stored["ts"] == ts:
                        stored.update(text=args.get("text", ""), blocks=args.get("blocks") or [])
                return {"ok": True, "channel": channel, "ts": ts,
                        "message": {"type": "message", "text": args.get("text", ""), "bot_id": BOT_ID, "ts": ts}}
            ts = self.next_ts()
            posted = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "app_id": "A0CONCIERGE",
                      "text": args.get("text", ""), "ts": ts, "team": TEAM, "blocks": args.get("blocks") or []}
            if args.get("thread_ts"):
                posted["thread_ts"] = str(args["thread_ts"])
            if args.get("metadata"):
                metadata = args["metadata"]
                posted["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
            self._store(channel, posted)
            return {"ok": True, "channel": channel, "ts": ts, "message": dict(posted)}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "conversations.open":
            user = str(args.get("users", ""))
            self.dm_users.setdefault("D" + user[1:], user)
            return {"ok": True, "channel": {"id": "D" + user[1:]}}
        if method == "conversations.history":
            return self._history(args)
        if method == "conversations.replies":
            return self._replies(args)
        if method == "users.info":
            user = str(args.get("user", ""))
            profile = self.profiles.get(user, {"display_name": "", "real_name": ""})
            return {"ok": True, "user": {"id": user, "name": user.lower(), "real_name": profile.get("real_name", ""),
                                         "profile": profile}}
        if method == "users.conversations":
            channels = [{"id": channel, "is_im": True, "user": user} for channel, user in sorted(self.dm_users.items())]
            return self._page(args, "channels", channels)
        if method == "conversations.info":
            channel = self.channels.get(str(args.get("channel")))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": {"id": channel.id, "name": channel.name, "is_member": channel.is_member,
                                            "is_archived": channel.is_archived, "is_private": channel.is_private}}
        if method == "views.publish":
            view = args.get("view")
            return {"ok": True, "view": json.loads(view) if isinstance(view, str) else view}
        if method == "views.open":
            return self._open_modal(args)
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket-mode"}
        if method == "files.getUploadURLExternal":
            if not args.get("filename") or not str(args.get("length", "")).isdigit():
                return {"ok": False, "error": "invalid_arguments"}
            upload = Upload(f"F{next(self._file_ids):08d}", str(args["filename"]), int(args["length"]))
            self.uploads[upload.id] = upload
            return {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/{upload.id}", "file_id": upload.id}
        if method == "files.completeUploadExternal":
            return self._complete_upload(args)
        if method == "files.info":
            return self._file_info(str(args.get("file") or ""))
        return {"ok": False, "error": "unknown_method"}

    # History (catch-up, find_sent).

    def _page(self, args: dict[str, Any], key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """One page of `items` from the `cursor` on (an offset here), at most `limit` and `max_page` long."""
        start = int(args.get("cursor") or 0)
        size = min(int(args.get("limit") or 100), self.max_page)
        page = items[start:start + size]
        more = start + size < len(items)
        return {"ok": True, key: page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}

    @staticmethod
    def _shown(message: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        """A message as the history methods return it: metadata only when asked for."""
        if str(args.get("include_all_metadata", "")).lower() in ("1", "true"):
            return dict(message)
        return {key: value for key, value in message.items() if key != "metadata"}

    @staticmethod
    def _after(message: dict[str, Any], oldest: Any) -> bool:
        if not oldest:
            return True
        return _ts_key(message["ts"]) > _ts_key(str(oldest))

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages (thread parents included, replies not), newest first, after `oldest`."""
        channel = str(args.get("channel", ""))
        if channel not in self.histories and not channel.startswith("D") and channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        top = [self._shown(message, args) for message in reversed(self.histories.get(channel, []))
               if (not message.get("thread_ts") or message["thread_ts"] == message["ts"]
                   or message.get("subtype") == "thread_broadcast") and self._after(message, args.get("oldest"))]
        return self._page(args, "messages", top)

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread's parent, then its replies after `oldest`, oldest first."""
        channel, thread = str(args.get("channel", "")), str(args.get("ts", ""))
        messages = self.histories.get(channel, [])
        parent = [message for message in messages if message["ts"] == thread]
        if not parent:
            return {"ok": False, "error": "thread_not_found"}
        replies = [message for message in messages if message.get("thread_ts") == thread and message["ts"] != thread
                   and self._after(message, args.get("oldest"))]
        return self._page(args, "messages", [self._shown(message, args) for message in parent + replies])

    def _open_modal(self, args: dict[str, Any]) -> dict[str, Any]:
        """A modal for a trigger id of a press or command; checked against Block Kit's modal limits."""
        view = json.loads(args["view"]) if isinstance(args.get("view"), str) else args.get("view") or {}
        trigger = str(args.get("trigger_id", ""))
        if not trigger.startswith("trigger.") or trigger in self.modals:
            return {"ok": False, "error": "expired_trigger_id"}  # unknown, or used already
        if view.get("type") != "modal" or not 0 < len(view.get("title", {}).get("text", "")) <= 24 \
                or not 0 < len(view.get("blocks") or []) <= 100 or len(view.get("private_metadata", "")) > 3000:
            return {"ok": False, "error": "invalid_arguments"}
        view = {**view, "id": f"V{len(self.modals) + 1:08d}", "hash": f"{len(self.modals) + 1}.hash"}
        self.modals[trigger] = view
        return {"ok": True, "view": view}

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(args["files"]) if isinstance(args.get("files"), str) else args.get("files") or []
        uploads = [self.uploads.get(str(item.get("id"))) for item in files]
        if not files or any(upload is None or upload.data is None for upload in uploads):
            return {"ok": False, "error": "file_not_found"}  # never announced, or its bytes never arrived
        channel = str(args.get("channel_id") or args.get("channels") or "")
        titles = [str(item.get("title") or upload.filename) for item, upload in zip(files, uploads, strict=True)]
        thread = str(args.get("thread_ts") or "")
        self.shared.append(Shared(channel, uploads, titles, str(args.get("initial_comment") or ""), thread))
        # The share shows in the channel (or thread) as a message of the bot carrying the files.
        message: dict[str, Any] = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "upload": True,
                                   "text": str(args.get("initial_comment") or ""), "ts": self.next_ts(), "team": TEAM,
                                   "files": [{"id": upload.id, "name": upload.filename, "title": title}
                                             for upload, title in zip(uploads, titles, strict=True)]}
        if thread:
            message["thread_ts"] = thread
        self._store(channel, message)
        return {"ok": True, "files": [{"id": upload.id, "name": upload.filename, "title": title, "size": upload.length}
                                      for upload, title in zip(uploads, titles, strict=True)]}

    def _file_info(self, file_id: str) -> dict[str, Any]:
        """files.info: the file and where it is shared (`shares`: public or private, by channel)."""
        upload = self.uploads.get(file_id)
        if upload is None:
            return {"ok": False, "error": "file_not_found"}
        shares: dict[str, dict[str, list[dict[str, str]]]] = {}
        for shared in self.shared:
            if any(item.id == file_id for item in shared.files):
                kind = "public" if shared.channel.startswith("C") else "private"
                shares.setdefault(kind, {}).setdefault(shared.channel, []).append(
                    {"ts": f"{time.time():.6f}", "thread_ts": shared.thread_ts})
        return {"ok": True, "file": {"id": upload.id, "name": upload.filename, "size": upload.length,
                                     "shares": shares}}

    # response_url webhooks (slash command and button answers).

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses.append((request.match_info["key"], await request.json()))
        return web.Response(text="ok")

    # The upload URL files.getUploadURLExternal hands out (no token: the URL is the secret).

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="not found")
        data = await request.read()
        if len(data) != upload.length:
            return web.Response(status=400, text=f"expected {upload.length} bytes, got {len(data)}")
        upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    # The file host (files.slack.com): a shared file's url_private(_download), for the bot token only.

    def host_file(self, name: str, data: bytes, mimetype: str = "application/octet-stream") -> dict[str, Any]:
        """A file someone shares: its bytes served at its url_private; returns the event's `files` entry."""
        file_id = f"F{next(self._file_ids):08d}"
        self.hosted[file_id] = data
        url = f"http://127.0.0.1:{self.port}/files-pri/{file_id}/{name}"
        return {"id": file_id, "name": name, "title": name, "mimetype": mimetype, "size": len(data),
                "url_private": url, "url_private_download": f"{url}?download=1",
                "permalink": f"https://example.slack.com/files/U1/{file_id}/{name}"}

    async def _download(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.downloads.append((request.match_info["file_id"], token))
        data = self.hosted.get(request.match_info["file_id"])
        if token != self.bot_token or data is None:  # Slack answers its sign-in page, not the file
            return web.Response(status=200, text="<html>sign in</html>", content_type="text/html")
        return web.Response(body=data, content_type="application/octet-stream")

    # Socket Mode.

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": 1,
                                "connection_info": {"app_id": "A0CONCIERGE"}})
        self.socket_connected.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await self.from_socket.put(json.loads(message.data))
        return socket

    async def deliver(self, envelope: dict[str, Any]) -> None:
        """Send an envelope to the connected Socket Mode client."""
        await asyncio.wait_for(self.socket_connected.wait(), 5)
        await self.sockets[-1].send_json(envelope)

    async def next_from_socket(self, timeout: float = 5) -> dict[str, Any]:
        return await asyncio.wait_for(self.from_socket.get(), timeout)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros.ljust(6, "0")[:6])
