"""A loopback fake of Slack for the chaos benchmark (`bench/chaos.py`).

An aiohttp server on 127.0.0.1 (port 0), in the benchmark's own process and event loop. It is
the "Slack" of one run:

- the Web API the bot calls (`/api/{method}`): auth.test, chat.postMessage, chat.postEphemeral,
  chat.update, conversations.open, views.publish, views.open, users.info, and the history the
  bot reads to catch up: users.conversations, conversations.history, conversations.replies;
- the response_url webhooks of slash commands (`/respond/{key}`);
- the record of what people wrote: the benchmark "writes" a member's DM or an expert's thread
  reply here first (`member_writes`, `expert_writes`), gets its `ts`, and only then sends the
  event to the bot, as Slack does;
- chaos on chat.postMessage, switched at run time (`set_chaos`): 500s, 429s with Retry-After,
  or "accepted then failed" (stored, then a 500 or a dropped connection);
- the tally the benchmark scores: every accepted bot post is scanned for marker tokens
  (`arrivals`), with where and when it arrived.

Message timestamps are Slack's: "<unix seconds>.<6 digits>", from the real clock, strictly
increasing across the whole fake (so unique and increasing per channel), which makes "how late"
measurable as arrival time minus written time.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aiohttp import web

TEAM = "T0CHAOS"
BOT_USER = "UBOT"
BOT_ID = "BCHAOS"
APP_ID = "A0CHAOS"
BOT_TOKEN = "xoxb-chaos"
STAFF_CHANNEL_NAME = "concierge-staff"
# Like Slack, a page may hold fewer items than the `limit` asked for: the client must follow
# `response_metadata.next_cursor`. Small pages make a harness run exercise the cursors.
MAX_PAGE = 50


class Chaos(Enum):
    """How chat.postMessage behaves right now."""

    CALM = "calm"  # store and answer ok
    SERVER_ERROR = "server_error"  # HTTP 500 {"ok": false, "error": "internal_error"}, nothing stored
    RATE_LIMITED = "rate_limited"  # HTTP 429 with Retry-After: 1, nothing stored
    ACCEPT_THEN_FAIL = "accept_then_fail"  # with some probability: stored, then a 500 or a dropped connection


@dataclass
class Stored:
    """One message in a channel's history (written by a person, or posted by the bot)."""

    channel: str
    ts: str
    text: str
    user: str  # the author; BOT_USER for the bot's posts
    at: float  # time.time() when it was stored
    thread_ts: str = ""  # set on thread replies (and on a parent once it has replies)
    bot: bool = False
    metadata: dict[str, Any] | None = None
    blocks: list[Any] | None = None
    client_msg_id: str = ""
    answered: str = "ok"  # a bot post: what the bot was told ("ok", "500", or "dropped": no answer)
    replies: list[Stored] = field(default_factory=list)  # a thread parent's replies, oldest first


@dataclass
class Arrival:
    """A bot post that carried a marker: where it landed and when."""

    channel: str
    thread_ts: str
    ts: str
    at: float
    is_card: bool  # a top-level post in a channel (a card that opens a staff thread)
    post: Stored  # the post itself (its `answered` says what the bot was told)


def _cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def _ts_value(ts: str) -> int:
    """A Slack ts as integer microseconds (exact, unlike a float)."""
    seconds, _, micros = ts.partition(".")
    return int(seconds) * 1_000_000 + int((micros or "0").ljust(6, "0")[:6])


