"""Who is waiting and for how long: the open conversations, longest-waiting first, for the staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from concierge.durations import at_a_glance, describe_minutes
from concierge.records import Conversation, Expert, Member, Message, Tier
from concierge.states import ConversationStatus, Direction


@dataclass(frozen=True)
class Waiting:
    """One open conversation as the staff see it in the queue."""

    id: int
    member: str
    tier: str
    specialty: str
    claimed_by: str | None
    waiting_since: datetime | None  # the member's oldest message with no answer after it; None: answered
    target_minutes: int | None

    def over_target(self, now: datetime) -> bool:
        return (self.waiting_since is not None and self.target_minutes is not None
                and now - self.waiting_since > timedelta(minutes=self.target_minutes))


def open_queue(session: Session, specialty: str | None = None) -> list[Waiting]:
    """Open conversations (topic picked), those waiting for an answer first, the longest wait on top."""
    last_answer = (select(func.max(Message.created_at))
                   .where(Message.conversation_id == Conversation.id, Message.direction == Direction.OUT)
                   .correlate(Conversation).scalar_subquery())
    first_unanswered = (select(func.min(Message.created_at))
                        .where(Message.conversation_id == Conversation.id, Message.direction == Direction.IN,
                               or_(last_answer.is_(None), Message.created_at > last_answer))
                        .correlate(Conversation).scalar_subquery())
    # SQLAlchemy's select: sqlmodel's is typed for at most four columns.
    query = (sa_select(col(Conversation.id), col(Member.display_name), col(Tier.name), col(Conversation.specialty),
                       col(Expert.display_name), first_unanswered, col(Tier.response_target_minutes))
             .join(Member, col(Member.id) == Conversation.member_id)
             .join(Tier, col(Tier.id) == Member.tier_id, isouter=True)
             .join(Expert, col(Expert.id) == Conversation.claimed_by, isouter=True)
             .where(col(Conversation.status) == ConversationStatus.OPEN))
    if specialty:
        query = query.where(col(Conversation.specialty) == specialty.lower())
    rows = [Waiting(*row) for row in session.execute(query).all()]
    rows.sort(key=lambda row: (row.waiting_since is None, row.waiting_since or datetime.max, row.id))
    return rows


def render_queue(rows: list[Waiting], now: datetime, shown: int = 50) -> str:
    """The first `shown` of `rows`, one line each, and how many more there are."""
    if not rows:
        return "No open conversations: nobody is waiting."
    if len(rows) <= shown:
        lines = [f"Open conversations ({len(rows)}), longest waiting first:"]
    else:
        lines = [f"Open conversations ({len(rows)}), the {shown} waiting longest first:"]
    for row in rows[:shown]:
        if row.waiting_since is None:
            state = "answered"
        else:
            state = f"waiting {at_a_glance(now - row.waiting_since)}"
            if row.target_minutes is not None and row.over_target(now):
                state += f", over the {describe_minutes(row.target_minutes)} target"
        who = f"claimed by {row.claimed_by}" if row.claimed_by else "unclaimed"
        lines.append(f"#{row.id} {row.member} ({row.tier or '?'}, {row.specialty}): {state}; {who}")
    if len(rows) > shown:
        lines.append(f"...and {len(rows) - shown} more. For one specialty only: `/concierge queue --specialty <name>`.")
    return "\n".join(lines)
