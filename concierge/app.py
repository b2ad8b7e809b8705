"""The core's front door: one inbound event in, one transaction, outbox woken, a private reply out."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Callable

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from concierge.clock import Clock
from concierge.command_set import REGISTRY
from concierge.commands import CommandRegistry, Invocation
from concierge.database import Database
from concierge.inbound import (
    ButtonPressed,
    CommandInvoked,
    FormSubmitted,
    Inbound,
    MemberMessage,
    Reply,
    StaffReply,
)
from concierge.people import Context, actor_name, role_of
from concierge.platform import Address
from concierge.outbox import Claimed, begin_hand_off, end_hand_off
from concierge.records import InboundEvent
from concierge.relay import member_message, staff_reply
from concierge.settings import Settings

log = logging.getLogger(__name__)


class AlreadyHandled(Exception):
    """The platform delivered this event before."""


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
    ) -> None:
        self.db = db
        self.settings = settings
        self.staff = staff
        self.clock = clock or Clock()
        self.registry = registry
        self.on_queued = on_queued

    async def handle(self, event: Inbound) -> Reply | None:
        """Apply `event` once (a redelivered event id is ignored) and return the private reply.

        A reply with slow work left (`Reply.finish`, e.g. drawing the stats chart) is finished after
        the transaction, in a worker thread: the database threads never wait for it.
        """
        try:
            reply, claimed, left = await self.db.run(lambda session: self._apply(session, event))
        except AlreadyHandled:
            log.info("ignored a redelivered %s event %s", event.address.platform, event.event_id)
            return None
        self.on_queued(claimed, left)
        if reply is not None and reply.finish is not None:
            reply = await asyncio.to_thread(reply.finish)
        return reply

    def _apply(self, session: Session, event: Inbound) -> tuple[Reply | None, list[Claimed], set[int]]:
        ctx = Context(settings=self.settings, now=self.clock.now(), staff=self.staff)
        self._record_inbound(session, event, ctx)
        begin_hand_off(session, ctx.now + timedelta(seconds=self.settings.outbox_lease_s))
        reply = self._dispatch(session, ctx, event)
        hand_off = end_hand_off(session)
        return reply, hand_off.claimed, hand_off.waiting

    @staticmethod
    def _record_inbound(session: Session, event: Inbound, ctx: Context) -> None:
        """Insert the event's key in this transaction; an existing key means "already handled"."""
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = InboundEvent.__table__
        statement = insert(table).on_conflict_do_nothing().returning(table.c.event_id)
        inserted = session.execute(statement, {"platform": event.address.platform, "event_id": event.event_id,
                                               "received_at": ctx.now}).first()
        if inserted is None:
            raise AlreadyHandled(event.event_id)

    def _dispatch(self, session: Session, ctx: Context, event: Inbound) -> Reply | None:
        if isinstance(event, MemberMessage):
            return member_message(session, ctx, event)
        if isinstance(event, StaffReply):
            return staff_reply(session, ctx, event)
        if isinstance(event, CommandInvoked):
            return self._command(session, ctx, event, event.tokens)
        if isinstance(event, ButtonPressed):
            tokens = (event.action, event.value) if event.value else (event.action,)
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
        )
        return self.registry.execute(session, invocation, tuple(tokens))
