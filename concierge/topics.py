"""A member picks the topic of a new question: the conversation leaves `choosing` and opens its staff thread."""

from __future__ import annotations

from sqlalchemy import Row
from sqlmodel import Session, col, select

from concierge.errors import Refused
from concierge.people import Context
from concierge.records import Conversation, Member, Message
from concierge.relay import open_staff_thread
from concierge.relay_files import files_sent_in
from concierge.specialty_routing import topics_for
from concierge.states import ConversationStatus, Direction
from concierge.tables import saved_id


def pick_topic(session: Session, ctx: Context, member: Member | Row, number: int, topic: str, key: str) -> str:
    """Give the member's conversation `number` its topic and pass it on to staff; the answer to show."""
    conversation = session.get(Conversation, number)
    if conversation is None or conversation.member_id != member.id:
        raise Refused("That is not one of your questions.")
    if conversation.status != ConversationStatus.CHOOSING:
        return "Your question is already with our experts."
    if topic not in topics_for(session, member):
        raise Refused(f"{topic} is not a topic you can pick. Use the buttons under your question.")
    conversation.specialty = topic
    conversation.status = ConversationStatus.OPEN
    texts = session.exec(select(Message.text).where(Message.conversation_id == conversation.id,
                                                    Message.direction == Direction.IN).order_by(col(Message.id))).all()
    open_staff_thread(session, ctx, conversation, member, "\n".join(texts), key=key,
                      files=files_sent_in(session, saved_id(conversation), Direction.IN))
    return f"Thank you: your question is with our {topic} experts."
