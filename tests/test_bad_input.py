"""Bad input is refused at the door: every command, for every role, with generated text.

No exception escapes (a refusal is a polite answer with the usage), and a refused command changes
nothing. The words come from a pool of what careless admins and hostile users type: unicode digits
that `str.isdigit()` accepts and `int()` refuses, numbers too large for a date, a duration or a
database integer, quotes, mentions, dates out of range.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import SQLModel

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.clock import FrozenClock
from concierge.commands.registry import REGISTRY
from concierge.inbound import CommandInvoked
from concierge.platform import Address
from tests.conftest import START, make_settings

NASTY = ["²", "٣", "①", "0", "-1", "+5", "1e9", "9" * 30, "99999999999", "2147483648", "99999999999d",
         "99999999999h", "9999999999m", "99999999999w", "9999999d", "31d", "1/month", "99999999999/month", "²/month",
         "none", "any",
         "9-17", "²-9", "25-3", "9999-99-99", "2026-13-45", "0001-01-01", "99999-01-01", "mon-fri", "xyz-abc",
         "Europe/Paris", "Mars/Olympus", "daily", "weekly", "hourly", "22-7", "1:5", "1:²", "²:5", "#1", "#²",
         "1:nutrition", "alice", "bob", "local:alice", "slack:U0", ":", "a:", '"', "'", "\\", "\x00", "\ud800",
         "@here", "<!channel>", "", " ", "x" * 300, "nutrition", "training,nutrition", ",", "premium", "gold"]
OPTIONS = ["--days", "--quota", "--target", "--specialties", "--tz", "--days", "--cadence", "--day", "--hour",
           "--quiet", "--since", "--to", "--message", "--specialty", "--chart"]
WORDS = st.sampled_from(NASTY + OPTIONS)
WHO = {"admin": "admin", "expert": "bob", "member": "alice", "guest": "zed"}
_ids = itertools.count(1)


def counts(runtime) -> dict[str, int]:
    """Rows per table, except the inbox (every command is recorded there, refused or not)."""
    def work(session):
        return {name: session.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in SQLModel.metadata.tables.items() if name not in ("inboxitem",)}
    return runtime.db.run_sync(work)


async def setup(runtime) -> None:
    handle = runtime.concierge.handle
    admin = LocalPlatform.dm_address("admin")
    for words in (("member", "add", "alice", "premium"), ("expert", "add", "bob", "nutrition"),
                  ("digest", "create", "tips", "Tips")):
        await handle(CommandInvoked(f"setup-{next(_ids)}", admin, words))
    await handle(__import__("concierge.inbound", fromlist=["MemberMessage"]).MemberMessage(
        f"setup-{next(_ids)}", LocalPlatform.dm_address("alice"), "A nutrition question"))
    await runtime.dispatcher.drain()


@pytest.fixture(scope="module")
def played(sqlite_template, tmp_path_factory):
    """One bot for the module: alice a member, bob an expert, conversation 1 open, a digest."""
    import shutil

    path = tmp_path_factory.mktemp("bad") / "c.db"
    shutil.copy(sqlite_template, path)
    runtime = build_runtime(make_settings(f"sqlite:///{path}"), {"local": LocalPlatform()}, clock=FrozenClock(START))
    asyncio.run(setup(runtime))
    yield runtime
    runtime.close()


@pytest.mark.parametrize("command", [command.path for command in REGISTRY], ids=" ".join)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=st.sampled_from(sorted(WHO)), words=st.lists(WORDS, max_size=4), in_thread=st.booleans())
def test_no_command_text_breaks_anything(played, command, role, words, in_thread):
    runtime = played

    async def play():
        before = counts(runtime)
        who = WHO[role]
        where = Address("local", "concierge-staff", who, "1") if in_thread else LocalPlatform.dm_address(who)
        reply = await runtime.concierge.handle(CommandInvoked(f"e{next(_ids)}", where, (*command, *words)))
        assert reply is not None and reply.text
        if not reply.ok:
            assert counts(runtime) == before, (command, words, reply.text)
        await runtime.drain()  # what it queued can be sent, and a new question still reaches staff
        return reply

    asyncio.run(play())


@pytest.mark.parametrize("command", [command.path for command in REGISTRY], ids=" ".join)
def test_each_nasty_word_in_each_place_is_refused_politely(played, command):
    """Deterministically: every word of the pool as the first argument, and as the second after a valid-looking
    first one, run by an admin (who may run everything) and by the member."""
    runtime = played

    async def play():
        for nasty in NASTY:
            for words in ((nasty,), ("1", nasty), ("alice", nasty), ("tips", "--hour", nasty)):
                for who in ("admin", "alice"):
                    before = counts(runtime)
                    reply = await runtime.concierge.handle(
                        CommandInvoked(f"e{next(_ids)}", LocalPlatform.dm_address(who), (*command, *words)))
                    assert reply is not None and reply.text, (command, words)
                    if not reply.ok:
                        assert counts(runtime) == before, (command, words, reply.text)
        await runtime.drain()

    asyncio.run(play())
