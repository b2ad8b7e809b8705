"""Finding conversations: a member's open one, the one behind a staff thread (read-only rows)."""

from __future__ import annotations

from sqlalchemy import Row, bindparam, select
from sqlmodel import Session

from concierge.outbox.kinds import OPEN_THREAD, UNSENT
from concierge.platform import Address
from concierge.records import Conversation, OutboxItem
from concierge.states import ConversationStatus
from concierge.tables import table_of

CONVERSATIONS = table_of(Conversation)
_OPEN_CONVERSATION = (
    select(CONVERSATIONS)
    .where(CONVERSATIONS.c.member_id == bindparam("member_id"), CONVERSATIONS.c.status.in_(
        (ConversationStatus.OPEN, ConversationStatus.CHOOSING)))
    .order_by(CONVERSATIONS.c.id.desc())
    .limit(1)
)
_CONVERSATION_IN_THREAD = select(CONVERSATIONS).where(
    CONVERSATIONS.c.staff_platform == bindparam("platform"), CONVERSATIONS.c.staff_thread == bindparam("thread")
)


def open_conversation_of(session: Session, member_id: int) -> Row | None:
    """The member's open conversation, as a read-only row (members have at most one)."""
    return session.execute(_OPEN_CONVERSATION, {"member_id": member_id}).first()


def conversation_in_thread(session: Session, address: Address) -> Row | None:
    """The conversation whose staff thread is at `address`, as a read-only row."""
    if not address.thread:
        return None
    return session.execute(_CONVERSATION_IN_THREAD, {"platform": address.platform, "thread": address.thread}).first()


_UNCONFIRMED_CARD = (
    select(table_of(OutboxItem).c.id)
    .where(table_of(OutboxItem).c.kind == OPEN_THREAD, table_of(OutboxItem).c.platform == bindparam("platform"),
           table_of(OutboxItem).c.status.in_(UNSENT))
    .limit(1)
)


def cards_unconfirmed(session: Session, platform: str) -> bool:
    """Whether a card (a thread to open) on `platform` is not sent yet, or its outcome is still unknown."""
    return session.execute(_UNCONFIRMED_CARD, {"platform": platform}).first() is not None
