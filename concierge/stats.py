"""Desk statistics: volume, first-response times, target hit rate, ratings, busiest hours."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from statistics import quantiles
from typing import BinaryIO

from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from concierge.durations import minutes_or_hours
from concierge.inbox import count_failed
from concierge.records import Conversation, Expert, Member, Tier
from concierge.states import ConversationStatus


def _percentile(values: list[float], which: int) -> float:
    if len(values) == 1:
        return values[0]
    return quantiles(values, n=100, method="inclusive")[which - 1]


@dataclass
class DeskStats:
    since: datetime
    conversations: int = 0
    open: int = 0
    first_response: dict[str, list[float]] = field(default_factory=dict)  # group -> minutes
    target_hits: int = 0
    target_total: int = 0
    ratings: list[int] = field(default_factory=list)
    ratings_by_expert: dict[str, list[int]] = field(default_factory=dict)  # who had the conversation
    by_hour: Counter = field(default_factory=Counter)
    inbound_failed: int = 0  # inbound messages given up on (all time): they need a look


def collect(session: Session, since: datetime) -> DeskStats:
    """The figures for the conversations opened since `since`.

    They are read through `ix_conversation_opened`, from the conversation table alone: joined to
    the members, SQLite's planner started from the members and read every conversation ever
    opened (1,000,000 of them: 1.8 s). Tiers and experts are few; they are read whole."""
    stats = DeskStats(since, inbound_failed=count_failed(session))
    tier_of = select(Member.tier_id).where(col(Member.id) == Conversation.member_id).scalar_subquery()
    rows = session.execute(
        select_columns(col(Conversation.status), col(Conversation.opened_at), col(Conversation.first_response_at),
                       col(Conversation.rating), col(Conversation.specialty), col(Conversation.claimed_by), tier_of)
        .where(col(Conversation.opened_at) >= since)
    ).all()
    tiers = {tier.id: tier for tier in session.exec(select(Tier))}
    experts = dict(session.execute(select(Expert.id, Expert.display_name)).all())
    groups: dict[str, list[float]] = defaultdict(list)
    by_expert: dict[str, list[int]] = defaultdict(list)
    for status, opened_at, first_response_at, rating, specialty, claimed_by, tier_id in rows:
        tier = tiers[tier_id]  # every conversation has a member, every member a tier (foreign keys)
        stats.conversations += 1
        stats.open += status == ConversationStatus.OPEN
        stats.by_hour[opened_at.hour] += 1
        if rating:
            stats.ratings.append(rating)
            by_expert[experts.get(claimed_by) or "nobody"].append(rating)
        if first_response_at is None:
            continue
        minutes = (first_response_at - opened_at).total_seconds() / 60
        groups[f"specialty {specialty}"].append(minutes)
        groups[f"tier {tier.name}"].append(minutes)
        if tier.response_target_minutes:
            stats.target_total += 1
            stats.target_hits += minutes <= tier.response_target_minutes
    stats.first_response = dict(sorted(groups.items()))
    stats.ratings_by_expert = dict(sorted(by_expert.items()))
    return stats


def render_text(stats: DeskStats) -> str:
    failed = ([f"Inbound messages that could not be processed (kept for review, see `concierge doctor`): "
               f"{stats.inbound_failed}"] if stats.inbound_failed else [])
    if not stats.conversations:
        return "\n".join([f"No conversations since {stats.since:%Y-%m-%d %H:%M} UTC.", *failed])
    lines = [f"Since {stats.since:%Y-%m-%d %H:%M} UTC: {stats.conversations} conversations, {stats.open} open."]
    for name, values in stats.first_response.items():
        lines.append(f"First response, {name}: p50 {minutes_or_hours(_percentile(values, 50))}, "
                     f"p90 {minutes_or_hours(_percentile(values, 90))} ({len(values)} answered)")
    if stats.target_total:
        lines.append(f"Response target met: {stats.target_hits}/{stats.target_total} "
                     f"({100 * stats.target_hits / stats.target_total:.0f}%)")
    if stats.ratings:
        lines.append(f"Rating: {sum(stats.ratings) / len(stats.ratings):.1f}/5 from {len(stats.ratings)} ratings")
        lines.append("Rating by expert: " + ", ".join(
            f"{name} {sum(scores) / len(scores):.1f}/5 ({len(scores)})" for name, scores in stats.ratings_by_expert.items()))
    busiest = stats.by_hour.most_common(3)
    lines.append("Busiest hours (UTC): " + ", ".join(f"{hour:02d}:00 ({count})" for hour, count in busiest))
    return "\n".join(lines + failed)


def draw_chart(stats: DeskStats, target: Path | BinaryIO) -> None:
    """The same figures as a PNG, into a file path or a binary file object: first-response p50/p90
    per group, and questions per hour. matplotlib is imported here, on first use only."""
    # A Figure of its own, not pyplot: no screen needed, and charts drawn in two threads at once
    # share no global state.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5))
    times, hours = figure.subplots(1, 2)
    names = list(stats.first_response)
    p50 = [_percentile(stats.first_response[name], 50) for name in names]
    p90 = [_percentile(stats.first_response[name], 90) for name in names]
    positions = range(len(names))
    times.barh([p - 0.2 for p in positions], p50, height=0.4, label="p50")
    times.barh([p + 0.2 for p in positions], p90, height=0.4, label="p90")
    times.set_yticks(list(positions), names)
    times.set_xlabel("minutes to first response")
    times.set_title("First response")
    times.legend()
    hours.bar(range(24), [stats.by_hour.get(hour, 0) for hour in range(24)])
    hours.set_xlabel("hour (UTC)")
    hours.set_title("Questions opened")
    rating = f", rating {sum(stats.ratings) / len(stats.ratings):.1f}/5" if stats.ratings else ""
    figure.suptitle(f"{stats.conversations} conversations since {stats.since:%Y-%m-%d}{rating}")
    figure.tight_layout()
    figure.savefig(target, dpi=100, format="png")


def chart_png(stats: DeskStats) -> bytes:
    """`draw_chart` into memory: the PNG's bytes."""
    buffer = io.BytesIO()
    draw_chart(stats, buffer)
    return buffer.getvalue()
