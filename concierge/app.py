"""The core's front door: one inbound event in, one transaction, outbox woken, a private reply out."""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from concierge.clock import Clock
from concierge.command_set import REGISTRY
from concierge.commands import CommandRegistry, Invocation
from concierge.database import Database
from concierge.inbound import ButtonPressed, CommandInvoked, Inbound, MemberMessage, Reply, StaffReply
from concierge.people import Context, actor_name, role_of
from concierge.platform import Address
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
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.staff = staff
        self.clock = clock or Clock()
        self.registry = registry
        self.on_queued = on_queued

    async def handle(self, event: Inbound) -> Reply | None:
        """Apply `event` once (a redelivered event id is ignored) and return the private reply."""
        try:
            reply = await self.db.run(lambda session: self._apply(session, event))
        except AlreadyHandled:
            log.info("ignored a redelivered %s event %s", event.address.platform, event.event_id)
            return None
        self.on_queued()
        return reply

    def _apply(self, session: Session, event: Inbound) -> Reply | None:
        ctx = Context(settings=self.settings, now=self.clock.now(), staff=self.staff)
        session.add(InboundEvent(platform=event.address.platform, event_id=event.event_id, received_at=ctx.now))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise AlreadyHandled(event.event_id) from None
        if isinstance(event, MemberMessage):
            return member_message(session, ctx, event)
        if isinstance(event, StaffReply):
            return staff_reply(session, ctx, event)
        if isinstance(event, CommandInvoked):
            return self._command(session, ctx, event, event.tokens)
        if isinstance(event, ButtonPressed):
            return self._command(session, ctx, event, (event.action, event.value) if event.value else (event.action,))
        raise TypeError(f"not an inbound event: {event!r}")

    def _command(self, session: Session, ctx: Context, event: Inbound, tokens: tuple[str, ...]) -> Reply:
        platform, user = event.address.platform, event.address.user
        invocation = Invocation(
            ctx=ctx,
            address=event.address,
            role=role_of(session, self.settings, platform, user),
            actor=actor_name(session, self.settings, platform, user),
            event_id=f"{platform}:{event.event_id}",
        )
        return self.registry.execute(session, invocation, tuple(tokens))
