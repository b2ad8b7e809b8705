"""Enrolling members and experts, tiers, blocking: the admin side of who is who."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from concierge.errors import Refused
from concierge.people import Context, identity_of
from concierge.records import AuditEvent, Expert, Member, PlatformIdentity, Tier
from concierge.tables import saved_id


def audit(session: Session, ctx: Context, actor: str, action: str, **detail: object) -> None:
    session.add(AuditEvent(actor=actor, action=action, detail=detail, at=ctx.now))


def tier_named(session: Session, name: str) -> Tier:
    """The tier called `name`, created on first use with no limits."""
    tier = session.exec(select(Tier).where(Tier.name == name)).first()
    if tier is None:
        tier = Tier(name=name)
        session.add(tier)
        session.flush()
    return tier


def _identity(session: Session, platform: str, user: str) -> PlatformIdentity:
    identity = identity_of(session, platform, user)
    if identity is None:
        identity = PlatformIdentity(platform=platform, user_id=user)
        session.add(identity)
    return identity


def enrol_member(
    session: Session, ctx: Context, *, platform: str, user: str, tier: str, name: str, actor: str,
    name_source: str = "admin",
) -> Member:
    """Enrol (or re-enrol) the platform user as a member of `tier`.

    `name_source` "platform": the name is the platform's display name, refreshed when it changes.
    """
    identity = _identity(session, platform, user)
    tier_record = tier_named(session, tier)
    member = session.get(Member, identity.member_id) if identity.member_id else None
    if member is not None and member.active:
        raise Refused(f"{member.display_name} is already a member (tier {tier_name_of(session, member)}).")
    if member is None:
        member = Member(display_name=name, tier_id=saved_id(tier_record), created_at=ctx.now)
        session.add(member)
        session.flush()
        identity.member_id = member.id
    member.active = True
    member.tier_id = saved_id(tier_record)
    member.display_name = name
    member.name_source = name_source
    audit(session, ctx, actor, "member.add", member_id=member.id, tier=tier)
    return member


def link_identity(session: Session, ctx: Context, *, platform: str, user: str, other_platform: str,
                  other_user: str, actor: str) -> Member:
    """Make `other_platform:other_user` another identity of the member behind `platform:user`.

    One person, one member: their conversations, quota, subscriptions and consent history are
    kept once, whichever platform they write from. An identity that is an active member of its
    own is refused (remove that membership first): two histories are never merged silently.
    """
    identity = identity_of(session, platform, user)
    member = session.get(Member, identity.member_id) if identity is not None and identity.member_id else None
    if member is None or not member.active:
        raise Refused(f"{user} is not a member; enrol them first with `member add`.")
    other = _identity(session, other_platform, other_user)
    if other.member_id == member.id:
        raise Refused(f"{other_platform}:{other_user} is already {member.display_name}.")
    if other.member_id is not None:
        holder = session.get(Member, other.member_id)
        if holder is not None and holder.active:
            raise Refused(f"{other_platform}:{other_user} is a member of their own ({holder.display_name}); "
                          "remove that membership first (`member remove`), then link.")
    other.member_id = member.id
    audit(session, ctx, actor, "member.link", member_id=member.id, platform=other_platform, user=other_user)
    return member


def tier_name_of(session: Session, member: Member) -> str:
    tier = session.get(Tier, member.tier_id)
    return tier.name if tier else "?"


def _active_member(session: Session, platform: str, user: str) -> Member:
    identity = identity_of(session, platform, user)
    member = session.get(Member, identity.member_id) if identity and identity.member_id else None
    if member is None or not member.active:
        raise Refused(f"{user} is not a member.")
    return member


def remove_member(session: Session, ctx: Context, *, platform: str, user: str, actor: str) -> Member:
    """End a membership; the record and its conversations stay for the transcripts."""
    member = _active_member(session, platform, user)
    member.active = False
    audit(session, ctx, actor, "member.remove", member_id=member.id)
    return member


def set_member_tier(session: Session, ctx: Context, *, platform: str, user: str, tier: str, actor: str) -> Member:
    member = _active_member(session, platform, user)
    member.tier_id = saved_id(tier_named(session, tier))
    audit(session, ctx, actor, "member.tier", member_id=member.id, tier=tier)
    return member


def set_member_blocked(
    session: Session, ctx: Context, *, platform: str, user: str, blocked: bool, reason: str, actor: str,
    until: datetime | None = None,
) -> Member:
    member = _active_member(session, platform, user)
    member.blocked = blocked
    member.blocked_reason = reason if blocked else ""
    member.blocked_until = until if blocked else None
    audit(session, ctx, actor, "member.block" if blocked else "member.unblock", member_id=member.id, reason=reason)
    return member


def list_members(session: Session, *, offset: int = 0, limit: int | None = None) -> tuple[list[tuple[Member, str]], int]:
    """The active members by name (from `offset`, at most `limit`), with their tiers; and how many there are."""
    total = session.exec(select(func.count()).select_from(Member).where(Member.active)).one()
    rows = session.exec(
        select(Member, Tier.name).join(Tier, col(Tier.id) == Member.tier_id).where(Member.active)
        .order_by(Member.display_name, col(Member.id)).offset(offset).limit(limit)
    ).all()
    return [(member, tier) for member, tier in rows], total


def add_expert(
    session: Session, ctx: Context, *, platform: str, user: str, specialties: list[str], name: str, actor: str
) -> Expert:
    """Make the platform user an expert with `specialties` (or update their specialties)."""
    identity = _identity(session, platform, user)
    expert = session.get(Expert, identity.expert_id) if identity.expert_id else None
    if expert is None:
        expert = Expert(display_name=name, created_at=ctx.now)
        session.add(expert)
        session.flush()
        identity.expert_id = expert.id
    expert.active = True
    expert.display_name = name
    expert.specialties = ",".join(specialties)
    audit(session, ctx, actor, "expert.add", expert_id=expert.id, specialties=specialties)
    return expert


def remove_expert(session: Session, ctx: Context, *, platform: str, user: str, actor: str) -> Expert:
    identity = identity_of(session, platform, user)
    expert = session.get(Expert, identity.expert_id) if identity and identity.expert_id else None
    if expert is None or not expert.active:
        raise Refused(f"{user} is not an expert.")
    expert.active = False
    audit(session, ctx, actor, "expert.remove", expert_id=expert.id)
    return expert


def list_experts(session: Session) -> list[Expert]:
    return list(session.exec(select(Expert).where(Expert.active).order_by(Expert.display_name)).all())


def known_specialties(session: Session) -> list[str]:
    """Specialties offered by the active experts, sorted."""
    found: set[str] = set()
    for specialties in session.exec(select(Expert.specialties).where(Expert.active)).all():
        found.update(part for part in specialties.split(",") if part)
    return sorted(found)


def tier_names(session: Session) -> list[str]:
    """Names of the tiers, sorted (offered when completing a tier)."""
    return sorted(session.exec(select(Tier.name)).all())
