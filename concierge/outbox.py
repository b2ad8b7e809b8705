"""Transactional outbox: queue messages with the change that caused them, deliver them once.

Every message the bot sends is first an `OutboxItem` row written in the transaction of the
change that caused it. Delivery claims rows with a lease (status `sending`, `lease_until`):

- Hand-off (the hot path): the transaction that queues an item also claims it when nothing
  earlier of its conversation is unsent, and gives it to this process's dispatcher in memory,
  so a relay costs one more transaction (recording the outcome), not a search.
- Scan: due rows (new, retry time passed, or lease of a dead worker run out) are claimed
  oldest first, one per conversation at a time; on PostgreSQL with `FOR UPDATE SKIP LOCKED` so
  several workers share the work without doubling it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from concierge.clock import Clock
from concierge.database import Database
from concierge.digests.catalogue import render
from concierge.digests.consent import in_force
from concierge.platform import (
    Address,
    Button,
    Card,
    MessageRef,
    Outbound,
    Platform,
    PlatformDown,
    RateLimited,
    Unreachable,
)
from concierge.records import Conversation, Digest, DigestEdition, OutboxItem
from concierge.retry import backoff_s

log = logging.getLogger(__name__)

POST = "post"  # to a fixed address (a member's DM, a channel)
DIGEST = "digest"  # a digest edition to a subscriber: consent is checked again just before sending
UNSENT = ("pending", "sending", "confirmed")
OPEN_THREAD = "open_thread"  # the card that opens a conversation's staff thread
THREAD_POST = "thread_post"  # into the conversation's staff thread, resolved at send time
EDIT_CARD = "edit_card"  # redraw a conversation's staff card, drawn from the records at send time

ITEMS = OutboxItem.__table__


@dataclass
class Claimed:
    """An outbox item taken by this worker, with its destination resolved."""

    id: int
    kind: str
    platform: str
    address: Address
    message: Outbound
    conversation_id: int | None
    attempts: int = 0
    member_id: int | None = None  # digest deliveries: whose consent to check
    digest_id: int | None = None
    maybe_sent: bool = False  # an earlier attempt's outcome is unknown: ask the platform first


HAND_OFF = "concierge.outbox.hand_off"  # session.info key


@dataclass
class HandOff:
    """What one transaction claims as it queues, for this process to send right after commit."""

    lease_until: datetime
    claimed: list[Claimed] = field(default_factory=list)
    waiting: set[int] = field(default_factory=set)  # conversations with items left for a scan
    taken: set[int] = field(default_factory=set)  # conversations with an item claimed here
    # The platforms this process sends through (None: any). An item for another platform is left
    # pending for the process that serves it (two processes, one per platform, on one database).
    platforms: frozenset[str] | None = None


def begin_hand_off(session: Session, lease_until: datetime, platforms: frozenset[str] | None = None) -> HandOff:
    """Let `enqueue` claim, in this transaction, the items that may go at once (through `platforms`)."""
    hand_off = session.info[HAND_OFF] = HandOff(lease_until, platforms=platforms)
    return hand_off


def end_hand_off(session: Session) -> HandOff | None:
    return session.info.pop(HAND_OFF, None)


def forget_queued(session: Session) -> None:
    """After a rollback: the items this transaction queued no longer exist."""
    hand_off = session.info.get(HAND_OFF)
    if hand_off is not None:
        session.info[HAND_OFF] = HandOff(hand_off.lease_until, platforms=hand_off.platforms)


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    address: Address,
    message: Outbound,
    now: datetime,
    conversation_id: int | None = None,
) -> int:
    """Add a message to the outbox inside the caller's transaction; returns its id.

    Under a hand-off (see `begin_hand_off`) the item is claimed at once unless an earlier item
    of its conversation is still unsent: messages of a conversation go out in order.
    """
    hand_off: HandOff | None = session.info.get(HAND_OFF)
    claim = hand_off is not None and (hand_off.platforms is None or address.platform in hand_off.platforms) and (
        conversation_id is None
        or (
            conversation_id not in hand_off.taken
            and conversation_id not in hand_off.waiting
            and session.execute(_UNSENT_IN_CONVERSATION, {"conversation_id": conversation_id}).first() is None
        )
    )
    item_id = session.execute(
        insert(ITEMS).returning(ITEMS.c.id),
        {
            "key": key,
            "kind": kind,
            "platform": address.platform,
            "address": address.to_dict(),
            "payload": message.to_dict(),
            "conversation_id": conversation_id,
            "status": "sending" if claim else "pending",
            "lease_until": hand_off.lease_until if claim else None,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
        },
    ).scalar_one()
    if hand_off is not None:
        if claim:
            if kind == THREAD_POST and not address.thread and conversation_id is not None:
                address = address.in_thread(_staff_thread(session, conversation_id))
            hand_off.claimed.append(Claimed(item_id, kind, address.platform, address,
                                            replace(message, idempotency_key=key), conversation_id))
            if conversation_id is not None:
                hand_off.taken.add(conversation_id)
        elif conversation_id is not None:
            hand_off.waiting.add(conversation_id)
    return item_id


_THREAD_OF = select(Conversation.__table__.c.staff_thread).where(
    Conversation.__table__.c.id == bindparam("conversation_id")
)
_UNSENT_IN_CONVERSATION = (
    select(ITEMS.c.id)
    .where(ITEMS.c.conversation_id == bindparam("conversation_id"), ITEMS.c.status.in_(UNSENT))
    .limit(1)
)


def _staff_thread(session: Session, conversation_id: int) -> str:
    return session.execute(_THREAD_OF, {"conversation_id": conversation_id}).scalar() or ""


def _release(session: Session, items: list[Claimed]) -> None:
    """Give back items claimed but never tried (shutdown): they are due again, for any worker."""
    session.execute(update(ITEMS).where(ITEMS.c.id.in_([item.id for item in items]),
                                        ITEMS.c.status.in_(("sending", "confirmed"))),
                    {"status": "pending", "lease_until": None})


def _mark_sent(session: Session, item_id: int, ref: MessageRef, now: datetime) -> None:
    session.execute(update(ITEMS).where(ITEMS.c.id == item_id),
                    {"status": "sent", "sent_at": now, "lease_until": None, "sent_message_id": ref.message_id})


def confirm_consent(session: Session, item: Claimed, now: datetime) -> bool:
    """Just before a digest goes out: is consent in force? If so, mark the item confirmed.

    Unsubscribing cancels every unconfirmed item in the transaction that records the
    revocation, so either this sees the cancellation, or the revocation comes after the
    confirmation (which `consent_checked_at` records for the audit).
    """
    if item.member_id is None or item.digest_id is None or not in_force(session, item.member_id, item.digest_id, now):
        return False
    confirmed = session.execute(
        update(ITEMS).where(ITEMS.c.id == item.id, ITEMS.c.status == "sending"),
        {"status": "confirmed", "consent_checked_at": now},
    ).rowcount
    return confirmed == 1


def _due_statement():
    """Due items, oldest first, each only once no earlier item of its conversation is unsent."""
    now = bindparam("now")
    earlier = aliased(OutboxItem)
    waits_for_earlier = exists().where(
        earlier.conversation_id == OutboxItem.conversation_id,
        earlier.id < OutboxItem.id,
        earlier.status.in_(UNSENT),
    )
    due = or_(
        and_(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= now),
        and_(OutboxItem.status.in_(("sending", "confirmed")), OutboxItem.lease_until < now),
    )
    return (
        select(OutboxItem)
        .where(due, ~waits_for_earlier, OutboxItem.platform.in_(bindparam("platforms", expanding=True)))
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .with_for_update(skip_locked=True)
    )


_DUE = _due_statement()  # built once: building the aliased subquery per call was costly


@dataclass
class Outcome:
    item: Claimed
    ref: MessageRef | None = None
    retry_after: float | None = None  # rate limited: wait this long, no attempt spent
    transient: str = ""  # retry with backoff
    permanent: str = ""  # give up and tell staff
    cancelled: str = ""  # not to be sent after all (consent withdrawn)
    recorded: bool = False  # already written
    maybe_sent: bool = False  # the failed attempt may have reached the platform all the same


class SendLimiter(Protocol):
    """A rate limiter: `acquire()` returns when one more send is allowed."""

    async def acquire(self) -> None: ...


class OutboxDispatcher:
    """Delivers outbox items through the platforms, retrying what may succeed later."""

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
        current_card: Callable[[Session, int], tuple[MessageRef, Outbound] | None] | None = None,
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
        self.current_card = current_card  # EDIT_CARD items: the card's message and what it should show now
        self._wake = asyncio.Event()
        self._handed: deque[Claimed] = deque()
        self._scan_wanted = True
        self._waiting: set[int] = set()  # conversations with items queued behind an unsent one
        # Digest sends per platform go through a limiter (set by the scheduler: an object with an
        # async `acquire()`), and pause for the platform's Retry-After when it says "slow down".
        self.limiters: dict[str, SendLimiter] = {}
        self._paused_until: dict[str, datetime] = {}
        self._editions: dict[int, Outbound] = {}
        self._stopping = False

    def hand_over(self, claimed: list[Claimed], waiting: set[int]) -> None:
        """Take items claimed by the transaction that queued them, and wake the loop.

        `waiting` names conversations whose new items wait behind an unsent one: sending that
        one (or failing it) calls for a scan.
        """
        self._handed.extend(claimed)
        self._waiting |= waiting
        self._wake.set()

    def stop(self) -> None:
        """Finish the send in flight, record its outcome, and leave `run` (a clean shutdown, SIGTERM)."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        """Ask the running loop to look for due work now."""
        self._scan_wanted = True
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before try number `attempts + 1` (see `concierge.retry`)."""
        return backoff_s(attempts, self.backoff_base_s, self.backoff_cap_s, self.jitter)

    async def release_own_leases(self) -> int:
        """SQLite only (one process per file): leases left by this process's previous life are void."""
        if not self.db.is_sqlite:
            return 0
        return await self.db.run(
            lambda session: session.execute(
                update(ITEMS).where(ITEMS.c.status.in_(("sending", "confirmed"))),
                {"status": "pending", "lease_until": None, "maybe_sent": True}
            ).rowcount
        )

    async def run(self) -> None:
        """Deliver forever: hand-offs at once, a scan when asked and every poll interval."""
        await self.release_own_leases()
        last_scan = 0.0
        while not self._stopping:
            self._wake.clear()
            scan = self._scan_wanted or time.monotonic() - last_scan >= self.poll_interval_s
            if scan:
                last_scan = time.monotonic()
            try:
                if await self.deliver_due(scan=scan):
                    continue
            except Exception:  # the loop must survive a database hiccup
                log.exception("outbox round failed")
                self._scan_wanted = True
            if self._handed:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Deliver everything due now (hand-offs and a scan); returns how many items were tried."""
        return await self.deliver_due(scan=True)

    async def deliver_due(self, scan: bool = True) -> int:
        """Send what was handed over (and, if `scan`, what is due), record, repeat while busy."""
        batch = self._take_handed()
        scanned: set[int] = set()  # ids claimed by a scan: their conversations may have more queued
        if scan:
            self._scan_wanted = False
            found = await self.db.run(self._claim_due)
            scanned = {item.id for item in found}
            batch += found
        total = 0
        while batch:
            total += len(batch)
            outcomes = []
            for index, item in enumerate(batch):
                if self._stopping:  # shutting down: what was not tried goes back, untouched
                    await self.db.run(lambda session, left=batch[index:]: _release(session, left))
                    return total
                # Each outcome is written as soon as it is known: a crash then leaves at most the
                # message in flight unrecorded, and that one is checked with the platform before
                # it is sent again (`maybe_sent`). The last one goes with the next claim, below.
                outcome = await self._send(item)
                outcomes.append(outcome)
                if index < len(batch) - 1 and not outcome.recorded:
                    await self.db.run(lambda session, done=outcome: self._record(session, [done], False))
                    outcome.recorded = True
            rescan = (self._scan_wanted or len(batch) >= self.batch_size
                      or any((o.ref is None and not o.cancelled) or o.item.conversation_id in self._waiting
                             or (o.item.id in scanned and o.item.conversation_id is not None)
                             for o in outcomes))
            self._scan_wanted = False
            last = [o for o in outcomes[-1:] if not o.recorded]
            claimed = await self.db.run(lambda session, done=last, again=rescan: self._record(session, done, again))
            if rescan:
                # A conversation stops waiting once a scan after one of its sends finds nothing more.
                sent = {o.item.conversation_id for o in outcomes if o.ref is not None}
                self._waiting -= sent - {item.conversation_id for item in claimed}
            scanned = {item.id for item in claimed}
            batch = self._take_handed() + claimed
        return total

    def _take_handed(self) -> list[Claimed]:
        taken = list(self._handed)
        self._handed.clear()
        return taken

    def _claim_due(self, session: Session) -> list[Claimed]:
        now = self.clock.now()
        # Only what this process can send: another process may serve another platform.
        items = session.scalars(_DUE.limit(self.batch_size), {"now": now, "platforms": list(self.platforms)}).all()
        claimed = []
        for item in items:
            if item.status != "pending":  # its lease ran out while sending: the worker died mid-send
                item.maybe_sent = True
            item.status = "sending"
            item.lease_until = now + timedelta(seconds=self.lease_s)
            address = Address.from_dict(item.address)
            if item.kind == THREAD_POST and not address.thread and item.conversation_id is not None:
                address = address.in_thread(_staff_thread(session, item.conversation_id))
            if item.kind == DIGEST:
                message = self._edition_message(session, item.edition_id)
            else:
                message = Outbound.from_dict(item.payload)
            message = replace(message, idempotency_key=item.key)
            claimed.append(Claimed(item.id, item.kind, item.platform, address, message, item.conversation_id,
                                   item.attempts, item.member_id, item.digest_id, item.maybe_sent))
        return claimed

    def _edition_message(self, session: Session, edition_id: int) -> Outbound:
        """A digest message: the edition's text, the text form of unsubscribing, and its button."""
        cached = self._editions.get(edition_id)
        if cached is not None:
            return cached
        edition = session.get(DigestEdition, edition_id)
        digest = session.get(Digest, edition.digest_id)
        message = Outbound(
            render(digest.title, digest.slug, edition.number, edition.text),
            Card(title=f"{digest.title} #{edition.number}",
                 buttons=(Button("Unsubscribe", "unsubscribe", digest.slug, "danger"),)),
        )
        self._editions[edition_id] = message
        return message

    async def _send(self, item: Claimed) -> Outcome:
        platform = self.platforms.get(item.platform)
        if platform is None:
            return Outcome(item, transient=f"platform {item.platform!r} is not running")
        if item.kind == DIGEST:
            resume = self._paused_until.get(item.platform)
            if resume is not None and resume > self.clock.now():
                return Outcome(item, retry_after=(resume - self.clock.now()).total_seconds())
            limiter = self.limiters.get(item.platform)
            if limiter is not None:
                await limiter.acquire()
            if not await self.db.run(lambda session: confirm_consent(session, item, self.clock.now())):
                return Outcome(item, cancelled="no consent in force")
        try:
            if not item.address.channel and item.address.user:
                item.address = await platform.open_dm(item.address)
            if item.maybe_sent:
                found = await self._find_sent(platform, item)
                if found is not None:
                    if item.kind == DIGEST:
                        await self.db.run(lambda session: _mark_sent(session, item.id, found, self.clock.now()))
                        return Outcome(item, ref=found, recorded=True)
                    return Outcome(item, ref=found)
            if item.kind == DIGEST:
                # Recorded at once, not with the batch: a crash then repeats at most the one
                # message in flight (and that one carries the same idempotency key).
                ref = await platform.send(item.address, item.message)
                await self.db.run(lambda session: _mark_sent(session, item.id, ref, self.clock.now()))
                return Outcome(item, ref=ref, recorded=True)
            if item.kind == OPEN_THREAD:
                return Outcome(item, ref=await platform.open_thread(item.address, item.message))
            if item.kind == EDIT_CARD:
                return await self._edit_card(platform, item)
            if item.kind == THREAD_POST and not item.address.thread:
                return Outcome(item, permanent="the staff thread of this conversation was never opened")
            return Outcome(item, ref=await platform.send(item.address, item.message))
        except RateLimited as error:
            if item.kind == DIGEST:  # the rest of the fan-out waits too, instead of hammering
                self._paused_until[item.platform] = self.clock.now() + timedelta(seconds=error.retry_after)
            return Outcome(item, retry_after=max(error.retry_after, 0.0))
        except Unreachable as error:
            return Outcome(item, permanent=str(error) or "unreachable")
        except PlatformDown as error:
            return Outcome(item, transient=str(error) or "platform down", maybe_sent=error.outcome_unknown)
        except Exception as error:  # an adapter bug must not lose the message: retry, bounded
            log.exception("unexpected error sending outbox item %s", item.id)
            return Outcome(item, transient=f"{type(error).__name__}: {error}", maybe_sent=True)

    async def _edit_card(self, platform: Platform, item: Claimed) -> Outcome:
        """Redraw the card as the records say now (a later change then needs no edit of its own)."""
        if self.current_card is None or item.conversation_id is None:
            return Outcome(item, permanent="nothing draws staff cards in this process")
        found = await self.db.run(lambda session: self.current_card(session, item.conversation_id))
        if found is None:
            return Outcome(item, permanent="the conversation's card was never posted")
        ref, message = found
        await platform.edit(ref, replace(message, idempotency_key=item.message.idempotency_key))
        return Outcome(item, ref=ref)

    async def _find_sent(self, platform: Platform, item: Claimed) -> MessageRef | None:
        """Ask the platform whether an earlier attempt of `item` arrived (when it can tell)."""
        find = getattr(platform, "find_sent", None)
        if find is None or item.kind == EDIT_CARD:  # drawing a card again is harmless
            return None
        address = item.address
        if item.kind == THREAD_POST and not address.thread:
            return None
        found = await find(address, item.message, opens_thread=item.kind == OPEN_THREAD)
        if found is not None:
            log.info("outbox item %s had reached %s already: not sent again", item.id, item.platform)
        return found

    def _record(self, session: Session, outcomes: list[Outcome], scan: bool) -> list[Claimed]:
        """Write the outcomes; then, if asked, claim the next due batch in the same transaction."""
        now = self.clock.now()
        sent = [o for o in outcomes if o.ref is not None and not o.recorded]
        if sent:
            session.execute(
                update(ITEMS).where(ITEMS.c.id == bindparam("item_id")),
                [{"item_id": o.item.id, "status": "sent", "sent_at": now, "lease_until": None,
                  "sent_message_id": o.ref.message_id} for o in sent],
            )
        for outcome in outcomes:
            if outcome.ref is not None:
                if outcome.item.kind == OPEN_THREAD and outcome.item.conversation_id is not None:
                    session.execute(
                        update(Conversation.__table__).where(
                            Conversation.__table__.c.id == outcome.item.conversation_id),
                        {"staff_thread": outcome.ref.address.thread, "staff_message": outcome.ref.message_id},
                    )
                continue
            self._record_failure(session, outcome, now)
        session.flush()
        return self._claim_due(session) if scan else []

    def _record_failure(self, session: Session, outcome: Outcome, now: datetime) -> None:
        item = session.get(OutboxItem, outcome.item.id)
        item.lease_until = None
        if outcome.cancelled:
            item.status = "cancelled"
            item.last_error = outcome.cancelled
            return
        if outcome.retry_after is not None:
            item.status = "pending"
            item.next_attempt_at = now + timedelta(seconds=outcome.retry_after)
            item.last_error = "rate limited"
            return
        item.attempts += 1
        if outcome.maybe_sent:
            item.maybe_sent = True
        if outcome.transient and item.attempts < self.max_attempts:
            item.status = "pending"
            item.next_attempt_at = now + timedelta(seconds=self.backoff(item.attempts))
            item.last_error = outcome.transient[:1000]
            return
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
        enqueue(
            session,
            key=f"failure:{item.id}",
            kind=THREAD_POST,
            address=Address(conversation.staff_platform, conversation.staff_channel),
            message=Outbound(f"Could not deliver to the member: {item.last_error}"),
            now=now,
            conversation_id=conversation.id,
        )
        self._scan_wanted = True
