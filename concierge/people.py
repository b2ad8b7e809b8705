"""Who someone is: member, expert, admin or guest, from their platform identity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from sqlmodel import Session, select

from concierge.platform import Address
from concierge.records import Expert, Member, PlatformIdentity, Tier
from concierge.settings import Settings


class Role(IntEnum):
    """What someone may do; each role may also do what the roles below it may."""

    GUEST = 0
    MEMBER = 1
    EXPERT = 2
    ADMIN = 3


@dataclass
class Context:
    """What every service call needs besides the session."""

    settings: Settings
    now: datetime
    staff: Address  # the staff channel


def identity_of(session: Session, platform: str, user: str) -> PlatformIdentity | None:
    return session.exec(
        select(PlatformIdentity).where(PlatformIdentity.platform == platform, PlatformIdentity.user_id == user)
    ).first()


def member_of(session: Session, platform: str, user: str) -> Member | None:
    """The enrolled (active) member behind a platform user, if any."""
    identity = identity_of(session, platform, user)
    if identity is None or identity.member_id is None:
        return None
    member = session.get(Member, identity.member_id)
    return member if member is not None and member.active else None


def expert_of(session: Session, platform: str, user: str) -> Expert | None:
    """The active expert behind a platform user, if any."""
    identity = identity_of(session, platform, user)
    if identity is None or identity.expert_id is None:
        return None
    expert = session.get(Expert, identity.expert_id)
    return expert if expert is not None and expert.active else None


def is_admin(settings: Settings, platform: str, user: str) -> bool:
    return f"{platform}:{user}" in settings.admins


def role_of(session: Session, settings: Settings, platform: str, user: str) -> Role:
    if is_admin(settings, platform, user):
        return Role.ADMIN
    if expert_of(session, platform, user) is not None:
        return Role.EXPERT
    if member_of(session, platform, user) is not None:
        return Role.MEMBER
    return Role.GUEST


def actor_name(session: Session, settings: Settings, platform: str, user: str) -> str:
    """A readable name for logs and the audit trail."""
    expert = expert_of(session, platform, user)
    if expert is not None:
        return expert.display_name
    member = member_of(session, platform, user)
    if member is not None:
        return member.display_name
    return f"{platform}:{user}"


def tier_name(session: Session, tier_id: int) -> str:
    tier = session.get(Tier, tier_id)
    return tier.name if tier else "?"
