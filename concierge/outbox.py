"""Transactional outbox: queue messages with the change that caused them, deliver them once."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Mapping

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from concierge.clock import Clock
from concierge.database import Database
from concierge.platform import (
    Address,
    MessageRef,
    Outbound,
    Platform,
    PlatformDown,
    RateLimited,
    Unreachable,
)
from concierge.records import Conversation, OutboxItem

log = logging.getLogger(__name__)

POST = "post"  # to a fixed address (a member's DM, a channel)
OPEN_THREAD = "open_thread"  # the card that opens a conversation's staff thread
THREAD_POST = "thread_post"  # into the conversation's staff thread, resolved at send time


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    address: Address,
    message: Outbound,
    now: datetime,
    conversation_id: int | None = None,
) -> OutboxItem:
    """Add a message to the outbox inside the caller's transaction."""
    item = OutboxItem(
        key=key,
        kind=kind,
        platform=address.platform,
        address=address.to_dict(),
        payload=message.to_dict(),
        conversation_id=conversation_id,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(item)
    return item


@dataclass
class Claimed:
    """An outbox item taken by this worker, with its destination resolved."""

    id: int
    key: str
    kind: str
    platform: str
    address: Address
    message: Outbound
    conversation_id: int | None
    attempts: int


@dataclass
class Outcome:
    item: Claimed
    ref: MessageRef | None = None
    retry_after: float | None = None  # rate limited: wait this long, no attempt spent
    transient: str = ""  # retry with backoff
    permanent: str = ""  # give up and tell staff


class OutboxDispatcher:
    """Delivers due outbox items through the platforms, retrying what may succeed later.

    Items of one conversation go out in order: an item waits while an earlier one of the same
    conversation is unsent. Claims are leases: a worker that dies mid-send leaves the item to be
    taken again once the lease runs out. On PostgreSQL, workers skip rows others have locked.
    """

    def __init__(
        self,
        db: Database,
        platforms: Mapping[str, Platform],
        *,
        clock: Clock,
        max_attempts: int = 10,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
        lease_s: float = 60.0,
        batch_size: int = 100,
        poll_interval_s: float = 1.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.platforms = platforms
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.lease_s = lease_s
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.jitter = jitter
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask the running loop to look for work now (called after a commit that queued items)."""
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before try number `attempts + 1`: exponential, capped, with equal jitter."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(attempts - 1, 0))
        return ceiling / 2 + ceiling / 2 * self.jitter()

    async def run(self) -> None:
        """Deliver forever; woken at once by `wake()`, else polls (other processes may queue)."""
        while True:
            self._wake.clear()
            try:
                if await self.deliver_due():
                    continue
            except Exception:  # the loop must survive a database hiccup
                log.exception("outbox round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    async def drain(self, max_rounds: int = 1000) -> int:
        """Deliver everything due now; returns how many items were tried."""
        total = 0
        for _ in range(max_rounds):
            done = await self.deliver_due()
            if not done:
                break
            total += done
        return total

    async def deliver_due(self) -> int:
        """One round: claim a batch, send it, record the outcomes. Returns the batch size."""
        claimed = await self.db.run(self._claim)
        if not claimed:
            return 0
        outcomes = [await self._send(item) for item in claimed]
        await self.db.run(lambda session: self._record(session, outcomes))
        return len(claimed)

    def _claim(self, session: Session) -> list[Claimed]:
        now = self.clock.now()
        earlier = aliased(OutboxItem)
        waits_for_earlier = exists().where(
            earlier.conversation_id == OutboxItem.conversation_id,
            earlier.id < OutboxItem.id,
            earlier.status.in_(("pending", "sending")),
        )
        due = or_(
            and_(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now),
            and_(OutboxItem.status == "sending", OutboxItem.lease_until < now),
        )
        query = (
            select(OutboxItem)
            .where(due, ~waits_for_earlier)
            .order_by(OutboxItem.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        items = session.scalars(query).all()
        threads: dict[int, Conversation] = {}
        claimed = []
        lease_until = now + timedelta(seconds=self.lease_s)
        for item in items:
            item.status = "sending"
            item.lease_until = lease_until
            address = Address.from_dict(item.address)
            if item.kind == THREAD_POST and item.conversation_id is not None:
                conversation = threads.get(item.conversation_id) or session.get(
                    Conversation, item.conversation_id
                )
                threads[item.conversation_id] = conversation
                address = address.in_thread(conversation.staff_thread or "")
            claimed.append(
                Claimed(
                    id=item.id,
                    key=item.key,
                    kind=item.kind,
                    platform=item.platform,
                    address=address,
                    message=Outbound.from_dict(item.payload),
                    conversation_id=item.conversation_id,
                    attempts=item.attempts,
                )
            )
        return claimed

    async def _send(self, item: Claimed) -> Outcome:
        platform = self.platforms.get(item.platform)
        if platform is None:
            return Outcome(item, transient=f"platform {item.platform!r} is not running")
        try:
            if item.kind == OPEN_THREAD:
                return Outcome(item, ref=await platform.open_thread(item.address, item.message))
            if item.kind == THREAD_POST and not item.address.thread:
                return Outcome(item, permanent="the staff thread of this conversation was never opened")
            return Outcome(item, ref=await platform.send(item.address, item.message))
        except RateLimited as error:
            return Outcome(item, retry_after=max(error.retry_after, 0.0))
        except Unreachable as error:
            return Outcome(item, permanent=str(error) or "unreachable")
        except PlatformDown as error:
            return Outcome(item, transient=str(error) or "platform down")
        except Exception as error:  # an adapter bug must not lose the message: retry, bounded
            log.exception("unexpected error sending outbox item %s", item.id)
            return Outcome(item, transient=f"{type(error).__name__}: {error}")

    def _record(self, session: Session, outcomes: list[Outcome]) -> None:
        now = self.clock.now()
        for outcome in outcomes:
            item = session.get(OutboxItem, outcome.item.id)
            item.lease_until = None
            if outcome.ref is not None:
                item.status = "sent"
                item.sent_at = now
                item.sent_message_id = outcome.ref.message_id
                if item.kind == OPEN_THREAD and item.conversation_id is not None:
                    conversation = session.get(Conversation, item.conversation_id)
                    conversation.staff_thread = outcome.ref.address.thread
                    conversation.staff_message = outcome.ref.message_id
                continue
            if outcome.retry_after is not None:
                item.status = "pending"
                item.next_attempt_at = now + timedelta(seconds=outcome.retry_after)
                item.last_error = "rate limited"
                continue
            item.attempts += 1
            if outcome.transient and item.attempts < self.max_attempts:
                item.status = "pending"
                item.next_attempt_at = now + timedelta(seconds=self.backoff(item.attempts))
                item.last_error = outcome.transient[:1000]
                continue
            item.status = "failed"
            item.last_error = (outcome.permanent or f"gave up after {item.attempts} tries: {outcome.transient}")[:1000]
            log.warning("outbox item %s failed: %s", item.id, item.last_error)
            self._report_failure(session, item, now)

    def _report_failure(self, session: Session, item: OutboxItem, now: datetime) -> None:
        """Tell the staff thread that a message to the member could not be delivered."""
        if item.kind != POST or item.conversation_id is None:
            return  # a failure inside the staff channel cannot be reported there
        conversation = session.get(Conversation, item.conversation_id)
        if conversation is None:
            return
        staff = Address(conversation.staff_platform, conversation.staff_channel)
        enqueue(
            session,
            key=f"failure:{item.id}",
            kind=THREAD_POST,
            address=staff,
            message=Outbound(f"Could not deliver to the member: {item.last_error}"),
            now=now,
            conversation_id=conversation.id,
        )
