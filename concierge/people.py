"""Who someone is: member, expert, admin or guest, from their platform identity."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

from sqlalchemy import Row, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from concierge.platform import Address
from concierge.records import Expert, Member, PlatformIdentity
from concierge.settings import Settings
from concierge.tables import table_of


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
    # The largest file each platform served here takes in an upload (see `concierge.relay_files`).
    upload_limits: Mapping[str, int] = field(default_factory=dict)


def identity_of(session: Session, platform: str, user: str) -> PlatformIdentity | None:
    return session.exec(
        select(PlatformIdentity).where(PlatformIdentity.platform == platform, PlatformIdentity.user_id == user)
    ).first()


_MEMBERS, _EXPERTS, _IDENTITIES = table_of(Member), table_of(Expert), table_of(PlatformIdentity)
# Plain (Core) selects returning read-only rows: these run on every relayed message, and an ORM
# select costs about three times as much.
_MEMBER_BY_USER = (
    sa_select(_MEMBERS)
    .join(_IDENTITIES, _IDENTITIES.c.member_id == _MEMBERS.c.id)
    .where(_IDENTITIES.c.platform == bindparam("platform"), _IDENTITIES.c.user_id == bindparam("user"),
           _MEMBERS.c.active)
)
_EXPERT_BY_USER = (
    sa_select(_EXPERTS)
    .join(_IDENTITIES, _IDENTITIES.c.expert_id == _EXPERTS.c.id)
    .where(_IDENTITIES.c.platform == bindparam("platform"), _IDENTITIES.c.user_id == bindparam("user"),
           _EXPERTS.c.active)
)


NAME_CHARS = 80


def clean_name(raw: str | None, fallback: str = "") -> str:
    """A display name that is safe to show staff anywhere: one line, printable, bounded, inert.

    Control and format characters go (they break cards and thread titles), whitespace is
    collapsed, `<` and `>` become look-alikes (no Slack or Discord markup), and an `@` gets a
    zero-width space after it, so `@here` or `@everyone` as a name reads the same and pings
    nobody. An empty result gives `fallback` (the platform id).
    """
    text = "".join(char for char in (raw or "") if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co"))
    text = " ".join(text.split())
    text = text.replace("<", "\u2039").replace(">", "\u203a").replace("@", "@\u200b")
    if len(text) > NAME_CHARS:
        text = text[: NAME_CHARS - 1].rstrip() + "\u2026"
    return text or fallback


def member_of(session: Session, platform: str, user: str) -> Row | None:
    """The enrolled (active) member behind a platform user, if any, as a read-only row."""
    return session.execute(_MEMBER_BY_USER, {"platform": platform, "user": user}).first()


def expert_of(session: Session, platform: str, user: str) -> Row | None:
    """The active expert behind a platform user, if any, as a read-only row."""
    return session.execute(_EXPERT_BY_USER, {"platform": platform, "user": user}).first()


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
