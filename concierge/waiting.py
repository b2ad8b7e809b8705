"""Who is waiting and for how long: the open conversations, longest-waiting first, for the staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, func, select

from concierge.records import Conversation, Expert, Member, Message, Tier
from concierge.tiers import target_text


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


def waiting_for(delta: timedelta) -> str:
    """`1h05m`, `12m`, `2d03h`: how long, at a glance."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def open_queue(session: Session, specialty: str | None = None, limit: int = 50) -> list[Waiting]:
    """Open conversations (topic picked), those waiting for an answer first, the longest wait on top."""
    last_answer = (select(func.max(Message.created_at))
                   .where(Message.conversation_id == Conversation.id, Message.direction == "out")
                   .correlate(Conversation).scalar_subquery())
    first_unanswered = (select(func.min(Message.created_at))
                        .where(Message.conversation_id == Conversation.id, Message.direction == "in",
                               or_(last_answer.is_(None), Message.created_at > last_answer))
                        .correlate(Conversation).scalar_subquery())
    query = (select(Conversation.id, Member.display_name, Tier.name, Conversation.specialty, Expert.display_name,
                    first_unanswered, Tier.response_target_minutes)
             .join(Member, Member.id == Conversation.member_id)
             .join(Tier, Tier.id == Member.tier_id, isouter=True)
             .join(Expert, Expert.id == Conversation.claimed_by, isouter=True)
             .where(Conversation.status == "open"))
    if specialty:
        query = query.where(Conversation.specialty == specialty.lower())
    rows = [Waiting(*row) for row in session.exec(query).all()]
    rows.sort(key=lambda row: (row.waiting_since is None, row.waiting_since or datetime.max, row.id))
    return rows[:limit]


def render_queue(rows: list[Waiting], now: datetime) -> str:
    if not rows:
        return "No open conversations: nobody is waiting."
    lines = [f"Open conversations ({len(rows)}), longest waiting first:"]
    for row in rows:
        if row.waiting_since is None:
            state = "answered"
        else:
            state = f"waiting {waiting_for(now - row.waiting_since)}"
            if row.over_target(now):
                state += f", over the {target_text(row.target_minutes)} target"
        who = f"claimed by {row.claimed_by}" if row.claimed_by else "unclaimed"
        lines.append(f"#{row.id} {row.member} ({row.tier or '?'}, {row.specialty}): {state}; {who}")
    return "\n".join(lines)
