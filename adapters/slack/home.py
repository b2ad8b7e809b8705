"""The App Home tab: a member's open questions and digests; for staff, how many conversations are open."""

from __future__ import annotations

from sqlmodel import Session, func, select

from adapters.slack.mrkdwn import escape
from concierge.digests.subscriptions import cadence_of, subscriptions_of
from concierge.people import expert_of, is_admin, member_of
from concierge.records import Conversation, Message
from concierge.settings import Settings

QUESTION_PREVIEW = 200
MAX_LISTED = 20


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUESTION_PREVIEW else text[: QUESTION_PREVIEW - 1] + "\u2026"


def home_sections(session: Session, settings: Settings, platform: str, user: str) -> list[str]:
    """The paragraphs (escaped mrkdwn) of `user`'s Home tab, read from the records."""
    sections: list[str] = []
    if is_admin(settings, platform, user) or expert_of(session, platform, user) is not None:
        open_count = session.exec(select(func.count()).select_from(Conversation).where(Conversation.status == "open")).one()
        sections.append(
            f"*Staff*: {open_count} open conversation{'s' if open_count != 1 else ''}. They are threads in the staff "
            "channel; type `/concierge help` for the commands you can use."
        )
    member = member_of(session, platform, user)
    if member is None:
        if not sections:
            sections.append(escape(settings.join_message()))
        return sections
    if member.blocked:
        sections.append(escape(settings.blocked_text))
        return sections
    sections.extend(_questions(session, member.id))
    sections.extend(_digests(session, member.id))
    return sections


def _questions(session: Session, member_id: int) -> list[str]:
    conversations = session.exec(
        select(Conversation)
        .where(Conversation.member_id == member_id, Conversation.status == "open")
        .order_by(Conversation.opened_at.desc())
        .limit(MAX_LISTED)
    ).all()
    if not conversations:
        return ["You have no open questions. Send me a direct message (the *Messages* tab) to ask one."]
    sections = [f"*Your open questions* ({len(conversations)})"]
    for conversation in conversations:
        first = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.direction == "in")
            .order_by(Message.id)
            .limit(1)
        ).first()
        state = "answered" if conversation.first_response_at else "waiting for an expert"
        question = escape(_preview(first.text)) if first else "(no text)"
        sections.append(
            f"*#{conversation.id}* {escape(conversation.specialty)}, asked "
            f"{conversation.opened_at:%Y-%m-%d %H:%M} UTC, {state}\n>{question}"
        )
    return sections


def _digests(session: Session, member_id: int) -> list[str]:
    subscribed = subscriptions_of(session, member_id)
    if not subscribed:
        return []
    lines = [
        f"• `{escape(digest.slug)}` {escape(digest.title)}: {escape(cadence_of(subscription).describe())}"
        for subscription, digest in subscribed[:MAX_LISTED]
    ]
    return [f"*Your digests* ({len(subscribed)})\n" + "\n".join(lines)
            + "\nType `/concierge help` to change or stop them."]
