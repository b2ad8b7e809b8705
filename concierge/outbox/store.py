"""The outbox's rows at delivery: claiming with a lease, giving back, recording outcomes.

Due rows (new, retry time passed, or lease of a dead worker run out) are claimed oldest first,
one per conversation at a time; on PostgreSQL with `FOR UPDATE SKIP LOCKED` so several workers
share the work without doubling it. A row whose lease ran out while it was being sent may have
reached the platform: it is marked `maybe_sent`, and the platform is asked before it goes again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from concierge.driver_write import write_many
from concierge.outbox.kinds import LEASED, UNSENT, OutboxKind, OutboxStatus
from concierge.outbox.outcome import Cancelled, Failed, Outcome, RateLimited, RetryLater, Sent
from concierge.outbox.policy import DeliveryPolicy
from concierge.outbox.queue import ITEMS, Claimed, enqueue, staff_thread
from concierge.platform import Address, MessageRef, Outbound
from concierge.records import Conversation, OutboxItem
from concierge.tables import rows_affected, saved_id, table_of

log = logging.getLogger(__name__)


def _due_statement() -> Select[Any]:
    """Due items, oldest first, each only once no earlier item of its conversation is unsent."""
    now: BindParameter[datetime] = bindparam("now")
    earlier = aliased(OutboxItem)
    waits_for_earlier = exists().where(
        col(earlier.conversation_id) == col(OutboxItem.conversation_id),
        col(earlier.id) < col(OutboxItem.id),
        col(earlier.status).in_(UNSENT),
    )
    due = or_(
        and_(col(OutboxItem.status) == OutboxStatus.PENDING, col(OutboxItem.next_attempt_at) <= now),
        and_(col(OutboxItem.status).in_(LEASED), col(OutboxItem.lease_until) < now),
    )
    return (
        select(OutboxItem)
        .where(due, ~waits_for_earlier, col(OutboxItem.platform).in_(bindparam("platforms", expanding=True)))
        .order_by(col(OutboxItem.next_attempt_at), col(OutboxItem.id))
        .with_for_update(skip_locked=True)
    )


_DUE = _due_statement()  # built once: building the aliased subquery per call was costly


def claim_due(session: Session, *, now: datetime, platforms: Collection[str], limit: int, lease_s: float,
              policies: Mapping[str, DeliveryPolicy]) -> list[Claimed]:
    """Claim up to `limit` due items for `platforms` (only what this process can send: another
    process may serve another platform), each leased for `lease_s`."""
    items: Sequence[OutboxItem] = session.scalars(_DUE.limit(limit), {"now": now, "platforms": list(platforms)}).all()
    claimed = []
    for item in items:
        if item.status != OutboxStatus.PENDING:  # its lease ran out while sending: the worker died mid-send
            item.maybe_sent = True
        item.status = OutboxStatus.SENDING
        item.lease_until = now + timedelta(seconds=lease_s)
        address = Address.from_dict(item.address)
        if item.kind == OutboxKind.THREAD_POST and not address.thread and item.conversation_id is not None:
            address = address.in_thread(staff_thread(session, item.conversation_id))
        policy = policies.get(item.kind)
        context = None
        if policy is not None:
            message, context = policy.draw(session, item)
        else:
            message = Outbound.from_dict(item.payload)
        message = replace(message, idempotency_key=item.key)
        claimed.append(Claimed(saved_id(item), item.kind, item.platform, address, message, item.conversation_id,
                               item.attempts, context, item.maybe_sent))
    return claimed


def release(session: Session, items: list[Claimed]) -> None:
    """Give back items claimed but never tried (shutdown): they are due again, for any worker."""
    session.execute(update(ITEMS).where(ITEMS.c.id.in_([item.id for item in items]), ITEMS.c.status.in_(LEASED)),
                    {"status": OutboxStatus.PENDING, "lease_until": None})


def release_all_leases(session: Session) -> int:
    """Every lease is void (SQLite, one process per file: leases of this process's previous life)."""
    return rows_affected(session.execute(update(ITEMS).where(ITEMS.c.status.in_(LEASED)),
                                         {"status": OutboxStatus.PENDING, "lease_until": None, "maybe_sent": True}))


def confirm(session: Session, item_id: int, now: datetime) -> bool:
    """Mark a claimed item confirmed for sending, its policy's check passed at `now`.

    A cancellation committed before this (unsubscribing cancels every unconfirmed item in the
    transaction that records the revocation) leaves nothing to confirm: False.
    """
    confirmed = session.execute(
        update(ITEMS).where(ITEMS.c.id == item_id, ITEMS.c.status == OutboxStatus.SENDING),
        {"status": OutboxStatus.CONFIRMED, "consent_checked_at": now},
    )
    return rows_affected(confirmed) == 1


def mark_sent(session: Session, item_id: int, ref: MessageRef, now: datetime) -> None:
    session.execute(update(ITEMS).where(ITEMS.c.id == item_id),
                    {"status": OutboxStatus.SENT, "sent_at": now, "lease_until": None,
                     "sent_message_id": ref.message_id})


_MARK_SENT = update(ITEMS).where(ITEMS.c.id == bindparam("item_id"))  # built once: the hot path


def record(session: Session, outcomes: list[Outcome], now: datetime, *, max_attempts: int,
           backoff: Callable[[int], float]) -> bool:
    """Write the outcomes not written yet; True when a failure report was queued (a scan is due)."""
    sent = [o for o in outcomes if isinstance(o, Sent) and not o.recorded]
    if sent:  # straight through the driver: SQLAlchemy's executemany was a tenth of the database thread's time
        write_many(session, _MARK_SENT, [{"item_id": o.item.id, "status": OutboxStatus.SENT, "sent_at": now,
                                          "lease_until": None, "sent_message_id": o.ref.message_id} for o in sent])
    reported = False
    for outcome in outcomes:
        if isinstance(outcome, Sent):
            if outcome.item.kind == OutboxKind.OPEN_THREAD and outcome.item.conversation_id is not None:
                conversations = table_of(Conversation)
                session.execute(
                    update(conversations).where(conversations.c.id == outcome.item.conversation_id),
                    {"staff_thread": outcome.ref.address.thread, "staff_message": outcome.ref.message_id},
                )
            continue
        reported |= _record_failure(session, outcome, now, max_attempts, backoff)
    session.flush()
    return reported


def _record_failure(session: Session, outcome: RetryLater | RateLimited | Failed | Cancelled, now: datetime,
                    max_attempts: int,
                    backoff: Callable[[int], float]) -> bool:
    item = session.get(OutboxItem, outcome.item.id)
    assert item is not None  # claimed by this worker: outbox rows are never deleted while leased
    item.lease_until = None
    if isinstance(outcome, Cancelled):
        item.status = OutboxStatus.CANCELLED
        item.last_error = outcome.reason
        return False
    if isinstance(outcome, RateLimited):
        item.status = OutboxStatus.PENDING
        item.next_attempt_at = now + timedelta(seconds=outcome.retry_after)
        item.last_error = "rate limited"
        return False
    item.attempts += 1
    if isinstance(outcome, RetryLater):
        if outcome.maybe_sent:
            item.maybe_sent = True
        if item.attempts < max_attempts:
            item.status = OutboxStatus.PENDING
            item.next_attempt_at = now + timedelta(seconds=backoff(item.attempts))
            item.last_error = outcome.error[:1000]
            return False
        item.last_error = f"gave up after {item.attempts} tries: {outcome.error}"[:1000]
    else:
        item.last_error = outcome.error[:1000]
    item.status = OutboxStatus.FAILED
    log.warning("outbox item %s failed: %s", item.id, item.last_error)
    return _report_failure(session, item, now)


def _report_failure(session: Session, item: OutboxItem, now: datetime) -> bool:
    """Tell the staff thread that a message to the member could not be delivered."""
    if item.kind != OutboxKind.POST or item.conversation_id is None:
        return False  # a failure inside the staff channel cannot be reported there
    conversation = session.get(Conversation, item.conversation_id)
    if conversation is None:
        return False
    enqueue(
        session,
        key=f"failure:{item.id}",
        kind=OutboxKind.THREAD_POST,
        address=Address(conversation.staff_platform, conversation.staff_channel),
        message=Outbound(f"Could not deliver to the member: {item.last_error}"),
        now=now,
        conversation_id=conversation.id,
    )
    return True
