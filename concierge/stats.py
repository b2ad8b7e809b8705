"""Desk statistics: volume, first-response times, target hit rate, ratings, busiest hours."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from statistics import quantiles

from sqlmodel import Session, select

from concierge.records import Conversation, Member, Tier


def _percentile(values: list[float], which: int) -> float:
    if len(values) == 1:
        return values[0]
    return quantiles(values, n=100, method="inclusive")[which - 1]


def _fmt(minutes: float) -> str:
    return f"{minutes:.0f}m" if minutes < 120 else f"{minutes / 60:.1f}h"


def desk_stats(session: Session, since: datetime) -> str:
    rows = session.exec(
        select(Conversation, Tier)
        .join(Member, Member.id == Conversation.member_id)
        .join(Tier, Tier.id == Member.tier_id)
        .where(Conversation.opened_at >= since)
    ).all()
    if not rows:
        return f"No conversations since {since:%Y-%m-%d %H:%M} UTC."
    lines = [f"Since {since:%Y-%m-%d %H:%M} UTC: {len(rows)} conversations, "
             f"{sum(c.status == 'open' for c, _ in rows)} open."]
    groups: dict[str, list[float]] = defaultdict(list)
    hits = targets = 0
    for conversation, tier in rows:
        if conversation.first_response_at is None:
            continue
        minutes = (conversation.first_response_at - conversation.opened_at).total_seconds() / 60
        groups[f"specialty {conversation.specialty}"].append(minutes)
        groups[f"tier {tier.name}"].append(minutes)
        if tier.response_target_minutes:
            targets += 1
            hits += minutes <= tier.response_target_minutes
    for name in sorted(groups):
        values = groups[name]
        lines.append(f"First response, {name}: p50 {_fmt(_percentile(values, 50))}, "
                     f"p90 {_fmt(_percentile(values, 90))} ({len(values)} answered)")
    if targets:
        lines.append(f"Response target met: {hits}/{targets} ({100 * hits / targets:.0f}%)")
    ratings = [c.rating for c, _ in rows if c.rating]
    if ratings:
        lines.append(f"Rating: {sum(ratings) / len(ratings):.1f}/5 from {len(ratings)} ratings")
    hours = Counter(c.opened_at.hour for c, _ in rows).most_common(3)
    lines.append("Busiest hours (UTC): " + ", ".join(f"{hour:02d}:00 ({count})" for hour, count in hours))
    return "\n".join(lines)
