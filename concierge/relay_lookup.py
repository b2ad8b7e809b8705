"""The relay's reads in one statement each: a conversation, with what the relay must know about it.

A relayed message used to ask the database one question at a time: the member's open
conversation, how many messages they wrote into it in the last minute (the flood limit), and,
when queueing, whether anything of the conversation is still unsent (messages go out in order).
Each statement costs SQLAlchemy's per-execution work on the hot path, more than the database's
own; here they are one select with correlated subqueries, built once. The row has the
conversation's columns plus `recent` (the flood-limit count) and `unsent` (whether an item of
the conversation is still unsent), read in the caller's transaction like the statements they
replace.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Row, bindparam, exists, func, select
from sqlmodel import Session

from concierge.conversation_lookup import CONVERSATIONS
from concierge.outbox.kinds import UNSENT
from concierge.people import member_of
from concierge.platform import Address
from concierge.records import Member, Message, OutboxItem, PlatformIdentity
from concierge.states import ConversationStatus, Direction
from concierge.tables import table_of

_MESSAGES, _MEMBERS, _IDENTITIES = table_of(Message), table_of(Member), table_of(PlatformIdentity)
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


_MEMBER_LOCKED = (
    select(_MEMBERS)
    .join(_IDENTITIES, _IDENTITIES.c.member_id == _MEMBERS.c.id)
    .where(_IDENTITIES.c.platform == bindparam("platform"), _IDENTITIES.c.user_id == bindparam("user"),
           _MEMBERS.c.active)
    .with_for_update(of=_MEMBERS)
)


def member_locked(session: Session, platform: str, user: str) -> Row | None:
    """The enrolled member behind a platform user (as `people.member_of`), their row locked until the
    transaction ends, in the same statement.

    One member's messages are handled one at a time, so two quick messages open one conversation
    and are counted against the flood limit and the quota one after the other. PostgreSQL: a row
    lock. SQLite: every write goes through one database thread already, so there is nothing to lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(_MEMBER_LOCKED, {"platform": platform, "user": user}).first()
    return member_of(session, platform, user)


def open_conversation_with_counts(session: Session, member_id: int, now: datetime) -> Row | None:
    """The member's open conversation (as `open_conversation_of`), with `recent`: the member's
    messages in it since a minute before `now` (as `flood_limit.recent_count`), and `unsent`."""
    return session.execute(_OPEN_WITH_COUNTS, {"member_id": member_id, "since": now - timedelta(minutes=1)}).first()


def conversation_in_thread_with_unsent(session: Session, address: Address) -> Row | None:
    """The conversation whose staff thread is at `address` (as `conversation_in_thread`), with `unsent`."""
    if not address.thread:
        return None
    return session.execute(_IN_THREAD_WITH_UNSENT, {"platform": address.platform, "thread": address.thread}).first()
