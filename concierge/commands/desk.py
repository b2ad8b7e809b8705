"""Commands of the desk: experts claim, close, reopen and see the queue; members pick a topic, rate, comment."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from concierge import desk
from concierge.commands.arguments import CONVERSATION, conversation_of, user_of
from concierge.commands.framework import Command, Invocation, Param
from concierge.durations import MAX_ID, whole_number
from concierge.errors import Refused
from concierge.people import Role, expert_of, member_of
from concierge.platform import Button, Card
from concierge.records import Conversation
from concierge.replies import Form, Reply
from concierge.states import ConversationStatus
from concierge.topics import pick_topic
from concierge.waiting import open_queue, render_queue


def _claim(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    conversation = conversation_of(session, inv, args["conversation"])
    if args["to"]:
        platform, user = user_of(inv, args["to"])
        return desk.claim(session, inv.ctx, conversation, expert_of(session, platform, user), inv.actor,
                          key=f"cmd:{inv.event_id}", handing_over=True)
    expert = expert_of(session, inv.address.platform, inv.address.user)
    return desk.claim(session, inv.ctx, conversation, expert, inv.actor, key=f"cmd:{inv.event_id}")


def _close(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    conversation = conversation_of(session, inv, args["conversation"])
    expert = expert_of(session, inv.address.platform, inv.address.user)
    return desk.close(session, inv.ctx, conversation, inv.actor, key=f"cmd:{inv.event_id}",
                      closing_message=(args["message"] or "").strip(), expert=expert)


def _reopen(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    conversation = conversation_of(session, inv, args["conversation"])
    return desk.reopen(session, inv.ctx, conversation, inv.actor, key=f"cmd:{inv.event_id}")


def _queue(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    return render_queue(open_queue(session, args["specialty"]), inv.ctx.now)


def _my_questions(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    member = member_of(session, inv.address.platform, inv.address.user)
    if member is None:
        raise Refused("Only members have questions here.")
    conversations = session.exec(select(Conversation).where(Conversation.member_id == member.id)
                                 .order_by(col(Conversation.id).desc()).limit(20)).all()
    if not conversations:
        return "You have not asked anything yet. Write to me here and an expert will answer."
    lines = []
    for conversation in conversations:
        is_open = conversation.status == ConversationStatus.OPEN
        state = "waiting for an answer" if is_open and conversation.first_response_at is None \
            else "answered, open" if is_open else "closed"
        lines.append(f"#{conversation.id} {conversation.specialty}, asked {conversation.opened_at:%Y-%m-%d}: {state}")
    return "\n".join(lines)


def _topic(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    member = member_of(session, inv.address.platform, inv.address.user)
    number, _, topic = args["choice"].partition(":")  # buttons send "12:nutrition"
    number = whole_number(number, 1, MAX_ID)
    if member is None or number is None or not topic:
        raise Refused("Pick a topic with the buttons under your question.")
    return pick_topic(session, inv.ctx, member, number, topic, key=f"cmd:{inv.event_id}")


def _rate(session: Session, inv: Invocation, args: dict[str, Any]) -> str | Reply:
    member = member_of(session, inv.address.platform, inv.address.user)
    if member is None:
        raise Refused("Only members rate their questions.")
    number, _, score = args["conversation"].partition(":")  # buttons send "12:5"
    score = score or args["score"] or ""
    number, score = whole_number(number, 1, MAX_ID), whole_number(score, 0, MAX_ID)  # the range is the desk's
    if number is None or score is None:
        raise Refused("Rate like this: `/concierge rate <conversation> <1-5> [comment]`.")
    conversation = conversation_of(session, inv, number)
    comment = (args["comment"] or "").strip()
    thanks = desk.rate(session, inv.ctx, conversation, member.id, score, comment,
                       inv.actor, key=f"cmd:{inv.event_id}")
    if comment:
        return thanks
    # The comment is one more button away (a form where the platform has one).
    offer = Card(title="", buttons=(Button("Add a comment", "comment", str(conversation.id)),))
    return Reply(thanks, card=offer)


def _comment(session: Session, inv: Invocation, args: dict[str, Any]) -> str | Reply:
    member = member_of(session, inv.address.platform, inv.address.user)
    if member is None:
        raise Refused("Only members rate their questions.")
    conversation = conversation_of(session, inv, args["conversation"])
    text = (args["text"] or "").strip()
    if text:
        return desk.comment(session, inv.ctx, conversation, member.id, text, key=f"cmd:{inv.event_id}")
    desk.check_comment(conversation, member.id)
    form = Form(title="Your comment", label="What should we know about the answer?", action="comment",
                value=str(conversation.id), placeholder="Optional: what helped, what was missing")
    return Reply(f"Write your comment like this: `/concierge comment {conversation.id} <your comment>`.", form=form)


DESK_COMMANDS = [
    Command(("claim",), (CONVERSATION, Param("to", "user", option=True)), Role.EXPERT,
            "take a conversation (--to <user>: hand it to another expert)", _claim),
    Command(("close",), (CONVERSATION, Param("message", "text", option=True)), Role.EXPERT,
            "close a conversation (--message sends the member a closing word first)", _close),
    Command(("reopen",), (CONVERSATION,), Role.EXPERT, "reopen a closed conversation", _reopen),
    Command(("queue",), (Param("specialty", option=True),), Role.EXPERT,
            "who is waiting and for how long, longest first (--specialty nutrition)", _queue),
    Command(("my-questions",), (), Role.MEMBER, "your questions and where they stand", _my_questions),
    Command(("topic",), (Param("choice"),), Role.MEMBER, "pick the topic of your new question", _topic),
    Command(("rate",), (Param("conversation"), Param("score", optional=True), Param("comment", "text", optional=True)),
            Role.MEMBER, "rate the answer to a closed question, 1 to 5", _rate),
    Command(("comment",), (Param("conversation", "int"), Param("text", "text", optional=True)), Role.MEMBER,
            "add a comment to your rating of a closed question", _comment),
]
