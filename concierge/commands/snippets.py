"""Commands about snippets, the desk's ready answers: add, list, remove, send one to a member."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from concierge import snippets
from concierge.commands.arguments import CONVERSATION, conversation_of
from concierge.commands.framework import Command, Invocation, Param
from concierge.errors import Refused
from concierge.people import Role, expert_of
from concierge.relay import send_to_member
from concierge.states import ConversationStatus


def _snippet_add(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    snippet = snippets.add(session, inv.ctx, name=args["name"], text=args["text"], actor=inv.actor)
    return f"Snippet `{snippet.name}` saved. Send it in a thread with `/concierge snippet use {snippet.name}`."


def _snippet_list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    found = snippets.all_snippets(session)
    if not found:
        return "No snippets yet. Add one with `/concierge snippet add <name> <text>`."
    return "\n".join(f"`{snippet.name}`: {snippet.text[:80]}" for snippet in found)


def _snippet_remove(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    snippets.remove(session, inv.ctx, name=args["name"], actor=inv.actor)
    return f"Snippet `{args['name'].lower()}` removed."


def _snippet_use(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    conversation = conversation_of(session, inv, args["conversation"])
    if conversation.status != ConversationStatus.OPEN:
        raise Refused(f"Conversation {conversation.id} is closed; reopen it first. Nothing was sent.")
    snippet = snippets.named(session, args["name"])
    expert = expert_of(session, inv.address.platform, inv.address.user)
    send_to_member(session, inv.ctx, conversation, snippet.text, author=inv.actor,
                   expert_id=expert.id if expert else None, key=f"cmd:{inv.event_id}")
    return f"Sent snippet `{snippet.name}` to the member of conversation {conversation.id}."


SNIPPET_COMMANDS = [
    Command(("snippet", "add"), (Param("name"), Param("text", "text")), Role.EXPERT,
            "save a ready answer under a short name", _snippet_add),
    Command(("snippet", "list"), (), Role.EXPERT, "the saved answers", _snippet_list),
    Command(("snippet", "remove"), (Param("name"),), Role.EXPERT, "delete a saved answer", _snippet_remove),
    Command(("snippet", "use"), (Param("name"), CONVERSATION), Role.EXPERT,
            "send a saved answer to the member (in the conversation's thread)", _snippet_use),
]
