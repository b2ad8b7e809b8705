"""Arguments several command groups share: a user (on this or another platform) and a conversation."""

from __future__ import annotations

from sqlmodel import Session

from concierge.commands.framework import Invocation, Param
from concierge.conversation_lookup import conversation_in_thread
from concierge.errors import Refused
from concierge.records import Conversation

USER = Param("user", "user", help="the person (a mention, or platform:id)")
CONVERSATION = Param("conversation", "int", optional=True, help="conversation number; default: this thread")


def user_of(invocation: Invocation, token: str) -> tuple[str, str]:
    """(platform, user id) for a user argument; `platform:id` names a user on another platform."""
    head, sep, tail = token.partition(":")
    if sep and head.isalpha() and tail:
        return head.lower(), tail
    return invocation.address.platform, token


def conversation_of(session: Session, invocation: Invocation, number: int | None) -> Conversation:
    """Conversation `number`, or (without one) the conversation whose staff thread the command ran in."""
    if number is not None:
        conversation = session.get(Conversation, number)
        if conversation is None:
            raise Refused(f"There is no conversation {number}.")
        return conversation
    found = conversation_in_thread(session, invocation.address)
    conversation = session.get(Conversation, found.id) if found is not None else None
    if conversation is None:
        raise Refused("Run this inside a conversation's thread, or give the conversation number.")
    return conversation
