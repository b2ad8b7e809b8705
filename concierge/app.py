"""The core's front door: an inbound event is recorded and applied, the outbox woken, a private reply out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlmodel import Session

from concierge.catch_up import CatchUpPlan, plan_catch_up
from concierge.clock import Clock
from concierge.commands import CommandRegistry, Invocation
from concierge.commands.registry import REGISTRY
from concierge.conversation_lookup import conversation_in_thread
from concierge.database import Database
from concierge.home import Home, home_of
from concierge.inbound import (
    ButtonPressed,
    CommandInvoked,
    FormSubmitted,
    Inbound,
    MemberMessage,
    StaffReply,
    is_written_message,
    normalised,
)
from concierge.inbox import (
    AlreadyHandled,
    NotRecorded,
    dm_of,
    mark_done,
    on_it_message,
    record,
    staff_notice,
)
from concierge.logs import handling
from concierge.membership import known_specialties, tier_names
from concierge.metrics import Metrics, attach, count_inbox_failure
from concierge.outbox.kinds import POST
from concierge.outbox.queue import Claimed, begin_hand_off, end_hand_off, enqueue
from concierge.people import Context, actor_name, role_of
from concierge.platform import Address, Outbound, Platform, PlatformError
from concierge.records import Conversation
from concierge.relay import member_message, staff_reply
from concierge.replies import FileAttachment, Form, Reply
from concierge.retry import backoff_s
from concierge.settings import Settings
from concierge.tables import table_of

log = logging.getLogger(__name__)


FAILED = "Sorry, that failed on our side and nothing was changed. Please try again in a minute."
ALREADY_HANDLED = "Already done."
FILE_NOT_SENT = "Sorry, the file could not be sent. Please try again in a minute."
ANSWER_RETRIES = (0.2, 1.0)  # seconds between tries of a command when the core fails (a database hiccup)

T = TypeVar("T")


async def tried_again(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    """`attempt()`, tried again after each of `ANSWER_RETRIES` when it fails (a database hiccup); the
    last failure is raised."""
    for delay in ANSWER_RETRIES:
        try:
            return await attempt()
        except Exception as error:
            log.warning("%s failed (%s); trying again in %g s", what, error, delay)
            await asyncio.sleep(delay)
    return await attempt()


@dataclass
class Receipt:
    """What became of an inbound event: `done` (applied now), `queued` (recorded, to be processed
    again by the inbox worker) or `duplicate` (delivered before). `reply` is the private answer."""

    status: str
    reply: Reply | None = None


class Responder(Protocol):
    """How an adapter answers the one person behind a command, a press or a form, privately."""

    async def show(self, reply: Reply) -> None:
        """Show the reply's text (and card, and the file `attach` kept for it) to the person only."""
        ...

    async def open_form(self, form: Form) -> bool:
        """Ask for text with a native form (a modal); False when it cannot be shown now."""
        ...

    async def attach(self, file: FileAttachment) -> str:
        """Give the person the file (or keep it for `show`); returns a line to add to the answer ("" for none).

        Raises `PlatformError` when the file cannot be sent: the answer then says so.
        """
        ...


