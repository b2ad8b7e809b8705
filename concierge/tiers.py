"""Tiers: what a membership level entitles to (specialties, monthly questions, response target)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Row, func
from sqlmodel import Session, select

from concierge.durations import describe_minutes, parse_duration, whole_number
from concierge.errors import Refused
from concierge.membership import audit, tier_named
from concierge.people import Context
from concierge.records import Conversation, Member, Tier
from concierge.tables import saved_id

LONGEST_TARGET = timedelta(days=30)  # a response target past a month is a typo
MAX_QUOTA = 100_000  # questions a month

def parse_target(text: str) -> int | None:
    """`4h` -> 240 minutes, `30m`, `2d`; `none` -> no target."""
    if text.lower() == "none":
        return None
    try:
        target = parse_duration(text, longest=LONGEST_TARGET)
    except ValueError:
        raise Refused("A response target looks like 30m, 4h or 2d (at most 30d), or none.") from None
    return int(target.total_seconds() // 60)


def parse_quota(text: str) -> int | None:
    """`10/month` or `10` -> 10 questions a month; `none` -> unlimited."""
    if text.lower() in ("none", "unlimited"):
        return None
    number = whole_number(text.lower().removesuffix("/month"), 1, MAX_QUOTA)
    if number is None:
        raise Refused(f"A quota looks like 10/month (from 1 to {MAX_QUOTA}), or none.")
    return number


def set_tier(session: Session, ctx: Context, *, name: str, quota: str | None, target: str | None,
             specialties: str | None, actor: str) -> Tier:
    """Create or change a tier; options not given keep their value (an existing tier needs one change)."""
    if quota is None and target is None and specialties is None \
            and session.exec(select(Tier).where(Tier.name == name.lower())).first() is not None:
        raise Refused("Say what to change: --quota 10/month, --target 4h, --specialties training,nutrition.")
    changes: dict[str, int | str | None] = {}
    if quota is not None:
        changes["monthly_quota"] = parse_quota(quota)
    if target is not None:
        changes["response_target_minutes"] = parse_target(target)
    if specialties is not None:
        items = [item.strip().lower() for item in specialties.split(",") if item.strip()]
        changes["specialties"] = "" if specialties.lower() in ("any", "all") else ",".join(items)
    tier = tier_named(session, name.lower())
    for field, value in changes.items():
        setattr(tier, field, value)
    audit(session, ctx, actor, "tier.set", tier=tier.name, **{k: v for k, v in changes.items()})
    return tier


def describe(tier: Tier) -> str:
    quota = f"{tier.monthly_quota} questions a month" if tier.monthly_quota is not None else "unlimited questions"
    target = (f"answer within {describe_minutes(tier.response_target_minutes)}" if tier.response_target_minutes
              else "no response target")
    covered = tier.specialties.replace(",", ", ") or "every specialty"
    return f"{tier.name}: {quota}, {target}, {covered}"


def list_tiers(session: Session) -> list[Tier]:
    return list(session.exec(select(Tier).order_by(Tier.name)).all())


def questions_this_month(session: Session, member_id: int, now: datetime) -> int:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return session.exec(select(func.count()).select_from(Conversation).where(
        Conversation.member_id == member_id, Conversation.opened_at >= start)).one()


def entitlement_problem(session: Session, member: Member | Row, specialty: str, named: bool,
                        now: datetime) -> str | None:
    """Why a member may not open this conversation, or None when they may."""
    tier = session.get(Tier, member.tier_id)
    if tier is None:
        return None
    covered = [item for item in tier.specialties.split(",") if item]
    if named and covered and specialty not in covered:
        return (f"Your {tier.name} membership covers {', '.join(covered)}. Questions about {specialty} "
                "are not included; your message was not passed on.")
    if tier.monthly_quota is not None and questions_this_month(session, saved_id(member), now) >= tier.monthly_quota:
        return (f"You have used this month's {tier.monthly_quota} questions of your {tier.name} membership. "
                "Your message was not passed on; you can ask again from the 1st of next month.")
    return None
