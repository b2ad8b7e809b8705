"""The App Home tab: a member's open questions and digests; for staff, who is waiting and for how long.

A member's digests each carry an *Unsubscribe* button, and the digests of the catalogue they
do not get yet a *Subscribe* button; both reach the core as the `unsubscribe` / `subscribe`
commands (how="button" in the consent ledger), after which the tab is published again.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, func, select

from adapters.slack.blocks import Section
from adapters.slack.mrkdwn import escape
from concierge.digests.catalogue import list_digests
from concierge.digests.subscriptions import cadence_of, subscriptions_of
from concierge.people import expert_of, is_admin, member_of
from concierge.platform import Button
from concierge.records import Conversation, Message
from concierge.settings import Settings
from concierge.waiting import open_queue, render_queue

QUESTION_PREVIEW = 200
MAX_LISTED = 20


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUESTION_PREVIEW else text[: QUESTION_PREVIEW - 1] + "\u2026"


def home_sections(session: Session, settings: Settings, platform: str, user: str,
                  now: datetime | None = None) -> list[Section | str]:
    """The paragraphs (escaped mrkdwn, some with a button) of `user`'s Home tab, read from the records."""
    sections: list[Section | str] = []
    if is_admin(settings, platform, user) or expert_of(session, platform, user) is not None:
        open_count = session.exec(select(func.count()).select_from(Conversation).where(Conversation.status == "open")).one()
        sections.append(
            f"*Staff*: {open_count} open conversation{'s' if open_count != 1 else ''}. They are threads in the staff "
            "channel; type `/concierge help` for the commands you can use."
        )
        if open_count and now is not None:  # who is waiting and for how long (`/concierge queue`)
            sections.append(escape(render_queue(open_queue(session, limit=MAX_LISTED), now)))
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


def _digests(session: Session, member_id: int) -> list[Section | str]:
    """The member's subscriptions (Unsubscribe each), then the active digests they do not get (Subscribe)."""
    subscribed = subscriptions_of(session, member_id)
    mine = {digest.id for _, digest in subscribed}
    offered = [digest for digest in list_digests(session) if digest.id not in mine]
    sections: list[Section | str] = []
    if subscribed:
        sections.append(f"*Your digests* ({len(subscribed)}), delivered by direct message. Stop one with its "
                        "*Unsubscribe* button or `/concierge unsubscribe <digest>`.")
        sections.extend(
            Section(f"`{escape(digest.slug)}` {escape(digest.title)}: {escape(cadence_of(subscription).describe())}",
                    Button("Unsubscribe", "unsubscribe", digest.slug, "danger"))
            for subscription, digest in subscribed[:MAX_LISTED]
        )
    if offered:
        sections.append("*Digests you can subscribe to*. *Subscribe* uses the digest's usual schedule (the "
                        "confirmation shows it); to choose the day, hour, time zone or quiet hours, type "
                        "`/concierge subscribe <digest> --cadence daily|weekly|monthly --day mon --hour 8 "
                        "--tz Europe/Paris --quiet 22-7`.")
        sections.extend(
            Section(f"`{escape(digest.slug)}` {escape(digest.title)} ({escape(digest.cadence)})",
                    Button("Subscribe", "subscribe", digest.slug, "primary"))
            for digest in offered[:MAX_LISTED]
        )
    return sections
