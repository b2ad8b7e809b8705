"""Staff actions on a conversation: claim, close, reopen, rating; each redraws the staff card."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Row
from sqlmodel import Session, col, select

from concierge.cards import queue_card_update
from concierge.conversation_lookup import open_conversation_of
from concierge.errors import Refused
from concierge.membership import audit
from concierge.outbox.kinds import POST, THREAD_POST
from concierge.outbox.queue import enqueue
from concierge.people import Context
from concierge.platform import Address, Button, Card, Outbound
from concierge.records import Conversation, Expert, Message, OutboxItem
from concierge.relay import send_to_member
from concierge.states import ConversationStatus, Direction
from concierge.tables import saved_id


def _notice(session: Session, ctx: Context, conversation: Conversation, text: str, key: str) -> None:
    """Record a staff-visible event and post it into the conversation's thread."""
    session.add(Message(conversation_id=saved_id(conversation), direction=Direction.EVENT, author="concierge",
                        text=text, created_at=ctx.now))
    enqueue(session, key=key, kind=THREAD_POST,
            address=Address(conversation.staff_platform, conversation.staff_channel,
                            thread=conversation.staff_thread or ""),
            message=Outbound(text), now=ctx.now, conversation_id=conversation.id)
    session.flush()  # the card is drawn from the records
    queue_card_update(session, ctx.now, saved_id(conversation))


def claim(session: Session, ctx: Context, conversation: Conversation, expert: Expert | Row | None,
          actor: str, key: str, handing_over: bool = False) -> str:
    """Take a conversation, or (`handing_over`) give it to `expert`."""
    if conversation.status != ConversationStatus.OPEN:
        raise Refused(f"Conversation {conversation.id} is closed; reopen it first.")
    if expert is None:
        raise Refused("That person is not an expert." if handing_over else "Only experts can claim a conversation.")
    if conversation.claimed_by == expert.id:
        return f"{expert.display_name} already has conversation {conversation.id}." if handing_over \
            else f"You already have conversation {conversation.id}."
    conversation.claimed_by = expert.id
    text = f"Handed over to {expert.display_name} by {actor}." if handing_over else f"Claimed by {expert.display_name}."
    _notice(session, ctx, conversation, text, key)
    audit(session, ctx, actor, "conversation.handover" if handing_over else "conversation.claim",
          conversation_id=conversation.id, expert_id=expert.id)
    if handing_over:
        return f"Conversation {conversation.id} is now {expert.display_name}'s."
    return f"You claimed conversation {conversation.id}."


AUTO_CLOSE_TEXT = ("We are closing this question as it has been quiet for a while. "
                   "Write again any time to ask something new.")


def close_idle(session: Session, ctx: Context, idle_hours: float) -> int:
    """Close answered conversations with no activity for `idle_hours`; the member is told."""
    cutoff = ctx.now - timedelta(hours=idle_hours)
    idle = session.exec(select(Conversation).where(
        Conversation.status == ConversationStatus.OPEN, col(Conversation.first_response_at).is_not(None),
        Conversation.last_activity_at < cutoff)).all()
    for conversation in idle:
        close(session, ctx, conversation, "auto-close", key=f"auto-close:{conversation.id}:{ctx.now.isoformat()}",
              closing_message=AUTO_CLOSE_TEXT)
    return len(idle)


def close(session: Session, ctx: Context, conversation: Conversation, actor: str, key: str,
          closing_message: str = "", expert: Expert | Row | None = None) -> str:
    """Close a conversation; an optional closing message goes to the member first."""
    if conversation.status == ConversationStatus.CLOSED:
        raise Refused(f"Conversation {conversation.id} is already closed.")
    if closing_message:
        send_to_member(session, ctx, conversation, closing_message, author=actor,
                       expert_id=expert.id if expert else None, key=f"{key}:closing")
    conversation.status = ConversationStatus.CLOSED
    conversation.closed_at = ctx.now
    conversation.closed_by = actor
    _notice(session, ctx, conversation, f"Closed by {actor}.", key)
    audit(session, ctx, actor, "conversation.close", conversation_id=conversation.id)
    _ask_for_rating(session, ctx, conversation)
    return f"Conversation {conversation.id} closed" + (" and the member was told." if closing_message else ".")


RATING_TEXT = ("How did we do? Rate the answer to your question from 1 (poor) to 5 (great), "
               "or type `/concierge rate {id} <1-5> [comment]`.")


def _ask_for_rating(session: Session, ctx: Context, conversation: Conversation) -> None:
    """Once per conversation, and only if someone answered it."""
    key = f"rating-request:{conversation.id}"
    if conversation.first_response_at is None or session.exec(
            select(OutboxItem.id).where(OutboxItem.key == key, col(OutboxItem.edition_id).is_(None))  # by uq_outbox_key
            ).first() is not None:
        return
    buttons = tuple(Button(str(score), "rate", f"{conversation.id}:{score}") for score in range(1, 6))
    enqueue(session, key=key, kind=POST,
            address=Address(conversation.member_platform, conversation.member_channel, conversation.member_user),
            message=Outbound(RATING_TEXT.format(id=conversation.id), Card(title="Rate this answer", buttons=buttons)),
            now=ctx.now, conversation_id=conversation.id)


def rate(session: Session, ctx: Context, conversation: Conversation, member_id: int, score: int,
         comment: str, actor: str, key: str) -> str:
    if conversation.member_id != member_id:
        raise Refused("You can only rate your own questions. See `/concierge my-questions`.")
    if conversation.status != ConversationStatus.CLOSED:
        raise Refused(f"Conversation {conversation.id} is still open; rate it once it is closed.")
    if not 1 <= score <= 5:
        raise Refused("A rating is a number from 1 to 5.")
    conversation.rating = score
    conversation.rating_comment = comment[:1000]
    _notice(session, ctx, conversation, f"Rated {score}/5" + (f": {comment}" if comment else "."),
            key)
    return "Thank you for your rating!"


def check_comment(conversation: Conversation, member_id: int) -> None:
    """A comment goes with the member's own rating of a closed question."""
    if conversation.member_id != member_id:
        raise Refused("You can only comment on your own questions. See `/concierge my-questions`.")
    if conversation.rating is None:
        raise Refused(f"Rate conversation {conversation.id} first: the buttons under our request, "
                      f"or `/concierge rate {conversation.id} <1-5> [comment]`.")


def comment(session: Session, ctx: Context, conversation: Conversation, member_id: int, text: str,
            key: str) -> str:
    check_comment(conversation, member_id)
    conversation.rating_comment = text[:1000]
    _notice(session, ctx, conversation, f"Comment on the {conversation.rating}/5 rating: {text[:1000]}", key)
    return "Thank you for your comment!"


def reopen(session: Session, ctx: Context, conversation: Conversation, actor: str, key: str) -> str:
    if conversation.status == ConversationStatus.OPEN:
        raise Refused(f"Conversation {conversation.id} is already open.")
    other = open_conversation_of(session, conversation.member_id)
    if other is not None:
        raise Refused(
            f"The member already has conversation {other.id} open; continue there or close it first."
        )
    conversation.status = ConversationStatus.OPEN
    conversation.closed_at = None
    conversation.closed_by = ""
    conversation.last_activity_at = ctx.now
    _notice(session, ctx, conversation, f"Reopened by {actor}.", key)
    audit(session, ctx, actor, "conversation.reopen", conversation_id=conversation.id)
    return f"Conversation {conversation.id} reopened."