def _as_bool(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def _page_size(args: dict[str, Any], default: int = 100) -> int:
    try:
        asked = int(args.get("limit") or default)
    except ValueError:
        asked = default
    return max(1, min(asked, MAX_PAGE))


def _json_arg(value: object) -> Any:  # noqa: ANN401 - whatever JSON the argument holds
    """A structured argument: an object in a JSON body, a JSON string in a form."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


class ChaosSlack:
    """The fake. `await start()`, use, `await stop()`.

    Args:
        staff_channel: the staff channel's id (listed by users.conversations for channel types).
        marker: a regex matching the benchmark's marker tokens in bot posts.
        seed: seeds the coin flips of ACCEPT_THEN_FAIL.
    """

    def __init__(self, staff_channel: str, marker: re.Pattern[str], seed: int = 0) -> None:
        self.staff_channel = staff_channel
        self.marker = marker
        self.rng = random.Random(seed)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._last_ts = 0
        # History: channel id -> its top-level messages in order; (channel, ts) -> a message.
        self.history: dict[str, list[Stored]] = {}
        self.by_ts: dict[tuple[str, str], Stored] = {}
        self.dm_users: dict[str, str] = {}  # DM channel id -> the member it is with, in order of first use
        # What the bot did.
        self.bot_posts: list[Stored] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self.arrivals: dict[str, list[Arrival]] = {}
        self.calls: dict[str, int] = {}
        # Chaos.
        self.chaos = Chaos.CALM
        self.fail_probability = 0.0
        self.injected: dict[str, int] = {}

    # Lifecycle.

    async def start(self) -> ChaosSlack:
        # A dropped connection makes aiohttp log the failed write of our answer; that is the point.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{key}"

    def set_chaos(self, chaos: Chaos, probability: float = 0.0) -> None:
        """Switch chat.postMessage's behaviour (`probability` is for ACCEPT_THEN_FAIL)."""
        self.chaos = chaos
        self.fail_probability = probability

    # What people write (called by the benchmark, before it sends the event).

    def member_writes(self, user: str, text: str, client_msg_id: str) -> Stored:
        """`user` writes `text` in their DM with the bot; returns the stored message (its ts)."""
        channel = dm_channel(user)
        self.dm_users.setdefault(channel, user)
        return self._store(Stored(channel, self._next_ts(), text, user, time.time(), client_msg_id=client_msg_id))

    def expert_writes(self, channel: str, thread_ts: str, user: str, text: str, client_msg_id: str) -> Stored:
        """`user` replies `text` in the thread `thread_ts` of `channel`."""
        return self._store(Stored(channel, self._next_ts(), text, user, time.time(), thread_ts=thread_ts,
                                  client_msg_id=client_msg_id))

    # What the benchmark reads.

    def latest_card(self, markers: set[str]) -> Stored | None:
        """The newest top-level bot post in the staff channel carrying one of `markers` (a thread's card)."""
        for message in reversed(self.history.get(self.staff_channel, [])):
            if message.bot and self.markers_in(message) & markers:
                return message
        return None

    @property
    def accepted_posts(self) -> int:
        return len(self.bot_posts)

    def posts_containing(self, phrase: str) -> int:
        return sum(phrase in post.text for post in self.bot_posts)

    # Storage.

    def _next_ts(self) -> str:
        now = max(int(time.time() * 1_000_000), self._last_ts + 1)
        self._last_ts = now
        return f"{now // 1_000_000}.{now % 1_000_000:06d}"

    def _store(self, message: Stored) -> Stored:
        self.by_ts[(message.channel, message.ts)] = message
        parent = self.by_ts.get((message.channel, message.thread_ts)) if message.thread_ts else None
        if parent is not None and parent is not message:
            parent.thread_ts = parent.ts  # a parent carries its own ts as thread_ts once it has replies
            parent.replies.append(message)
        elif not message.thread_ts:
            self.history.setdefault(message.channel, []).append(message)
        return message

    def markers_in(self, message: Stored) -> set[str]:
        found = set(self.marker.findall(message.text))
        if message.blocks:
            found |= set(self.marker.findall(json.dumps(message.blocks)))
        return found

    def _record_bot_post(self, message: Stored) -> None:
        self._store(message)
        self.bot_posts.append(message)
        for marker in self.markers_in(message):
            self.arrivals.setdefault(marker, []).append(
                Arrival(message.channel, message.thread_ts, message.ts, message.at, not message.thread_ts, message))

    # The Web API.

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.calls[method] = self.calls.get(method, 0) + 1
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    args.update(body)
            else:
                args.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth else str(args.pop("token", ""))
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token != BOT_TOKEN:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method == "chat.postMessage":
            return self._post_message(request, args)
        handler = self._HANDLERS.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(self, args))

    def _inject(self, what: str) -> None:
        self.injected[what] = self.injected.get(what, 0) + 1

    def _post_message(self, request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
        """chat.postMessage, through the current chaos."""
        if self.chaos is Chaos.SERVER_ERROR:
            self._inject("500")
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if self.chaos is Chaos.RATE_LIMITED:
            self._inject("429")
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        channel = str(args.get("channel") or "")
        if channel.startswith(("U", "W")):  # a user id posts into the DM with that user
            channel = dm_channel(channel)
        text = str(args.get("text") or "")
        blocks = _json_arg(args.get("blocks"))
        if not channel:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if not text and not blocks:
            return web.json_response({"ok": False, "error": "no_text"})
        if channel.startswith("D"):
            self.dm_users.setdefault(channel, "U" + channel[1:])
        message = Stored(channel, self._next_ts(), text, BOT_USER, time.time(), bot=True,
                         thread_ts=str(args.get("thread_ts") or ""), metadata=_json_arg(args.get("metadata")),
                         blocks=blocks if isinstance(blocks, list) else None)
        self._record_bot_post(message)
        if self.chaos is Chaos.ACCEPT_THEN_FAIL and self.rng.random() < self.fail_probability:
            if self.rng.random() < 0.5:
                self._inject("stored+500")
                message.answered = "500"
                return web.json_response({"ok": False, "error": "internal_error"}, status=500)
            # Stored, and the connection drops before any answer: the client cannot know.
            self._inject("stored+dropped")
            message.answered = "dropped"
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client
        return web.json_response({"ok": True, "channel": channel, "ts": message.ts,
                                  "message": self._as_slack(message, with_metadata=True)})

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://chaos.slack.com/", "team": "Chaos", "user": "concierge",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self.ephemerals.append(dict(args))
        return {"ok": True, "message_ts": self._next_ts()}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        message = self.by_ts.get((channel, ts))
        if message is None or not message.bot:
            return {"ok": False, "error": "message_not_found"}
        self.updates.append(dict(args))
        message.text = str(args.get("text") or message.text)  # an edit is not a new arrival
        return {"ok": True, "channel": channel, "ts": ts, "text": message.text}

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "")
        if not users or "," in users:
            return {"ok": False, "error": "user_not_found" if not users else "not_allowed"}
        return {"ok": True, "channel": {"id": dm_channel(users)}}

    def _view(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "view": _json_arg(args.get("view")) or {}}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        if not user:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": user, "team_id": TEAM, "name": user.lower(), "real_name": user,
                                     "deleted": False, "is_bot": user == BOT_USER, "tz": "UTC",
                                     "profile": {"real_name": user, "display_name": user.lower()}}}

    # History, for catch-up.

    def _users_conversations(self, args: dict[str, Any]) -> dict[str, Any]:
        """The bot's conversations of the asked types (default public_channel), cursor-paginated."""
        types = {part.strip() for part in str(args.get("types") or "public_channel").split(",")}
        channels: list[dict[str, Any]] = []
        if types & {"public_channel", "private_channel"}:
            channels.append({"id": self.staff_channel, "name": STAFF_CHANNEL_NAME, "is_channel": True,
                             "is_private": False, "is_member": True, "is_archived": False, "is_im": False})
        if "im" in types:
            channels += [{"id": channel, "is_im": True, "user": user, "is_user_deleted": False, "is_open": True}
                         for channel, user in self.dm_users.items()]
        start = int(_uncursor(str(args.get("cursor") or "")).removeprefix("offset:") or 0)
        end = start + _page_size(args)
        next_cursor = _cursor(f"offset:{end}") if end < len(channels) else ""
        return {"ok": True, "channels": channels[start:end], "response_metadata": {"next_cursor": next_cursor}}

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's top-level messages in (oldest, latest), newest first, cursor-paginated."""
        channel = str(args.get("channel") or "")
        if channel not in self.history and channel != self.staff_channel and channel not in self.dm_users:
            return {"ok": False, "error": "channel_not_found"}
        inclusive = _as_bool(args.get("inclusive"))
        oldest = _ts_value(str(args.get("oldest") or "0"))
        latest = _ts_value(str(args["latest"])) if args.get("latest") else None
        before = _uncursor(str(args.get("cursor") or "")).removeprefix("before:")
        matching = [m for m in reversed(self.history.get(channel, []))
                    if _in_range(_ts_value(m.ts), oldest, latest, inclusive)
                    and (not before or _ts_value(m.ts) < _ts_value(before))]
        page = matching[:_page_size(args)]
        more = len(matching) > len(page)
        with_metadata = _as_bool(args.get("include_all_metadata"))
        return {"ok": True, "messages": [self._as_slack(m, with_metadata) for m in page], "has_more": more,
                "pin_count": 0, "response_metadata": {"next_cursor": _cursor(f"before:{page[-1].ts}") if more else ""}}

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread: the parent first, then its replies in (oldest, latest) oldest first, cursor-paginated."""
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        parent = self.by_ts.get((channel, ts))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        if parent.thread_ts and parent.thread_ts != parent.ts:  # a reply's ts names its thread
            parent = self.by_ts.get((channel, parent.thread_ts), parent)
        inclusive = _as_bool(args.get("inclusive"))
        oldest = _ts_value(str(args.get("oldest") or "0"))
        latest = _ts_value(str(args["latest"])) if args.get("latest") else None
        after = _uncursor(str(args.get("cursor") or "")).removeprefix("after:")
        matching = [m for m in parent.replies if _in_range(_ts_value(m.ts), oldest, latest, inclusive)
                    and (not after or _ts_value(m.ts) > _ts_value(after))]
        size = _page_size(args)
        first_page = not after
        page = matching[:size - 1] if first_page else matching[:size]  # the parent takes a place on page one
        more = len(matching) > len(page)
        with_metadata = _as_bool(args.get("include_all_metadata"))
        messages = ([parent] if first_page else []) + page
        next_cursor = _cursor(f"after:{page[-1].ts}") if more and page else ""
        return {"ok": True, "messages": [self._as_slack(m, with_metadata) for m in messages], "has_more": more,
                "response_metadata": {"next_cursor": next_cursor}}

    def _as_slack(self, message: Stored, with_metadata: bool) -> dict[str, Any]:
        """A stored message as the Web API shows it in history."""
        shown: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text, "user": message.user,
                                 "team": TEAM}
        if message.bot:
            shown.update(bot_id=BOT_ID, app_id=APP_ID,
                         bot_profile={"id": BOT_ID, "app_id": APP_ID, "name": "concierge", "team_id": TEAM})
            if message.blocks:
                shown["blocks"] = message.blocks
            if message.metadata and with_metadata:
                shown["metadata"] = message.metadata
        else:
            shown["client_msg_id"] = message.client_msg_id
        if message.replies:  # a thread parent
            shown.update(thread_ts=message.ts, reply_count=len(message.replies),
                         reply_users=sorted({reply.user for reply in message.replies}),
                         reply_users_count=len({reply.user for reply in message.replies}),
                         latest_reply=message.replies[-1].ts)
        elif message.thread_ts:  # a reply
            shown["thread_ts"] = message.thread_ts
            parent = self.by_ts.get((message.channel, message.thread_ts))
            if parent is not None:
                shown["parent_user_id"] = parent.user
        return shown

    _HANDLERS = {
        "auth.test": _auth_test,
        "chat.postEphemeral": _post_ephemeral,
        "chat.update": _update,
        "conversations.open": _open,
        "views.publish": _view,
        "views.open": _view,
        "users.info": _users_info,
        "users.conversations": _users_conversations,
        "conversations.history": _history,
        "conversations.replies": _replies,
    }

    # response_url webhooks: the private answers to slash commands.

    async def _respond(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {"text": await request.text()}
        self.responses.setdefault(request.match_info["key"], []).append(body)
        return web.Response(text="ok")


def dm_channel(user: str) -> str:
    """The id of the DM between the bot and `user` (U0M0001 -> D0M0001)."""
    return "D" + user[1:]


def _in_range(value: int, oldest: int, latest: int | None, inclusive: bool) -> bool:
    if inclusive:
        return value >= oldest and (latest is None or value <= latest)
    return value > oldest and (latest is None or value < latest)
