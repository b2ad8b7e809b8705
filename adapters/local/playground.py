"""The playground: one terminal where a person plays every role, line by line.

A line is `who> text` (a DM from `who`), `who@N> text` (`who` writing in staff thread N), and
either may be a `/concierge ...` command. A line without `who>` repeats the last speaker.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shlex
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from adapters.local.platform import LocalPlatform, button_hints
from concierge.bootstrap import Runtime, build_runtime
from concierge.inbound import CommandInvoked, Inbound, MemberMessage, StaffReply
from concierge.platform import Address
from concierge.replies import Reply
from concierge.settings import Settings

LINE = re.compile(r"^\s*(?P<who>[\w.-]+)(?:@(?P<at>\w+))?>\s?(?P<text>.*)$")
# Members may write as if from these platforms (`dana@discord> ...`): in-memory stand-ins, no tokens.
PLAYED = ("discord", "slack")
HELP = """Type lines as `who> text`. Examples:
  admin> /concierge member add alice premium
  admin> /concierge expert add bob nutrition
  alice> What should I eat before a 10k race?
  bob@1> Oats and a banana two hours before.
  bob@1> note: check her allergies next time
  bob@1> /concierge close
A member may write as if on Discord or Slack: `admin> /concierge member add discord:dana premium`,
then `dana@discord> Hello from Discord!` (staff answer in the thread as usual).
`quit` or Ctrl-D leaves."""


def playground_platforms(echo: Callable[[str], None] | None) -> dict[str, LocalPlatform]:
    """The playground's own platform (staff, and members by default) and stand-ins for Discord and Slack."""
    return {"local": LocalPlatform(echo=echo), **{name: LocalPlatform(echo=echo, name=name) for name in PLAYED}}


def playground_runtime(settings: Settings, platforms: dict[str, LocalPlatform], **kwargs) -> Runtime:  # noqa: ANN003
    """Staff work on the playground itself, whichever platform a member writes from."""
    return build_runtime(settings.model_copy(update={"staff_platform": "local"}), platforms, **kwargs)


class LocalDriver:
    """Turns playground lines into inbound events and settles the outbox after each one."""

    def __init__(self, runtime: Runtime, platform: LocalPlatform, staff_channel: str,
                 echo: Callable[[str], None] = print, files_dir: Path = Path(".")) -> None:
        self.runtime = runtime
        self.platform = platform
        self.staff_channel = staff_channel
        self.echo = echo
        self.files_dir = files_dir  # where a reply's file (the stats chart) is written
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:8]  # event ids stay unique across playground sessions on one database
        self._speaker = "admin"
        self._thread: str | None = None
        self._from = "local"  # the platform a member writes from (`who@discord>`)

    def _event_id(self) -> str:
        return f"local-{self._run}-{next(self._ids)}"

    async def line(self, raw: str) -> Reply | None:
        """Handle one playground line; prints what the bot answers and sends."""
        match = LINE.match(raw)
        if match:
            at = match["at"] or ""
            if at and not at.isdigit() and at not in PLAYED:
                self.echo(f"  (only you) `@{at}` is neither a thread number nor a platform ({', '.join(PLAYED)}).")
                return None
            self._speaker, text = match["who"], match["text"]
            self._thread = at if at.isdigit() else None
            self._from = at if at in PLAYED else "local"
        else:
            text = raw.strip()
        if not text:
            return None
        who, thread, dm = self._speaker, self._thread, LocalPlatform.dm_address(self._speaker, self._from)
        if text.startswith("/concierge"):
            try:
                tokens = tuple(shlex.split(text[len("/concierge"):]))
            except ValueError as problem:
                self.echo(f"  (only you) Could not read that command: {problem}.")
                return None
            address = Address("local", self.staff_channel, who, thread) if thread else dm
            event: Inbound = CommandInvoked(self._event_id(), address, tokens)
        elif thread:
            where = Address("local", self.staff_channel, who, thread)
            if await self.runtime.concierge.conversation_in(where) is None:
                self.echo(f"  (only you) There is no conversation in thread {thread}; nothing was sent. "
                          "Threads are numbered as the bot opens them: `[staff #...] thread N`.")
                return None
            event = StaffReply(self._event_id(), where, text)
        else:
            event = MemberMessage(self._event_id(), dm, text, display_name=who)
        reply = await self.runtime.concierge.handle(event)
        if reply is not None and not isinstance(event, MemberMessage):
            self.echo(f"  {reply.text}" if reply.text.startswith("(") else f"  (only you) {reply.text}")
            if button_hints(reply.card):
                self.echo(button_hints(reply.card))
        if reply is not None and reply.attachment is not None:
            path = self.files_dir / reply.attachment.filename
            path.write_bytes(reply.attachment.data)
            self.echo(f"  (only you) {reply.attachment.title or 'The file'}: written to {path}")
        await self.runtime.drain()
        return reply


async def run_script(settings: Settings, lines: Iterable[str], echo: Callable[[str], None] = print) -> None:
    """Play `lines` as if typed, echoing each with its prompt, then what follows it."""
    platforms = playground_platforms(echo)
    platform = platforms["local"]
    runtime = playground_runtime(settings, platforms)
    try:
        driver = LocalDriver(runtime, platform, settings.staff_channel, echo)
        for line in lines:
            echo(line)
            await driver.line(line)
    finally:
        runtime.close()


async def run_playground(settings: Settings) -> None:
    """The interactive loop on stdin; the outbox is drained after each line."""
    platforms = playground_platforms(print)
    platform = platforms["local"]
    runtime = playground_runtime(settings, platforms)
    # New threads are numbered on from those of earlier runs on this database.
    platform.start_threads_after(max(await runtime.concierge.thread_numbers("local"), default=0))
    driver = LocalDriver(runtime, platform, settings.staff_channel)
    print(f"{settings.bot_title()}, local playground. {HELP}")
    loop = asyncio.get_running_loop()
    await runtime.open_endpoint()  # CONCIERGE_METRICS_PORT: /metrics, /healthz, /readyz (off when unset)
    background = asyncio.create_task(runtime.run_background())  # digests arrive on their own
    try:
        while True:
            sys.stdout.write("> ")
            sys.stdout.flush()
            raw = await loop.run_in_executor(None, sys.stdin.readline)
            if not raw or raw.strip() in {"quit", "exit"}:
                break
            await driver.line(raw.rstrip("\n"))
    finally:
        await runtime.stop_background(background)
        await runtime.close_endpoint()
        runtime.close()
