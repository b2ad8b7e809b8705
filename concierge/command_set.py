"""The commands of the concierge, bound to the services; adapters render this one list natively."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from concierge import desk, duty, membership, snippets, tiers
from concierge.commands import Command, CommandRegistry, Invocation, Param
from concierge.digests.commands import DIGEST_COMMANDS
from concierge.durations import MAX_ID, parse_duration, whole_number
from concierge.errors import Refused
from concierge.inbound import FileAttachment, Form, Reply
from concierge.people import Role, clean_name, expert_of, member_of
from concierge.platform import Button, Card
from concierge.records import Conversation, Expert, Message, Tier
from concierge.relay import conversation_in_thread, open_staff_thread, send_to_member, topics_for
from concierge.stats import DeskStats, chart_png, collect, render_text
from concierge.waiting import open_queue, render_queue

log = logging.getLogger(__name__)




def _user(invocation: Invocation, token: str) -> tuple[str, str]:
    """(platform, user id) for a user argument; `platform:id` names a user on another platform."""
    head, sep, tail = token.partition(":")
    if sep and head.isalpha() and tail:
        return head.lower(), tail
    return invocation.address.platform, token


def _conversation(session: Session, invocation: Invocation, number: int | None) -> Conversation:
    if number is not None:
        conversation = session.get(Conversation, number)
        if conversation is None:
            raise Refused(f"There is no conversation {number}.")
        return conversation
    found = conversation_in_thread(session, invocation.address)
    if found is None:
        raise Refused("Run this inside a conversation's thread, or give the conversation number.")
    return session.get(Conversation, found.id)


def _help(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    return REGISTRY.help_text(inv.role, args["command"])


def _member_add(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    member = membership.enrol_member(session, inv.ctx, platform=platform, user=user, tier=args["tier"],
                                     name=clean_name(args["name"] or inv.names.get(user), user),
                                     name_source="admin" if args["name"] else "platform", actor=inv.actor)
    return f"{member.display_name} is now a {args['tier']} member."


def _member_link(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    other_platform, sep, other_user = args["identity"].partition(":")
    if not sep or not re.fullmatch(r"[a-z]{1,32}", other_platform.lower()) \
            or not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", other_user):
        raise Refused("Name the other identity as platform:id, e.g. `discord:80351110224678912` or `slack:U0123ABC`.")
    member = membership.link_identity(session, inv.ctx, platform=platform, user=user,
                                      other_platform=other_platform.lower(), other_user=other_user, actor=inv.actor)
    return (f"{member.display_name} can now also write from {other_platform.lower()}:{other_user}: one history, "
            "one quota, the same subscriptions; answers go where they last wrote.")


def _member_remove(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    member = membership.remove_member(session, inv.ctx, platform=platform, user=user, actor=inv.actor)
    return f"{member.display_name} is no longer a member; their conversations are kept."


def _member_tier(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    member = membership.set_member_tier(session, inv.ctx, platform=platform, user=user, tier=args["tier"],
                                        actor=inv.actor)
    return f"{member.display_name} is now on tier {args['tier']}."


def _member_block(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    until = None
    if args["days"] is not None:
        days = whole_number(args["days"], 1, 3650)
        if days is None:
            raise Refused("--days is a whole number of days from 1 to 3650. Nothing was changed.")
        until = inv.ctx.now + timedelta(days=days)
    member = membership.set_member_blocked(session, inv.ctx, platform=platform, user=user, blocked=True,
                                           reason=args["reason"] or "", actor=inv.actor, until=until)
    ends = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    return f"{member.display_name} is blocked{ends}; their messages are no longer relayed."


def _member_unblock(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    member = membership.set_member_blocked(session, inv.ctx, platform=platform, user=user, blocked=False,
                                           reason="", actor=inv.actor)
    return f"{member.display_name} is unblocked."


def _member_list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    rows = membership.list_members(session)
    if not rows:
        return "No members yet. Add one with `/concierge member add <user> <tier>`."
    return "\n".join(
        f"{member.display_name} ({tier}){' [blocked]' if member.blocked else ''}" for member, tier in rows
    )


def _expert_add(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    expert = membership.add_expert(session, inv.ctx, platform=platform, user=user, specialties=args["specialties"],
                                   name=clean_name(args["name"] or inv.names.get(user), user), actor=inv.actor)
    return f"{expert.display_name} answers {', '.join(args['specialties'])} questions."


def _expert_remove(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    expert = membership.remove_expert(session, inv.ctx, platform=platform, user=user, actor=inv.actor)
    return f"{expert.display_name} is no longer an expert."


def _expert_hours(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = _user(inv, args["user"])
    expert = expert_of(session, platform, user)
    if expert is None:
        raise Refused(f"{args['user']} is not an expert.")
    expert = session.get(Expert, expert.id)
    duty.set_hours(expert, args["hours"], args["tz"], args["days"])
    membership.audit(session, inv.ctx, inv.actor, "expert.hours", expert_id=expert.id, hours=args["hours"])
    return (f"{expert.display_name} is on duty {expert.work_start}:00-{expert.work_end}:00 {expert.time_zone}, "
            f"{expert.work_days.replace(',', ', ')}.")


def _expert_list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    experts = membership.list_experts(session)
    if not experts:
        return "No experts yet. Add one with `/concierge expert add <user> <specialties>`."
    return "\n".join(f"{expert.display_name}: {expert.specialties.replace(',', ', ')}" for expert in experts)


def _claim(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    conversation = _conversation(session, inv, args["conversation"])
    if args["to"]:
        platform, user = _user(inv, args["to"])
        return desk.claim(session, inv.ctx, conversation, expert_of(session, platform, user), inv.actor,
                          key=f"cmd:{inv.event_id}", handing_over=True)
    expert = expert_of(session, inv.address.platform, inv.address.user)
    return desk.claim(session, inv.ctx, conversation, expert, inv.actor, key=f"cmd:{inv.event_id}")


def _close(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    conversation = _conversation(session, inv, args["conversation"])
    expert = expert_of(session, inv.address.platform, inv.address.user)
    return desk.close(session, inv.ctx, conversation, inv.actor, key=f"cmd:{inv.event_id}",
                      closing_message=(args["message"] or "").strip(), expert=expert)


def _tier_set(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    if args["quota"] is None and args["target"] is None and args["specialties"] is None \
            and session.exec(select(Tier).where(Tier.name == args["tier"].lower())).first() is not None:
        raise Refused("Say what to change: --quota 10/month, --target 4h, --specialties training,nutrition.")
    tier = tiers.set_tier(session, inv.ctx, name=args["tier"], quota=args["quota"], target=args["target"],
                          specialties=args["specialties"], actor=inv.actor)
    return f"Tier {tiers.describe(tier)}."


def _tier_list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    found = tiers.list_tiers(session)
    if not found:
        return "No tiers yet. Define one with `/concierge tier set <tier> --quota 10/month --target 4h`."
    return "\n".join(tiers.describe(tier) for tier in found)


def _topic(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    member = member_of(session, inv.address.platform, inv.address.user)
    number, _, topic = args["choice"].partition(":")  # buttons send "12:nutrition"
    number = whole_number(number, 1, MAX_ID)
    if member is None or number is None or not topic:
        raise Refused("Pick a topic with the buttons under your question.")
    conversation = session.get(Conversation, number)
    if conversation is None or conversation.member_id != member.id:
        raise Refused("That is not one of your questions.")
    if conversation.status != "choosing":
        return "Your question is already with our experts."
    if topic not in topics_for(session, member):
        raise Refused(f"{topic} is not a topic you can pick. Use the buttons under your question.")
    conversation.specialty = topic
    conversation.status = "open"
    texts = session.exec(select(Message.text).where(Message.conversation_id == conversation.id,
                                                    Message.direction == "in").order_by(Message.id)).all()
    open_staff_thread(session, inv.ctx, conversation, member, "\n".join(texts), key=f"cmd:{inv.event_id}")
    return f"Thank you: your question is with our {topic} experts."


def _rate(session: Session, inv: Invocation, args: dict[str, Any]) -> str | Reply:
    member = member_of(session, inv.address.platform, inv.address.user)
    if member is None:
        raise Refused("Only members rate their questions.")
    number, _, score = args["conversation"].partition(":")  # buttons send "12:5"
    score = score or args["score"] or ""
    number, score = whole_number(number, 1, MAX_ID), whole_number(score, 0, MAX_ID)  # the range is the desk's
    if number is None or score is None:
        raise Refused("Rate like this: `/concierge rate <conversation> <1-5> [comment]`.")
    conversation = _conversation(session, inv, number)
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
    conversation = _conversation(session, inv, args["conversation"])
    text = (args["text"] or "").strip()
    if text:
        return desk.comment(session, inv.ctx, conversation, member.id, text, key=f"cmd:{inv.event_id}")
    desk.check_comment(conversation, member.id)
    form = Form(title="Your comment", label="What should we know about the answer?", action="comment",
                value=str(conversation.id), placeholder="Optional: what helped, what was missing")
    return Reply(f"Write your comment like this: `/concierge comment {conversation.id} <your comment>`.", form=form)


def _stats(session: Session, inv: Invocation, args: dict[str, Any]) -> str | Reply:
    try:
        since = inv.ctx.now - parse_duration(args["since"] or "7d")
    except ValueError:
        raise Refused("--since looks like 7d, 12h or 30m.") from None
    figures = collect(session, since)
    text = render_text(figures)
    if not args["chart"]:
        return text
    # Drawn once the transaction is over, off the database thread (matplotlib is slow to start).
    return Reply(text, finish=lambda: _with_chart(text, figures))


def _with_chart(text: str, figures: DeskStats) -> Reply:
    try:
        data = chart_png(figures)
    except Exception:
        log.exception("could not draw the stats chart")
        return Reply(f"{text}\n\nSorry, the chart could not be drawn this time.")
    title = f"Desk statistics since {figures.since:%Y-%m-%d %H:%M} UTC"
    return Reply(text, attachment=FileAttachment("desk-stats.png", data, "image/png", title))


def _queue(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    return render_queue(open_queue(session, args["specialty"]), inv.ctx.now)


def _my_questions(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    member = member_of(session, inv.address.platform, inv.address.user)
    if member is None:
        raise Refused("Only members have questions here.")
    conversations = session.exec(select(Conversation).where(Conversation.member_id == member.id)
                                 .order_by(Conversation.id.desc()).limit(20)).all()
    if not conversations:
        return "You have not asked anything yet. Write to me here and an expert will answer."
    lines = []
    for conversation in conversations:
        state = "waiting for an answer" if conversation.status == "open" and conversation.first_response_at is None \
            else "answered, open" if conversation.status == "open" else "closed"
        lines.append(f"#{conversation.id} {conversation.specialty}, asked {conversation.opened_at:%Y-%m-%d}: {state}")
    return "\n".join(lines)


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
    conversation = _conversation(session, inv, args["conversation"])
    if conversation.status != "open":
        raise Refused(f"Conversation {conversation.id} is closed; reopen it first. Nothing was sent.")
    snippet = snippets.named(session, args["name"])
    expert = expert_of(session, inv.address.platform, inv.address.user)
    send_to_member(session, inv.ctx, conversation, snippet.text, author=inv.actor,
                   expert_id=expert.id if expert else None, key=f"cmd:{inv.event_id}")
    return f"Sent snippet `{snippet.name}` to the member of conversation {conversation.id}."


def _reopen(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    conversation = _conversation(session, inv, args["conversation"])
    return desk.reopen(session, inv.ctx, conversation, inv.actor, key=f"cmd:{inv.event_id}")


USER = Param("user", "user", help="the person (a mention, or platform:id)")
CONVERSATION = Param("conversation", "int", optional=True, help="conversation number; default: this thread")

DESK_COMMANDS = [
    Command(("help",), (Param("command", "text", optional=True),), Role.GUEST,
            "show the commands you can use", _help),
    Command(("member", "add"), (USER, Param("tier"), Param("name", "text", optional=True)), Role.ADMIN,
            "enrol a member in a tier", _member_add),
    Command(("member", "remove"), (USER,), Role.ADMIN, "end a membership (transcripts are kept)", _member_remove),
    Command(("member", "link"), (USER, Param("identity", help="the same person elsewhere, as platform:id")),
            Role.ADMIN, "link another platform's identity to a member (one history, one quota)", _member_link),
    Command(("member", "tier"), (USER, Param("tier")), Role.ADMIN, "move a member to another tier", _member_tier),
    Command(("member", "block"), (USER, Param("reason", "text", optional=True), Param("days", option=True)),
            Role.ADMIN, "stop relaying a member's messages (--days N: for N days)", _member_block),
    Command(("member", "unblock"), (USER,), Role.ADMIN, "relay a blocked member's messages again", _member_unblock),
    Command(("member", "list"), (), Role.ADMIN, "list the members and their tiers", _member_list),
    Command(("tier", "set"), (Param("tier"), Param("quota", option=True), Param("target", option=True),
                              Param("specialties", option=True)), Role.ADMIN,
            "define a tier: --quota 10/month, --target 4h, --specialties training,nutrition", _tier_set),
    Command(("tier", "list"), (), Role.ADMIN, "the tiers and what they include", _tier_list),
    Command(("expert", "add"), (USER, Param("specialties", "list"), Param("name", "text", optional=True)),
            Role.ADMIN, "make someone an expert for comma-separated specialties", _expert_add),
    Command(("expert", "remove"), (USER,), Role.ADMIN, "remove an expert", _expert_remove),
    Command(("expert", "hours"), (USER, Param("hours"), Param("tz", option=True), Param("days", option=True)),
            Role.ADMIN, "set an expert's working hours, e.g. 9-17 --tz Europe/Paris --days mon-fri", _expert_hours),
    Command(("expert", "list"), (), Role.ADMIN, "list the experts and their specialties", _expert_list),
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
    Command(("stats",), (Param("since", option=True),
                         Param("chart", "flag", option=True, help="also send the figures as a picture (PNG)")),
            Role.ADMIN, "conversations, first-response times, targets, ratings (--since 7d, --chart)", _stats),
    Command(("snippet", "add"), (Param("name"), Param("text", "text")), Role.EXPERT,
            "save a ready answer under a short name", _snippet_add),
    Command(("snippet", "list"), (), Role.EXPERT, "the saved answers", _snippet_list),
    Command(("snippet", "remove"), (Param("name"),), Role.EXPERT, "delete a saved answer", _snippet_remove),
    Command(("snippet", "use"), (Param("name"), CONVERSATION), Role.EXPERT,
            "send a saved answer to the member (in the conversation's thread)", _snippet_use),
]

REGISTRY = CommandRegistry(DESK_COMMANDS + DIGEST_COMMANDS)
