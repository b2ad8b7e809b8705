"""The staff card: the first message of a conversation's thread, kept up to date with its state.

The card shows who asks (name, and the platform id, small), the tier, the specialty, since when
they wait and by when they should have an answer, and where the conversation stands: waiting,
claimed by, answered, escalated, closed by, rated. Its buttons follow: Claim until someone has
it, Close while open, Reopen once closed.

Every change queues a card update through the outbox (`queue_card_update`), like any send: it
survives restarts and keeps the conversation's order. Updates coalesce: while one is waiting to
go, further changes add nothing, and the card is drawn from the records when the update is sent
(`current_card`), so a burst of changes costs one or two edits, not one each.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Row, select
from sqlmodel import Session

from concierge.outbox.kinds import EDIT_CARD, OPEN_THREAD, OutboxStatus
from concierge.outbox.queue import ITEMS, enqueue
from concierge.platform import Address, Button, Card, MessageRef, Outbound
from concierge.records import Conversation, Expert, Member, Tier
from concierge.states import ConversationStatus

TIME = "%Y-%m-%d %H:%M UTC"


def status_line(conversation: Conversation | Row, claimed_by: str | None) -> str:
    """Where the conversation stands, in a few words."""
    if conversation.status == ConversationStatus.CLOSED:
        closed = conversation.closed_at.strftime(TIME) if conversation.closed_at else "?"
        line = f"Closed by {conversation.closed_by or 'staff'} {closed}"
        return line + (f", rated {conversation.rating}/5" if conversation.rating else "")
    if conversation.status == ConversationStatus.CHOOSING:
        return "The member is picking a topic"
    parts = []
    if conversation.first_response_at is not None:
        parts.append(f"Answered {conversation.first_response_at.strftime(TIME)}")
    else:
        parts.append("Waiting for an answer")
        if conversation.escalation_level >= 2:
            parts.append("escalated to the admins")
        elif conversation.escalation_level == 1:
            parts.append("over the response target")
    if claimed_by:
        parts.append(f"claimed by {claimed_by}")
    return ", ".join(parts)


def staff_card(conversation: Conversation | Row, member_name: str, tier: str, target_minutes: int | None = None,
               *, claimed_by: str | None = None, member_id: str = "") -> Card:
    """The card for the conversation as it stands (names are stored clean, see `people.clean_name`)."""
    fields = [
        ("Member", member_name),
        ("Tier", tier),
        ("Specialty", conversation.specialty),
        ("Waiting since", conversation.opened_at.strftime(TIME)),
    ]
    if target_minutes:
        due = conversation.opened_at + timedelta(minutes=target_minutes)
        fields.append(("Answer by", due.strftime(TIME)))
    fields.append(("Status", status_line(conversation, claimed_by)))
    if member_id:
        fields.append(("Id", member_id))
    if conversation.status == ConversationStatus.CLOSED:
        buttons: tuple[Button, ...] = (Button("Reopen", "reopen", str(conversation.id)),)
    else:
        buttons = (Button("Close", "close", str(conversation.id), "danger"),)
        if conversation.claimed_by is None:
            buttons = (Button("Claim", "claim", str(conversation.id), "primary"), *buttons)
    return Card(title=f"{member_name}, {tier}, {conversation.specialty}", fields=tuple(fields), buttons=buttons)


def member_ref(conversation: Conversation | Row) -> str:
    """The member's platform and id, as shown small on the card (and in exports)."""
    return f"{conversation.member_platform}:{conversation.member_user}"


def card_for(session: Session, conversation: Conversation) -> Card:
    member = session.get(Member, conversation.member_id)
    tier = session.get(Tier, member.tier_id) if member else None
    expert = session.get(Expert, conversation.claimed_by) if conversation.claimed_by else None
    return staff_card(conversation, member.display_name if member else "?", tier.name if tier else "?",
                      tier.response_target_minutes if tier else None,
                      claimed_by=expert.display_name if expert else None, member_id=member_ref(conversation))


def current_card(session: Session, conversation_id: int) -> tuple[MessageRef, Outbound] | None:
    """The card's message and what it should show now; None when the card was never posted."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not conversation.staff_message:
        return None
    text = session.execute(
        select(ITEMS.c.payload).where(ITEMS.c.conversation_id == conversation_id, ITEMS.c.kind == OPEN_THREAD)
        .order_by(ITEMS.c.id.desc()).limit(1)
    ).scalar()
    where = Address(conversation.staff_platform, conversation.staff_channel, thread=conversation.staff_thread or "")
    # The card's text is the question it opened with; no mentions: an update never pings anyone.
    return MessageRef(where, conversation.staff_message), Outbound((text or {}).get("text", ""),
                                                                   card_for(session, conversation))


def queue_card_update(session: Session, now: datetime, conversation_id: int) -> None:
    """Ask for the card to be redrawn, unless an update is already waiting (it will draw this change too)."""
    waiting = session.execute(
        select(ITEMS.c.id).where(ITEMS.c.conversation_id == conversation_id, ITEMS.c.kind == EDIT_CARD,
                                 ITEMS.c.status == OutboxStatus.PENDING).limit(1)
    ).first()
    if waiting is not None:
        return
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.status == ConversationStatus.CHOOSING:
        return  # no card yet
    enqueue(session, key=f"card:{conversation_id}:{uuid.uuid4().hex[:12]}", kind=EDIT_CARD,
            address=Address(conversation.staff_platform, conversation.staff_channel),
            message=Outbound(""), now=now, conversation_id=conversation_id)

