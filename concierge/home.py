"""What a person's home page shows (Slack's App Home), read from the records in neutral form.

The adapter renders it (Block Kit on Slack); it never reads the records itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, func, select

from concierge.digests.catalogue import list_digests
from concierge.digests.subscriptions import cadence_of, subscriptions_of
from concierge.people import expert_of, is_admin, member_of
from concierge.records import Conversation, Message
from concierge.settings import Settings
from concierge.states import ConversationStatus, Direction
from concierge.tables import saved_id
from concierge.waiting import open_queue, render_queue

MAX_LISTED = 20


@dataclass(frozen=True)
class Question:
    """One of the member's open questions."""

    id: int
    specialty: str
    opened_at: datetime
    answered: bool
    first_text: str | None  # the member's first message, None when it has no text


@dataclass(frozen=True)
class DigestEntry:
    slug: str
    title: str
    schedule: str  # the member's delivery schedule, or the digest's cadence when offered


@dataclass
class Home:
    """A person's home page. `staff_open` is None for someone who is not staff."""

    staff_open: int | None = None
    queue: str = ""  # who is waiting and for how long (staff only), as plain text
    notice: str = ""  # the join text (not a member) or the blocked text
    is_member: bool = False
    questions: list[Question] = field(default_factory=list)
    subscribed: list[DigestEntry] = field(default_factory=list)
    offered: list[DigestEntry] = field(default_factory=list)


def home_of(session: Session, settings: Settings, platform: str, user: str, now: datetime | None) -> Home:
    home = Home()
    if is_admin(settings, platform, user) or expert_of(session, platform, user) is not None:
        home.staff_open = session.exec(
            select(func.count()).select_from(Conversation).where(Conversation.status == ConversationStatus.OPEN)).one()
        if home.staff_open and now is not None:
            home.queue = render_queue(open_queue(session), now, shown=MAX_LISTED)
    member = member_of(session, platform, user)
    if member is None:
        if home.staff_open is None:
            home.notice = settings.join_message()
        return home
    if member.blocked:
        home.notice = settings.blocked_text
        return home
    home.is_member = True
    home.questions = _questions(session, member.id)
    subscribed = subscriptions_of(session, member.id)
    mine = {digest.id for _, digest in subscribed}
    home.subscribed = [DigestEntry(digest.slug, digest.title, cadence_of(subscription).describe())
                       for subscription, digest in subscribed[:MAX_LISTED]]
    home.offered = [DigestEntry(digest.slug, digest.title, digest.cadence)
                    for digest in list_digests(session) if digest.id not in mine][:MAX_LISTED]
    return home


def _questions(session: Session, member_id: int) -> list[Question]:
    conversations = session.exec(
        select(Conversation)
        .where(Conversation.member_id == member_id, Conversation.status == ConversationStatus.OPEN)
        .order_by(col(Conversation.opened_at).desc())
        .limit(MAX_LISTED)
    ).all()
    questions = []
    for conversation in conversations:
        first = session.exec(
            select(Message.text)
            .where(Message.conversation_id == conversation.id, Message.direction == Direction.IN)
            .order_by(col(Message.id))
            .limit(1)
        ).first()
        questions.append(Question(saved_id(conversation), conversation.specialty, conversation.opened_at,
                                  conversation.first_response_at is not None, first))
    return questions
