"""Chaos benchmark: the real Slack bot, a burst of messages, and everything going wrong meanwhile.

For each backend (SQLite, then a throw-away PostgreSQL) this runs `concierge run --platform slack
--http` as a subprocess against a loopback fake Slack (`bench/chaos_slack.py`), enrols members
and experts with signed slash commands, then writes a burst of member DMs (members join at random
moments, so new conversations open all through the burst) and expert replies in their staff
threads (every 5th member's, a few seconds after the member wrote, in the newest card of that
member's thread), each carrying a unique marker. Their events go to the bot the way Slack sends
them: signed, retried when not acknowledged within 3 s, and once more re-enveloped later.
During the burst:

- the database is locked for 10 s (SQLite: BEGIN EXCLUSIVE; PostgreSQL: LOCK TABLE on all tables);
- chat.postMessage answers 500 for 20 s, then 429 with Retry-After for a few seconds, then for a
  while stores posts but answers 500 or drops the connection (30%);
- the bot is SIGKILLed twice at random moments and restarted;
- the bot is stopped (SIGTERM) for a while; what is written meanwhile is never delivered as an
  event, only kept in Slack's history: the restarted bot has to catch up on it.

Then it waits for the bot to settle and scores each marker at its destination (member DMs in the
staff channel, expert replies in the member's DM). The last line of each backend is:
    chaos: backend=<sqlite|postgresql> sent=<N> acked=<N> reached=<N> lost=<N> doubled=<N> late_max_s=<S>
sent: messages written; acked: those whose event got a 2xx at least once; reached: arrived exactly
once; lost: never arrived; doubled: arrived more than once; late_max_s: the longest time from
writing to arriving, over the messages that reached.

    .venv/bin/python -m bench.chaos [--backend sqlite|postgresql|both] [--members 100] [--messages 1000]
                                    [--seed 1] [--keep]
Each backend takes about 3.5 minutes; the bot's log is kept in a temporary file (its path is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.chaos_slack import APP_ID, BOT_TOKEN, BOT_USER, TEAM, Arrival, Chaos, ChaosSlack, Stored, dm_channel
from concierge.testing.postgres import PostgresServer

STAFF = "CSTAFF0001"
ADMIN = "UADMIN"
EXPERTS = ("UEXPERT1", "UEXPERT2")
SIGNING_SECRET = "chaos-signing-secret-" + "0123456789abcdef"
EVENTS_PATH = "/slack/events"
MARKER = re.compile(r"\bchx[dr]\d{6}\b")  # chxd000001: a member's DM; chxr000001: an expert's reply

# Slack's delivery: an event not acknowledged with a 2xx within 3 s is sent again up to 3 times.
# Slack waits about 0 s, 1 min and 5 min between tries; compressed here to 0 s, 5 s and 15 s so a
# run stays short (the bot's restarts take a few seconds, so the later tries still find it up).
ACK_TIMEOUT_S = 3.0
RETRY_DELAYS_S = (0.0, 5.0, 15.0)
# Slack also re-envelopes: the same message arrives once more with a new event_id, later.
REENVELOPE_DELAY_S = (5.0, 40.0)

# The timeline of the burst, in seconds from its start.
WRITING_S = 110.0
DB_LOCK_AT, DB_LOCK_S = 8.0, 10.0
KILL_WINDOWS = ((12.0, 22.0), (48.0, 62.0))  # each kill at a random moment in its window
# chat.postMessage misbehaves from SLACK_CHAOS_AT on, one way after the other: (how, seconds, probability).
SLACK_CHAOS_AT = 22.0
SLACK_CHAOS = ((Chaos.SERVER_ERROR, 20.0, 1.0), (Chaos.RATE_LIMITED, 5.0, 1.0), (Chaos.ACCEPT_THEN_FAIL, 20.0, 0.3))
STOP_AT, STOP_S = 70.0, 25.0

WRITERS = 12  # concurrent senders
FIRST_WRITES_SPAN = 0.7  # members write their first DM within the first 70% of the burst
EXPERT_EVERY = 5  # every 5th member's messages get an expert reply
EXPERT_DELAY_S = (2.0, 6.0)  # an expert answers this long after the member wrote
CARD_WAIT_S = 20.0  # how long an expert waits for the member's thread to show up
SETTLE_STABLE_S = 10.0  # the fake's post count unchanged this long: settled
SETTLE_TIMEOUT_S = 180.0
BOT_START_TIMEOUT_S = 60.0
BOT_STOP_TIMEOUT_S = 20.0


def say(line: str) -> None:
    """A progress line (every line but the score lines starts with `# `)."""
    print(f"# {line}", flush=True)


# Messages written and their events.


@dataclass
class Written:
    """A message a person wrote in Slack, with what the benchmark expects of it."""

    marker: str
    kind: str  # "dm" (a member's DM) or "reply" (an expert's reply in a staff thread)
    author: str
    destination: str  # where the bot must relay it: the staff channel, or the member's DM
    message: Stored
    delivered: bool  # False: written while the bot was stopped, left to catch-up
    acked: bool = False

    @property
    def written_at(self) -> float:
        return self.message.at


@dataclass
class Delivery:
    """One envelope of one message (the original, or Slack's later re-envelope) and its tries."""

    written: Written
    event_id: str
    reenveloped: bool
    outcomes: list[str] = field(default_factory=list)  # per try: "200", "timeout", "refused", "500", ...
    acked: bool = False


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's v0 request signature: HMAC-SHA256 of `v0:<timestamp>:<body>`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def message_event(written: Written) -> dict[str, Any]:
    """The Events API `message` event of a written message, as Slack sends it."""
    stored = written.message
    event: dict[str, Any] = {"type": "message", "channel": stored.channel, "user": stored.user,
                             "text": stored.text, "ts": stored.ts, "event_ts": stored.ts,
                             "client_msg_id": stored.client_msg_id, "team": TEAM}
    if written.kind == "dm":
        event["channel_type"] = "im"
    else:
        event.update(channel_type="channel", thread_ts=stored.thread_ts, parent_user_id=BOT_USER)
    return event


def envelope(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """An `event_callback` body around `event`."""
    return {"token": "legacy-verification-token", "team_id": TEAM, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
            "is_ext_shared_channel": False}


def new_event_id() -> str:
    return "Ev" + secrets.token_hex(5).upper()


class SlackSide:
    """Sends the bot what Slack would: signed events (with Slack's retries) and slash commands."""

    def __init__(self, base_url: str, fake: ChaosSlack, rng: random.Random) -> None:
        self.events_url = base_url + EVENTS_PATH
        self.fake = fake
        self.rng = rng
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        self.deliveries: list[Delivery] = []
        self.background: set[asyncio.Task] = set()
        self.gave_up = 0  # envelopes dropped after Slack's last retry
        self.ack_seconds: list[float] = []  # how long each event's 2xx took

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.session.close()

    def later(self, coroutine: Awaitable[Any]) -> None:
        """Run `coroutine` in the background, tracked (settling waits for these)."""
        task = asyncio.ensure_future(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _post(self, body: bytes, content_type: str, headers: dict[str, str]) -> str:
        """One signed POST; the outcome as a word: the status code, "timeout", "refused" or "dropped"."""
        all_headers = {"Content-Type": content_type, **sign(body, int(time.time())), **headers}
        try:
            async with self.session.post(self.events_url, data=body, headers=all_headers,
                                         timeout=aiohttp.ClientTimeout(total=ACK_TIMEOUT_S)) as response:
                await response.read()
                return str(response.status)
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientConnectorError:
            return "refused"
        except aiohttp.ClientError:
            return "dropped"

    async def send_event(self, written: Written, *, reenveloped: bool = False) -> Delivery:
        """Deliver one envelope: the first try now; Slack's retries, if needed, in the background."""
        delivery = Delivery(written, new_event_id(), reenveloped)
        self.deliveries.append(delivery)
        if await self._try(delivery, retry=0):
            return delivery
        self.later(self._retry(delivery))
        return delivery

    def reenvelope_later(self, written: Written) -> None:
        """Slack delivers the same message once more under a fresh event_id, at a random later moment."""
        async def again() -> None:
            await asyncio.sleep(self.rng.uniform(*REENVELOPE_DELAY_S))
            await self.send_event(written, reenveloped=True)
        self.later(again())

    async def _try(self, delivery: Delivery, retry: int) -> bool:
        body = json.dumps(envelope(message_event(delivery.written), delivery.event_id)).encode()
        headers: dict[str, str] = {}
        if retry:
            last = delivery.outcomes[-1]
            reason = {"timeout": "http_timeout", "refused": "connection_failed"}.get(last, "http_error")
            headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": reason}
        began = time.monotonic()
        outcome = await self._post(body, "application/json", headers)
        delivery.outcomes.append(outcome)
        if outcome.startswith("2"):
            self.ack_seconds.append(time.monotonic() - began)
            delivery.acked = delivery.written.acked = True
        return delivery.acked

    async def _retry(self, delivery: Delivery) -> None:
        for number, delay in enumerate(RETRY_DELAYS_S, start=1):
            await asyncio.sleep(delay)
            if await self._try(delivery, retry=number):
                return
        self.gave_up += 1

    async def command(self, user: str, text: str, key: str) -> str:
        """`/concierge text` typed by `user` in their DM; the answer comes to the fake's response_url `key`."""
        form = {"token": "legacy-verification-token", "team_id": TEAM, "team_domain": "chaos",
                "channel_id": dm_channel(user), "channel_name": "directmessage", "user_id": user,
                "user_name": user.lower(), "command": "/concierge", "text": text, "api_app_id": APP_ID,
                "is_enterprise_install": "false", "response_url": self.fake.response_url(key),
                "trigger_id": f"{int(time.time())}.{key}.{secrets.token_hex(8)}"}
        return await self._post(urlencode(form).encode(), "application/x-www-form-urlencoded", {})


# The bot as a subprocess.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def concierge_executable() -> str:
    """The `concierge` script of the environment running this benchmark (.venv/bin/concierge)."""
    return str(Path(sys.prefix) / "bin" / "concierge")


class BotProcess:
    """`concierge run --platform slack --http` in a clean environment, its output in `log_path`."""

    def __init__(self, env: dict[str, str], workdir: Path, log_path: Path, port: int) -> None:
        self.env = env
        self.workdir = workdir
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen | None = None
        self.expect_exit = True  # False while it should be running: an exit then is unexpected
        self.lifecycle = asyncio.Lock()  # one start, kill or stop at a time
        self.starts = 0
        self.unexpected_exits = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _note(self, line: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"==== chaos: {line} at {time.strftime('%H:%M:%S')} ====\n")

    async def start(self) -> None:
        async with self.lifecycle:
            await self._start()

    async def _start(self) -> None:
        self.starts += 1
        self._note(f"start #{self.starts}")
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [concierge_executable(), "run", "--platform", "slack", "--http"], cwd=self.workdir, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + BOT_START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.print_tail()
                    raise RuntimeError(f"the bot exited with {self.process.returncode} while starting")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(self.base_url + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            self.expect_exit = False
                            return
                await asyncio.sleep(0.1)
        self.print_tail()
        raise RuntimeError(f"the bot did not answer /healthz within {BOT_START_TIMEOUT_S:g} s")

    async def kill_and_restart(self) -> float:
        """SIGKILL, then start again at once; returns the seconds it was down."""
        async with self.lifecycle:
            down = time.monotonic()
            self._signal(signal.SIGKILL)
            await self._wait(BOT_STOP_TIMEOUT_S)
            self._note("killed (SIGKILL)")
            await self._start()
            return time.monotonic() - down

    async def stop(self) -> int | None:
        """SIGTERM and wait for the exit (SIGKILL if it does not come); returns the exit code."""
        async with self.lifecycle:
            if self.process is None or self.process.poll() is not None:
                return self.process.returncode if self.process else None
            self._signal(signal.SIGTERM)
            if not await self._wait(BOT_STOP_TIMEOUT_S):
                say(f"the bot did not exit {BOT_STOP_TIMEOUT_S:g} s after SIGTERM: killing it")
                self._signal(signal.SIGKILL)
                await self._wait(BOT_STOP_TIMEOUT_S)
            self._note(f"stopped (SIGTERM), exit code {self.process.returncode}")
            return self.process.returncode

    def _signal(self, signum: int) -> None:
        self.expect_exit = True
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    async def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.process is not None and self.process.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def watch(self) -> None:
        """Forever: an exit we did not cause is reported (with the log's tail) and the bot restarted."""
        while True:
            await asyncio.sleep(0.5)
            if self.lifecycle.locked() or self.expect_exit or self.process is None:
                continue
            if self.process.poll() is not None:
                self.unexpected_exits += 1
                say(f"the bot exited by itself with code {self.process.returncode}; restarting it")
                self.print_tail()
                await self.start()

    def print_tail(self, lines: int = 30) -> None:
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            say(f"last {len(tail)} lines of {self.log_path}:")
            for line in tail:
                say(f"  | {line}")

    def force_kill(self) -> None:
        """Cleanup on any way out: no bot is left running."""
        if self.process is not None and self.process.poll() is None:
            self.expect_exit = True
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)


def bot_env(database_url: str, api_url: str, port: int) -> dict[str, str]:
    """A clean environment (no developer settings leak in), plus the bot's settings."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    if os.environ.get("PYTHONPATH"):  # e.g. to run the benchmark against another checkout
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update({
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api_url,
        "SLACK_CATCH_UP_PER_MIN": "100000",
        "CONCIERGE_HTTP_HOST": "127.0.0.1",
        "CONCIERGE_HTTP_PORT": str(port),
        "CONCIERGE_DATABASE_URL": database_url,
        "CONCIERGE_STAFF_CHANNEL": STAFF,
        "CONCIERGE_ADMINS": f"slack:{ADMIN}",
        "CONCIERGE_MEMBER_MESSAGES_PER_MINUTE": "1000000",  # the flood limit is not what this measures
        "CONCIERGE_PLATFORM": "slack",
        "CONCIERGE_OUTBOX_BACKOFF_BASE_S": "0.2",
        "CONCIERGE_OUTBOX_BACKOFF_CAP_S": "5",
        "CONCIERGE_OUTBOX_MAX_ATTEMPTS": "1000",
        "CONCIERGE_OUTBOX_LEASE_S": "10",
        "CONCIERGE_CATCH_UP_HOURS": "72",
    })
    return env


def migrate(env: dict[str, str], workdir: Path) -> None:
    """`concierge db upgrade`, in case the bot does not migrate on start."""
    done = subprocess.run([concierge_executable(), "db", "upgrade"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        for line in (done.stdout + done.stderr).splitlines()[-30:]:
            say(f"  | {line}")
        raise RuntimeError(f"concierge db upgrade failed with exit code {done.returncode}")


# The database, locked from outside.


@dataclass
class Backend:
    """One database the bot runs on, and how to lock it."""

    name: str
    url: str
    sqlite_path: Path | None = None
    postgres: PostgresServer | None = None
    dbname: str = ""

    def _pg_connect(self):  # noqa: ANN202
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.postgres.port} user=postgres dbname={self.dbname}")

    def hold_lock(self, seconds: float, cancelled: threading.Event) -> str:
        """Lock the whole database for `seconds` (in a thread); returns what was locked."""
        if self.sqlite_path is not None:
            connection = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            try:
                connection.execute("BEGIN EXCLUSIVE")
                cancelled.wait(seconds)
                connection.execute("ROLLBACK")
            finally:
                connection.close()
            return "the SQLite file (BEGIN EXCLUSIVE)"
        from psycopg import sql

        with self._pg_connect() as connection:
            tables = [row[0] for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' "
                "ORDER BY tablename")]
            statement = sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.SQL(", ").join(sql.Identifier(table) for table in tables))
            connection.execute(statement)
            cancelled.wait(seconds)
            connection.rollback()
        return f"{len(tables)} tables (LOCK TABLE ... IN ACCESS EXCLUSIVE MODE): {', '.join(tables)}"

    def recorded_events(self) -> dict[str, str] | None:
        """What the bot recorded as received: every value of any `event_id` column, with the row's
        `status` where the table has one ("" otherwise); None if no table has an `event_id`."""
        rows: list[tuple[str, str]] = []
        found = False
        if self.sqlite_path is not None:
            connection = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
            try:
                tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
                    if "event_id" in columns:
                        found = True
                        status = "status" if "status" in columns else "''"
                        rows += connection.execute(f'SELECT event_id, {status} FROM "{table}"').fetchall()
            finally:
                connection.close()
        else:
            from psycopg import sql

            with self._pg_connect() as connection:
                columns: dict[str, set[str]] = {}
                for table, column in connection.execute(
                        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"):
                    columns.setdefault(table, set()).add(column)
                for table, names in columns.items():
                    if "event_id" in names:
                        found = True
                        status = sql.Identifier("status") if "status" in names else sql.SQL("''")
                        query = sql.SQL("SELECT event_id, {} FROM {}").format(status, sql.Identifier(table))
                        rows += connection.execute(query).fetchall()
        return {str(event_id): str(status or "") for event_id, status in rows} if found else None


# The scenario.


@dataclass
class Options:
    members: int
    messages: int
    seed: int
    keep: bool = False  # keep the bot's working directory (and the SQLite file) for a look afterwards


@dataclass
class Score:
    sent: int
    acked: int
    reached: int
    lost: int
    doubled: int
    late_max_s: float

    def line(self, backend: str) -> str:
        return (f"chaos: backend={backend} sent={self.sent} acked={self.acked} reached={self.reached} "
                f"lost={self.lost} doubled={self.doubled} late_max_s={self.late_max_s:.1f}")


def member_user(index: int) -> str:
    return f"U0M{index:04d}"


def member_name(index: int) -> str:
    return f"m{index}"


class Run:
    """One backend's run: setup, the burst with its chaos, settling, scoring."""

    def __init__(self, backend: Backend, options: Options, fake: ChaosSlack, bot: BotProcess) -> None:
        self.backend = backend
        self.options = options
        self.fake = fake
        self.bot = bot
        self.rng = random.Random(options.seed)
        self.slack = SlackSide(bot.base_url, fake, self.rng)
        self.written: list[Written] = []
        self.markers_of: dict[int, set[str]] = {}  # member index -> markers of the DMs they wrote
        self.silent = False  # the bot is stopped: writes are kept in history, not delivered
        self.started = 0.0  # time.monotonic() when the burst began
        self.writing = True
        self.lock_cancelled = threading.Event()
        self._counter = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _marker(self, kind: str) -> str:
        self._counter += 1
        return f"chx{kind}{self._counter:06d}"

    # Setup.

    async def enrol(self) -> None:
        """Members and experts, by /concierge commands from the admin; each answer is checked."""
        commands = [(f"m{i}", f"member add <@{member_user(i)}|{member_name(i)}> premium {member_name(i)}",
                     "premium member") for i in range(1, self.options.members + 1)]
        commands += [(f"e{n}", f"expert add <@{user}|e{n}> general e{n}", "answers")
                     for n, user in enumerate(EXPERTS, start=1)]
        semaphore = asyncio.Semaphore(8)

        async def one(key: str, text: str) -> None:
            async with semaphore:
                outcome = await self.slack.command(ADMIN, text, key)
                if outcome != "200":
                    raise RuntimeError(f"the bot answered {outcome} to /concierge {text}")

        await asyncio.gather(*(one(key, text) for key, text, _ in commands))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(key not in self.fake.responses for key, _, _ in commands):
            await asyncio.sleep(0.2)
        problems = []
        for key, text, expected in commands:
            answers = [body.get("text", "") for body in self.fake.responses.get(key, [])]
            if not any(expected in answer for answer in answers):
                problems.append(f"/concierge {text} -> {answers or 'no answer'}")
        if problems:
            raise RuntimeError("enrolment failed: " + "; ".join(problems[:5]))
        say(f"enrolled {self.options.members} members and {len(EXPERTS)} experts (answers checked)")

    # Writing.

    def _write_jobs(self) -> list[int]:
        """Which member writes each DM, in order.

        Members join at random moments over the first FIRST_WRITES_SPAN of the burst (their first
        DM opens a conversation, so staff cards are posted all through the chaos, not only at the
        start); each DM after that is by one of the members who joined already.
        """
        members = list(range(1, self.options.members + 1))
        self.rng.shuffle(members)
        total = self.options.messages
        if total <= len(members):
            return members[:total]
        span = max(len(members), int(total * FIRST_WRITES_SPAN))
        joins = dict(zip([0, *sorted(self.rng.sample(range(1, span), len(members) - 1))], members, strict=True))
        jobs: list[int] = []
        joined: list[int] = []
        for number in range(total):
            if number in joins:
                joined.append(joins[number])
                jobs.append(joins[number])
            else:
                jobs.append(self.rng.choice(joined))
        return jobs

    async def _deliver(self, written: Written) -> None:
        if not written.delivered:
            return
        await self.slack.send_event(written)
        self.slack.reenvelope_later(written)

    async def member_writes(self, index: int) -> None:
        user = member_user(index)
        marker = self._marker("d")
        stored = self.fake.member_writes(user, f"question {marker} from {member_name(index)}", str(uuid.uuid4()))
        written = Written(marker, "dm", user, STAFF, stored, delivered=not self.silent)
        self.written.append(written)
        self.markers_of.setdefault(index, set()).add(marker)
        if index % EXPERT_EVERY == 0:
            self.slack.later(self.expert_replies(index))
        await self._deliver(written)

    async def expert_replies(self, index: int) -> None:
        """An expert answers in the member's thread a little later, once the thread's card is there.

        The thread is the newest card in the staff channel carrying one of the member's markers:
        if the bot posted the card twice, the one it recorded is normally the later one.
        """
        await asyncio.sleep(self.rng.uniform(*EXPERT_DELAY_S))
        deadline = time.monotonic() + CARD_WAIT_S
        card = self.fake.latest_card(self.markers_of[index])
        while card is None and time.monotonic() < deadline and self.writing:
            await asyncio.sleep(1.0)
            card = self.fake.latest_card(self.markers_of[index])
        if card is None or not self.writing:
            return  # no thread to answer in: nothing written
        marker = self._marker("r")
        expert = EXPERTS[index // EXPERT_EVERY % len(EXPERTS)]
        stored = self.fake.expert_writes(STAFF, card.ts, expert, f"answer {marker} for {member_name(index)}",
                                         str(uuid.uuid4()))
        written = Written(marker, "reply", expert, dm_channel(member_user(index)), stored,
                          delivered=not self.silent)
        self.written.append(written)
        await self._deliver(written)

    async def write_burst(self) -> None:
        """WRITERS concurrent senders write the DMs at an even pace over WRITING_S seconds."""
        jobs = self._write_jobs()
        interval = WRITING_S / max(len(jobs), 1)
        queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        for number, index in enumerate(jobs):
            queue.put_nowait((number, index))

        async def writer() -> None:
            while not queue.empty():
                number, index = queue.get_nowait()
                release = self.started + number * interval
                await asyncio.sleep(max(0.0, release - time.monotonic()))
                await self.member_writes(index)

        await asyncio.gather(*(writer() for _ in range(WRITERS)))

    # Chaos.

    async def at(self, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(max(0.0, self.started + seconds - time.monotonic()))
        await action()

    async def lock_database(self) -> None:
        say(f"t={self.elapsed():.1f}s locking the database for {DB_LOCK_S:g} s")
        what = await asyncio.to_thread(self.backend.hold_lock, DB_LOCK_S, self.lock_cancelled)
        say(f"t={self.elapsed():.1f}s released the lock on {what}")

    async def slack_chaos(self) -> None:
        """chat.postMessage fails in each of SLACK_CHAOS's ways in turn, then is calm again."""
        for chaos, seconds, probability in SLACK_CHAOS:
            say(f"t={self.elapsed():.1f}s Slack chat.postMessage: {chaos.value} for {seconds:g} s"
                + (f" (p={probability:g})" if chaos is Chaos.ACCEPT_THEN_FAIL else ""))
            self.fake.set_chaos(chaos, probability)
            await asyncio.sleep(seconds)
        self.fake.set_chaos(Chaos.CALM)
        say(f"t={self.elapsed():.1f}s Slack chat.postMessage: calm again")

    async def kill(self) -> None:
        say(f"t={self.elapsed():.1f}s SIGKILL the bot")
        down = await self.bot.kill_and_restart()
        say(f"t={self.elapsed():.1f}s the bot is back after {down:.1f} s")

    async def stop_for_a_while(self) -> None:
        self.silent = True
        code = await self.bot.stop()
        say(f"t={self.elapsed():.1f}s stopped the bot (SIGTERM, exit code {code}); for {STOP_S:g} s what is "
            "written is only in Slack's history")
        await asyncio.sleep(STOP_S)
        self.silent = False  # from now on events are delivered again (refused until it is up: Slack retries)
        await self.bot.start()
        say(f"t={self.elapsed():.1f}s started the bot again: it has to catch up on the history")

    async def burst(self) -> None:
        self.started = time.monotonic()
        say(f"burst: {self.options.messages} member DMs over {WRITING_S:g} s by {WRITERS} senders")
        chaos = [
            self.at(DB_LOCK_AT, self.lock_database),
            self.at(SLACK_CHAOS_AT, self.slack_chaos),
            self.at(STOP_AT, self.stop_for_a_while),
        ]
        chaos += [self.at(self.rng.uniform(*window), self.kill) for window in KILL_WINDOWS]
        await asyncio.gather(self.write_burst(), *chaos)
        self.writing = False
        say(f"t={self.elapsed():.1f}s writing done: {len(self.written)} messages written")

    async def settle(self) -> None:
        """Wait for Slack's retries and re-envelopes, then until the bot posts nothing more."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while self.slack.background and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        say(f"t={self.elapsed():.1f}s every event delivery is over ({self.slack.gave_up} envelopes given up)")
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = self.fake.accepted_posts
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change >= SETTLE_STABLE_S:
                say(f"t={self.elapsed():.1f}s settled: {count} bot posts, none for {SETTLE_STABLE_S:g} s")
                return
            await asyncio.sleep(0.5)
        say(f"t={self.elapsed():.1f}s not settled within {SETTLE_TIMEOUT_S:g} s: scoring anyway")

    # Scoring.

    def _arrivals(self, written: Written) -> list[Arrival]:
        return [a for a in self.fake.arrivals.get(written.marker, []) if a.channel == written.destination]

    def arrivals_at_destination(self, written: Written) -> list[float]:
        """When `written` arrived where it should (once if all went well)."""
        return [arrival.at for arrival in self._arrivals(written)]

    def score(self) -> Score:
        reached = lost = doubled = 0
        late = 0.0
        for written in self.written:
            arrived = self.arrivals_at_destination(written)
            if not arrived:
                lost += 1
            elif len(arrived) > 1:
                doubled += 1
            else:
                reached += 1
                late = max(late, arrived[0] - written.written_at)
        return Score(len(self.written), sum(w.acked for w in self.written), reached, lost, doubled, late)

    def explain(self) -> None:
        """The `# ` lines that help find out why: what was injected, who was lost or doubled, and how."""
        outcomes = Counter(outcome for d in self.slack.deliveries for outcome in d.outcomes)
        say(f"event tries: {dict(sorted(outcomes.items()))}; envelopes {len(self.slack.deliveries)} "
            f"(re-enveloped {sum(d.reenveloped for d in self.slack.deliveries)}), given up {self.slack.gave_up}")
        acks = sorted(self.slack.ack_seconds)
        if acks:
            say(f"time to a 2xx (s): p50={acks[len(acks) // 2]:.3f} p99={acks[int(len(acks) * 0.99)]:.3f} "
                f"max={acks[-1]:.3f}")
        say(f"Slack chaos injected on chat.postMessage: {dict(sorted(self.fake.injected.items()))}; "
            f"posts stored {self.fake.accepted_posts}; Web API calls {dict(sorted(self.fake.calls.items()))}")
        say(f"bot starts {self.bot.starts}, unexpected exits {self.bot.unexpected_exits}")
        kinds = Counter((w.kind, "delivered" if w.delivered else "history-only") for w in self.written)
        say("written: " + ", ".join(f"{kind} {how} {n}" for (kind, how), n in sorted(kinds.items())))
        lost = [w for w in self.written if not self.arrivals_at_destination(w)]
        doubled = [w for w in self.written if len(self.arrivals_at_destination(w)) > 1]
        for label, group in (("lost", lost), ("doubled", doubled)):
            if not group:
                continue
            by = Counter((w.kind, "delivered" if w.delivered else "history-only", "acked" if w.acked else "not acked")
                         for w in group)
            say(f"{label} by kind: " + ", ".join(f"{k} {d} {a}: {n}" for (k, d, a), n in sorted(by.items())))
            say(f"{label} (first 10): " + " ".join(self._describe(w) for w in group[:10]))
        lost_replies = [w for w in lost if w.kind == "reply"]
        if lost_replies:
            # An expert's reply needs the bot to know the thread: was its card's post answered, and how soon after it
            # was the reply written?
            cards = [self.fake.by_ts.get((STAFF, w.message.thread_ts)) for w in lost_replies]
            told = Counter(card.answered if card else "no card" for card in cards)
            soon = sorted(w.written_at - card.at for w, card in zip(lost_replies, cards, strict=True) if card)
            say(f"lost replies: their thread's card had been answered {dict(sorted(told.items()))}; replies written "
                + (f"{soon[0]:.1f}-{soon[-1]:.1f} s after the card" if soon else "?"))
        if doubled:
            # What the bot had been told of each copy but the last, and the time between the copies.
            told = Counter(arrival.post.answered for w in doubled for arrival in self._arrivals(w)[:-1])
            gaps = sorted(self._arrivals(w)[-1].at - self._arrivals(w)[0].at for w in doubled)
            say(f"doubled: the earlier copies had been answered {dict(sorted(told.items()))}; "
                f"time between first and last copy p50={gaps[len(gaps) // 2]:.1f}s max={gaps[-1]:.1f}s")
        misplaced = sum(1 for w in self.written
                        for a in self.fake.arrivals.get(w.marker, []) if a.channel != w.destination)
        if misplaced:
            say(f"markers that arrived somewhere else than their destination: {misplaced}")
        for phrase in ("could not be passed on", "Could not deliver"):
            count = self.fake.posts_containing(phrase)
            if count:
                say(f"bot posts saying {phrase!r}: {count}")
        cards = Counter(tuple(sorted(self.fake.markers_in(post))) for post in self.fake.bot_posts
                        if post.channel == STAFF and not post.thread_ts)
        extra_cards = sum(n - 1 for n in cards.values() if n > 1)
        if extra_cards:
            say(f"staff cards posted more than once: {extra_cards} extra")
        late = sorted(self.arrivals_at_destination(w)[0] - w.written_at
                      for w in self.written if len(self.arrivals_at_destination(w)) == 1)
        if late:
            say(f"late (s) over reached: p50={late[len(late) // 2]:.1f} p90={late[int(len(late) * 0.9)]:.1f} "
                f"max={late[-1]:.1f}")

    def _describe(self, written: Written) -> str:
        arrivals = len(self.arrivals_at_destination(written))
        how = "acked" if written.acked else ("unacked" if written.delivered else "history-only")
        return f"{written.marker}({written.kind},{how},ts={written.message.ts},x{arrivals})"

    def check_recorded(self) -> None:
        """What the database says of the acknowledged envelopes and of the lost messages.

        An acknowledged envelope whose message is in no `event_id` row (by envelope id, or by the
        message's ts in the id) was a 200 for nothing; a lost message that is recorded shows how
        far it got (the row's status).
        """
        try:
            recorded = self.backend.recorded_events()
        except Exception as error:  # a diagnostic only
            say(f"could not read the recorded events: {error}")
            return
        if recorded is None:
            say("no event_id column found in the database: cannot check what was recorded")
            return
        by_ts: dict[str, str] = {}
        for event_id, status in recorded.items():
            for ts in re.findall(r"\d{10}\.\d{6}", event_id):
                by_ts.setdefault(ts, status)

        def status_of(written: Written, event_id: str = "") -> str | None:
            if event_id in recorded:
                return recorded[event_id]
            return by_ts.get(written.message.ts)

        acked = [d for d in self.slack.deliveries if d.acked]
        missing = [d for d in acked if status_of(d.written, d.event_id) is None]
        say(f"acked envelopes whose message the bot never recorded (no event_id row by envelope id or message ts): "
            f"{len(missing)} of {len(acked)}")
        lost = [w for w in self.written if not self.arrivals_at_destination(w)]
        if lost:
            statuses = Counter(
                ("acked" if w.acked else "unacked" if w.delivered else "history-only",
                 status_of(w) if status_of(w) is not None else "not recorded") for w in lost)
            say("lost messages as recorded: " + ", ".join(f"{how} {status or 'recorded'}: {n}"
                                                         for (how, status), n in sorted(statuses.items())))


async def run_backend(name: str, options: Options) -> Score:
    """Set up one backend, run the scenario, tear everything down (also on errors and Ctrl-C)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"concierge-chaos-{name}-"))
    log_path = Path(tempfile.mkstemp(prefix=f"concierge-chaos-{name}-", suffix=".log")[1])
    say(f"backend={name}: bot log {log_path}")
    fake = ChaosSlack(STAFF, MARKER, seed=options.seed)
    postgres: PostgresServer | None = None
    bot: BotProcess | None = None
    run: Run | None = None
    watcher: asyncio.Task | None = None
    try:
        if name == "sqlite":
            path = workdir / "chaos.db"
            backend = Backend(name, f"sqlite:///{path}", sqlite_path=path)
        else:
            postgres = PostgresServer().start()
            backend = Backend(name, postgres.create_database("chaos"), postgres=postgres, dbname="chaos")
        await fake.start()
        port = free_port()
        env = bot_env(backend.url, fake.api_url, port)
        await asyncio.to_thread(migrate, env, workdir)
        bot = BotProcess(env, workdir, log_path, port)
        await bot.start()
        say(f"backend={name}: the bot is up on 127.0.0.1:{port}, fake Slack on 127.0.0.1:{fake.port}")
        run = Run(backend, options, fake, bot)
        await run.enrol()
        watcher = asyncio.create_task(bot.watch())
        await run.burst()
        await run.settle()
        watcher.cancel()
        code = await bot.stop()
        say(f"stopped the bot (exit code {code})")
        run.explain()
        run.check_recorded()
        errors = sum(" ERROR " in line or line.startswith("Traceback")
                     for line in log_path.read_text(errors="replace").splitlines())
        say(f"bot log: {errors} ERROR/Traceback lines in {log_path}")
        return run.score()
    finally:
        if watcher is not None:
            watcher.cancel()
        if run is not None:
            run.lock_cancelled.set()
            await run.slack.close()
        if bot is not None:
            bot.force_kill()
        await fake.stop()
        if postgres is not None:
            with contextlib.suppress(Exception):
                postgres.stop()
        if options.keep:
            say(f"kept the bot's working directory {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--members", type=int, default=100, help="members writing (default 100)")
    parser.add_argument("--messages", type=int, default=1000, help="member DMs in all (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seeds every random choice (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the bot's working directory (SQLite file)")
    args = parser.parse_args()
    if args.members < 1 or args.messages < 1:
        parser.error("--members and --messages must be at least 1")
    options = Options(args.members, args.messages, args.seed, args.keep)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    try:
        for name in backends:
            score = asyncio.run(interruptible(run_backend(name, options)))
            print(score.line(name), flush=True)
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted: the bot and the database were stopped")
        raise SystemExit(130) from None


async def interruptible(work: Awaitable[Score]) -> Score:
    """Run `work`, cancelled by SIGTERM as by Ctrl-C, so its cleanup runs either way."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


if __name__ == "__main__":
    main()
