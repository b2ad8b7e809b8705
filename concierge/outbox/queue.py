"""Queueing: the one module that writes outbox rows.

Every message the bot sends is first a row written in the transaction of the change that caused
it: one at a time with `enqueue` (which, under a hand-off, also claims it for this process), or a
whole fan-out at once with `enqueue_fan_out` (the digest planner's inner loop).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlmodel import Session

from concierge.driver_sql import bind_time, executemany
from concierge.driver_write import write
from concierge.outbox.kinds import UNSENT, OutboxKind, OutboxStatus
from concierge.platform import Address, Outbound
from concierge.records import Conversation, OutboxItem
from concierge.tables import table_of

ITEMS = table_of(OutboxItem)
_INSERT_ITEM = insert(ITEMS).returning(ITEMS.c.id)  # built once: building it per call cost as much as running it


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
    # What the kind's delivery policy drew from the row when it was claimed, for its check
    # before sending (digests: whose consent, for which digest).
    context: Any = None
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
    kind: OutboxKind,
    address: Address,
    message: Outbound,
    now: datetime,
    conversation_id: int | None = None,
    unsent: bool | None = None,
) -> int:
    """Add a message to the outbox inside the caller's transaction; returns its id.

    Under a hand-off (see `begin_hand_off`) the item is claimed at once unless an earlier item
    of its conversation is still unsent: messages of a conversation go out in order. `unsent`:
    whether one is, when the caller read it already in this transaction (`concierge.relay_lookup`).
    """
    hand_off: HandOff | None = session.info.get(HAND_OFF)
    claim = hand_off is not None and (hand_off.platforms is None or address.platform in hand_off.platforms) and (
        conversation_id is None
        or (
            conversation_id not in hand_off.taken
            and conversation_id not in hand_off.waiting
            and not (unsent if unsent is not None else
                     session.execute(_UNSENT_IN_CONVERSATION, {"conversation_id": conversation_id}).first() is not None)
        )
    )
    item_id = write(
        session,
        _INSERT_ITEM,
        {
            "key": key,
            "kind": kind,
            "platform": address.platform,
            "address": address.to_dict(),
            "payload": message.to_dict(),
            "conversation_id": conversation_id,
            "status": OutboxStatus.SENDING if claim else OutboxStatus.PENDING,
            "lease_until": hand_off.lease_until if claim and hand_off is not None else None,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
        },
    )
    if hand_off is not None:
        if claim:
            if kind == OutboxKind.THREAD_POST and not address.thread and conversation_id is not None:
                address = address.in_thread(staff_thread(session, conversation_id))
            hand_off.claimed.append(Claimed(item_id, kind, address.platform, address,
                                            replace(message, idempotency_key=key), conversation_id))
            if conversation_id is not None:
                hand_off.taken.add(conversation_id)
        elif conversation_id is not None:
            hand_off.waiting.add(conversation_id)
    return item_id


# One item of a fan-out: (key, platform, user id, member id, digest id, edition id).
FanOutItem = tuple[str, str, str, int, int, int]
_FAN_OUT_COLUMNS = ("key", "kind", "platform", "address", "payload", "status", "attempts", "next_attempt_at",
                    "last_error", "created_at", "member_id", "digest_id", "edition_id")


def enqueue_fan_out(session: Session, kind: OutboxKind, items: list[FanOutItem], now: datetime) -> None:
    """Queue many deliveries to members' DMs (drawn at send time by the kind's policy) in one executemany.

    This is the digest planner's inner loop (a million rows for a million subscribers):
    SQLAlchemy's per-row parameter processing (JSON and datetime binds) cost more than SQLite's own
    work, so values are prepared once here. A unique key per (edition, member) makes a repeated
    plan a no-op (`ON CONFLICT DO NOTHING` on the (member, edition) index). Sorts `items`.
    """
    dialect = session.get_bind().dialect.name
    mark = "%s" if dialect == "postgresql" else "?"
    when = bind_time(now, dialect)
    sql = (f"INSERT INTO {ITEMS.name} ({', '.join(_FAN_OUT_COLUMNS)}) "
           f"VALUES ({', '.join([mark] * len(_FAN_OUT_COLUMNS))}) "
           "ON CONFLICT (member_id, edition_id) WHERE edition_id IS NOT NULL DO NOTHING")
    items.sort()  # (edition, member) order: inserts into the delivery index land in order
    platforms = {platform: json.dumps(platform) for platform in {item[1] for item in items}}
    dumps = json.dumps
    kind_value, pending = str(kind.value), str(OutboxStatus.PENDING.value)
    rows = [
        (key, kind_value, platform, f'{{"platform": {platforms[platform]}, "user": {dumps(user)}}}', "{}",
         pending, 0, when, "", when, member_id, digest_id, edition_id)
        for key, platform, user, member_id, digest_id, edition_id in items
    ]
    executemany(session, sql, rows)


_CONVERSATIONS = table_of(Conversation)
_THREAD_OF = select(_CONVERSATIONS.c.staff_thread).where(_CONVERSATIONS.c.id == bindparam("conversation_id"))
_UNSENT_IN_CONVERSATION = (
    select(ITEMS.c.id)
    .where(ITEMS.c.conversation_id == bindparam("conversation_id"), ITEMS.c.status.in_(UNSENT))
    .limit(1)
)


def staff_thread(session: Session, conversation_id: int) -> str:
    return session.execute(_THREAD_OF, {"conversation_id": conversation_id}).scalar() or ""