class Concierge:
    """Handles neutral inbound events; everything it sends goes through the outbox."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        staff: Address,
        clock: Clock | None = None,
        registry: CommandRegistry = REGISTRY,
        on_queued: Callable[[list[Claimed], set[int]], None] = lambda claimed, waiting: None,
        platforms: Mapping[str, Platform] | None = None,
        metrics: Metrics | None = None,
        upload_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics if metrics is not None else Metrics()  # the runtime's (see concierge.metrics)
        self.settings = settings
        self.staff = staff
        self.clock = clock or Clock()
        self.registry = registry
        self.on_queued = on_queued
        self.platforms = platforms or {}
        # Each platform's upload limit, also of platforms another process serves (see bootstrap.upload_limits);
        # the connected platform objects say theirs.
        self.upload_limits = {**(upload_limits or {}), **{
            name: limit for name, platform in self.platforms.items() if (limit := getattr(platform, "max_file_bytes", None))}}
        self.on_recorded: Callable[[], None] = lambda: None  # wakes the inbox worker
        self._telling: set[asyncio.Task[None]] = set()

    # Receiving.

    async def receive(self, event: Inbound) -> Receipt:
        """Record `event` and apply it, in that order; only then may the platform be acknowledged.

        A written message whose processing fails is recorded alone and retried from the database
        (`queued`). Raises `NotRecorded` when not even that could be written (do not acknowledge),
        and, for commands, presses and forms, the error itself (they are answered, not queued).
        """
        with handling(f"{event.address.platform}:{event.event_id}"):  # on the log lines meanwhile
            return await self.metrics.counted(event, self._receive(event))

    async def _receive(self, event: Inbound) -> Receipt:
        event = normalised(event)  # a lone surrogate or a NUL must not keep a message from being recorded
        try:
            # A written message may share its transaction with others arriving at once (group commit).
            run = self.db.run_grouped if is_written_message(event) else self.db.run
            reply, claimed, left = await run(lambda session: self._apply(session, event))
        except AlreadyHandled:
            log.info("ignored a redelivered %s event %s", event.address.platform, event.event_id)
            return Receipt("duplicate")
        except Exception as error:
            if not is_written_message(event):
                raise
            log.warning("processing %s event %s failed, recording it for a retry: %s",
                        event.address.platform, event.event_id, error)
            return await self._record_for_retry(event, error)
        self.on_queued(claimed, left)
        if reply is not None and reply.read is not None:
            reply = await self._read_for(event, reply.read)
        if reply is not None and reply.finish is not None:
            reply = await asyncio.to_thread(reply.finish)
        if isinstance(event, StaffReply) and reply is not None and reply.text:
            self._tell_later(event.address, reply)  # not on the way to the acknowledgement
        return Receipt("done", reply)

    async def _read_for(self, event: Inbound, read: Callable[[Session], Reply]) -> Reply:
        """The reply's read (`Reply.read`), once the event is recorded: a failure is tried again here,
        since trying the whole event again would find it recorded and answer "Already done"."""
        try:
            return await tried_again(lambda: self.db.read(read), f"the read answering {event.event_id}")
        except Exception:
            log.exception("the read answering %s event %s failed", event.address.platform, event.event_id)
            return Reply(FAILED, ok=False)

    async def handle(self, event: Inbound) -> Reply | None:
        """`receive`, for callers that only want the private answer."""
        return (await self.receive(event)).reply

    async def _record_for_retry(self, event: Inbound, error: Exception) -> Receipt:
        now = self.clock.now()
        delay = backoff_s(1, self.settings.outbox_backoff_base_s, self.settings.outbox_backoff_cap_s)
        try:
            await self.db.run(lambda session: record(
                session, event, now, status="pending", error=f"{type(error).__name__}: {error}", attempts=1,
                next_attempt_at=now + timedelta(seconds=delay)))
        except AlreadyHandled:
            return Receipt("duplicate")
        except Exception as record_error:
            log.error("could not record %s event %s: %s", event.address.platform, event.event_id, record_error)
            raise NotRecorded(f"{event.address.platform} event {event.event_id}: {record_error}") from record_error
        self.on_recorded()
        return Receipt("queued")

    async def apply_recorded(self, item_id: int, event: Inbound) -> None:
        """Process an event the inbox kept (`InboxWorker`): its effect and `done` in one transaction."""

        def work(session: Session) -> tuple[Reply | None, list[Claimed], set[int]]:
            if not mark_done(session, item_id, self.clock.now()):
                raise AlreadyHandled(event.event_id)
            return self._apply(session, event, recorded=True)

        reply, claimed, left = await self.db.run(work)
        self.on_queued(claimed, left)
        if isinstance(event, StaffReply) and reply is not None and reply.text:
            self._tell_later(event.address, reply)

    def _tell_later(self, address: Address, reply: Reply) -> None:
        task = asyncio.ensure_future(self.tell(address, reply))
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def told(self) -> None:
        """Wait until every private word to staff started so far was said (tests, shutdown)."""
        while self._telling:
            await asyncio.gather(*list(self._telling), return_exceptions=True)

    async def tell(self, address: Address, reply: Reply) -> None:
        """A private word to a staff member where they wrote (Slack: ephemeral; elsewhere: in the thread)."""
        platform = self.platforms.get(address.platform)
        tell = getattr(platform, "tell", None)
        if tell is None:
            return
        try:
            await tell(address, Outbound(reply.text, reply.card))
        except PlatformError as error:
            log.warning("could not answer %s privately: %s", address.user, error)

    # Answering a command, a press or a form.

    async def answer(self, event: Inbound, responder: Responder) -> Reply:
        """Apply a command, press or form and answer the person through `responder`, whatever happens.

        A database hiccup is tried again; a failure answers "nothing was changed"; a form the
        platform cannot show now falls back to the reply's text (it names the command to type);
        a file that cannot be sent is named in the answer.
        """
        try:
            receipt = await tried_again(lambda: self.receive(event),
                                        f"the core on {event.address.platform} event {event.event_id}")
            reply = receipt.reply or Reply(ALREADY_HANDLED)
        except Exception:
            log.exception("the core failed on %s event %s", event.address.platform, event.event_id)
            reply = Reply(FAILED, ok=False)
        if reply.form is not None:
            try:
                if await responder.open_form(reply.form):
                    return reply
            except PlatformError as error:
                log.warning("could not open a form for %s: %s", event.address.user, error)
        if reply.attachment is not None:
            try:
                note = await responder.attach(reply.attachment)
            except PlatformError as error:
                log.warning("could not send %s to %s: %s", reply.attachment.filename, event.address.user, error)
                note = FILE_NOT_SENT
            reply = replace(reply, text=f"{reply.text}\n\n{note}" if note else reply.text)
        if reply.text or reply.card:
            await responder.show(reply)
        return reply

    # What the inbox worker asks of the core.

    def report_failed_inbound(self, session: Session, item_id: int, event: Inbound, detail: str,
                              now: datetime) -> None:
        """An inbound event was given up on: staff are told in the staff channel (admins see it in doctor)."""
        log.error("gave up on inbound %s event %s: %s", event.address.platform, event.event_id, detail)
        attach(session, self.metrics)
        count_inbox_failure(session, event.address.platform)
        enqueue(session, key=f"inbox-failed:{item_id}", kind=POST, address=self.staff,
                message=Outbound(staff_notice(event, item_id, detail)), now=now)

    def tell_member_we_are_on_it(self, session: Session, item_id: int, event: MemberMessage, now: datetime) -> None:
        enqueue(session, key=f"inbox-stuck:{item_id}", kind=POST, address=dm_of(event),
                message=on_it_message(), now=now)

    async def home(self, platform: str, user: str) -> Home:
        """What `user`'s home page shows (Slack's App Home)."""
        now = self.clock.now()
        return await self.db.run(lambda session: home_of(session, self.settings, platform, user, now))

    async def conversation_in(self, address: Address) -> int | None:
        """The number of the conversation whose staff thread is at `address`, if any."""
        found = await self.db.run(lambda session: conversation_in_thread(session, address))
        return found.id if found is not None else None

    async def thread_numbers(self, platform: str) -> list[int]:
        """The numeric staff thread ids used on `platform` (the playground numbers its threads on from them)."""
        threads = await self.db.run(lambda session: session.execute(
            select(table_of(Conversation).c.staff_thread).where(table_of(Conversation).c.staff_platform == platform)
        ).scalars().all())
        return [int(thread) for thread in threads if thread and thread.isdigit()]

    async def suggestions(self, option: str, prefix: str) -> list[str]:
        """Values the database knows for a command option (`tier`: the tiers; else the specialties)
        that start with `prefix` (autocomplete)."""

        def known(session: Session) -> list[str]:
            return tier_names(session) if option == "tier" else known_specialties(session)

        values = await self.db.run(known)
        return [value for value in values if value.lower().startswith(prefix.lower())]

    # Catch-up.

    async def catch_up_plan(self, platform: str) -> CatchUpPlan:
        """What to read back from `platform` after downtime (see `concierge.catch_up`)."""
        now = self.clock.now()
        hours = self.settings.catch_up_hours
        return await self.db.read(lambda session: plan_catch_up(session, platform, now, hours))

    # Applying.

    def _apply(self, session: Session, event: Inbound, *, recorded: bool = False
               ) -> tuple[Reply | None, list[Claimed], set[int]]:
        ctx = Context(settings=self.settings, now=self.clock.now(), staff=self.staff, upload_limits=self.upload_limits)
        attach(session, self.metrics)  # relays and first answers are counted when this commits
        if not recorded:
            record(session, event, ctx.now)
        # Only what this process sends through is handed to its dispatcher; the rest waits for its platform's.
        begin_hand_off(session, ctx.now + timedelta(seconds=self.settings.outbox_lease_s),
                       frozenset(self.platforms) or None)
        reply = self._dispatch(session, ctx, event)
        hand_off = end_hand_off(session)
        if hand_off is None:
            raise RuntimeError("the outbox hand-off of this transaction was lost")
        return reply, hand_off.claimed, hand_off.waiting

    def _dispatch(self, session: Session, ctx: Context, event: Inbound) -> Reply | None:
        if isinstance(event, MemberMessage):
            return member_message(session, ctx, event)
        if isinstance(event, StaffReply):
            return staff_reply(session, ctx, event)
        if isinstance(event, CommandInvoked):
            return self._command(session, ctx, event, event.tokens)
        if isinstance(event, ButtonPressed):
            tokens: tuple[str, ...] = (event.action, event.value) if event.value else (event.action,)
            return self._command(session, ctx, event, tokens, via="button")
        if isinstance(event, FormSubmitted):  # what was written is one argument, however many words
            tokens = tuple(token for token in (event.action, event.value, event.text.strip()) if token)
            return self._command(session, ctx, event, tokens, via="form")
        raise TypeError(f"not an inbound event: {event!r}")

    def _command(self, session: Session, ctx: Context, event: Inbound, tokens: tuple[str, ...],
                 via: str = "command") -> Reply:
        platform, user = event.address.platform, event.address.user
        invocation = Invocation(
            ctx=ctx,
            address=event.address,
            role=role_of(session, self.settings, platform, user),
            actor=actor_name(session, self.settings, platform, user),
            event_id=f"{platform}:{event.event_id}",
            via=via,
            names=dict(getattr(event, "names", ())),
        )
        return self.registry.execute(session, invocation, tuple(tokens))


__all__ = ["ALREADY_HANDLED", "AlreadyHandled", "Concierge", "FAILED", "NotRecorded", "Receipt", "Responder"]
