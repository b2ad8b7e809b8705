"""Which specialty a new conversation goes to, the topics a member may pick, and where its thread opens."""

from __future__ import annotations

from sqlalchemy import Row
from sqlmodel import Session

from concierge.membership import known_specialties
from concierge.people import Context
from concierge.records import Member, Tier


def route_specialty(session: Session, member: Member | Row, text: str) -> tuple[str, bool]:
    """Pick the specialty of a new conversation, and whether the text named it.

    A specialty named in the text wins; otherwise the tier's only specialty, or the only one
    the experts offer; otherwise "general".
    """
    offered = known_specialties(session)
    words = {word.strip(".,!?;:").lower() for word in text.split()}
    for specialty in offered:
        if specialty.lower() in words:
            return specialty, True
    return _default_specialty(session, member, offered), False


def _default_specialty(session: Session, member: Member | Row, offered: list[str]) -> str:
    tier = session.get(Tier, member.tier_id)
    tier_specialties = [part for part in (tier.specialties if tier else "").split(",") if part]
    if len(tier_specialties) == 1:
        return tier_specialties[0]
    if len(offered) == 1:
        return offered[0]
    return "general"


def topics_for(session: Session, member: Member | Row) -> list[str]:
    """The specialties a member may pick from: offered by experts and covered by their tier."""
    offered = known_specialties(session)
    tier = session.get(Tier, member.tier_id)
    covered = [part for part in (tier.specialties if tier else "").split(",") if part]
    return [specialty for specialty in offered if not covered or specialty in covered]


def staff_channel_for(ctx: Context, specialty: str) -> str:
    """Where threads of `specialty` open: its own channel if configured, else the staff channel."""
    return ctx.settings.specialty_channels.get(specialty.lower(), ctx.staff.channel)
