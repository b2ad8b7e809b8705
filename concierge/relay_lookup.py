"""The relay's reads in one statement each: a conversation, with what the relay must know about it.

A relayed message used to ask the database one question at a time: the member's open
conversation, how many messages they wrote into it in the last minute (the flood limit), and,
when queueing, whether anything of the conversation is still unsent (messages go out in order).
Each statement costs SQLAlchemy's per-execution work on the hot path, more than the database's
own; here they are one select with correlated subqueries, built once. The row has the
conversation's columns plus `recent` (the flood-limit count) and `unsent` (whether an item of
the conversation is still unsent), read in the caller's transaction like the statements they
replace. They run through `concierge.driver_select` (compiled once, straight through the driver).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Row, bindparam, exists, func, select
from sqlmodel import Session

from concierge.conversation_lookup import CONVERSATIONS
from concierge.driver_select import first_row
from concierge.outbox.kinds import UNSENT
from concierge.platform import Address
from concierge.records import Expert, Member, Message, OutboxItem, PlatformIdentity
from concierge.states import ConversationStatus, Direction
from concierge.tables import table_of

_MESSAGES, _MEMBERS, _IDENTITIES = table_of(Message), table_of(Member), table_of(PlatformIdentity)
_EXPERTS = table_of(Expert)
_ITEMS = table_of(OutboxItem)

_UNSENT = exists().where(_ITEMS.c.conversation_id == CONVERSATIONS.c.id, _ITEMS.c.status.in_(UNSENT)).label("unsent")
_RECENT = (
    select(func.count()).select_from(_MESSAGES)
    .where(_MESSAGES.c.conversation_id == CONVERSATIONS.c.id,
           _MESSAGES.c.direction.in_((Direction.IN, Direction.DROPPED)),
           _MESSAGES.c.created_at > bindparam("since", type_=_MESSAGES.c.created_at.type))
    .scalar_subquery().label("recent")
)
_OPEN_WITH_COUNTS = (
    select(CONVERSATIONS, _RECENT, _UNSENT)
    .where(CONVERSATIONS.c.member_id == bindparam("member_id"), CONVERSATIONS.c.status.in_(
        (ConversationStatus.OPEN, ConversationStatus.CHOOSING)))
    .order_by(CONVERSATIONS.c.id.desc())
    .limit(1)
)
_IN_THREAD_WITH_UNSENT = select(CONVERSATIONS, _UNSENT).where(
    CONVERSATIONS.c.staff_platform == bindparam("platform"), CONVERSATIONS.c.staff_thread == bindparam("thread")
)


_MEMBER = (
    select(_MEMBERS)
    .join(_IDENTITIES, _IDENTITIES.c.member_id == _MEMBERS.c.id)
    .where(_IDENTITIES.c.platform == bindparam("platform"), _IDENTITIES.c.user_id == bindparam("user"),
           _MEMBERS.c.active)
)
_MEMBER_LOCKED = _MEMBER.with_for_update(of=_MEMBERS)
_EXPERT = (
    select(_EXPERTS)
    .join(_IDENTITIES, _IDENTITIES.c.expert_id == _EXPERTS.c.id)
    .where(_IDENTITIES.c.platform == bindparam("platform"), _IDENTITIES.c.user_id == bindparam("user"),
           _EXPERTS.c.active)
)


def member_locked(session: Session, platform: str, user: str) -> Row | None:
    """The enrolled member behind a platform user (as `people.member_of`), their row locked until the
    transaction ends, in the same statement.

    One member's messages are handled one at a time, so two quick messages open one conversation
    and are counted against the flood limit and the quota one after the other. PostgreSQL: a row
    lock. SQLite: every write goes through one database thread already, so there is nothing to lock.
    """
    locked = session.get_bind().dialect.name == "postgresql"
    return first_row(session, _MEMBER_LOCKED if locked else _MEMBER, {"platform": platform, "user": user})


def open_conversation_with_counts(session: Session, member_id: int, now: datetime) -> Row | None:
    """The member's open conversation (as `open_conversation_of`), with `recent`: the member's
    messages in it since a minute before `now` (as `flood_limit.recent_count`), and `unsent`."""
    return first_row(session, _OPEN_WITH_COUNTS, {"member_id": member_id, "since": now - timedelta(minutes=1)})


def conversation_in_thread_with_unsent(session: Session, address: Address) -> Row | None:
    """The conversation whose staff thread is at `address` (as `conversation_in_thread`), with `unsent`."""
    if not address.thread:
        return None
    return first_row(session, _IN_THREAD_WITH_UNSENT, {"platform": address.platform, "thread": address.thread})


def expert_answering(session: Session, platform: str, user: str) -> Row | None:
    """The active expert behind a platform user (as `people.expert_of`), read through the driver."""
    return first_row(session, _EXPERT, {"platform": platform, "user": user})
