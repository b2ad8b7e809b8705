"""The consent ledger: append-only grants and revocations; what is in force at a moment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlmodel import Session, col

from concierge.records import ConsentEvent
from concierge.tables import table_of

LEDGER = table_of(ConsentEvent)
GRANTED, REVOKED = "granted", "revoked"

_LATEST_AT = (
    select(LEDGER.c.action)
    .where(LEDGER.c.member_id == bindparam("member_id"), LEDGER.c.digest_id == bindparam("digest_id"),
           LEDGER.c.at <= bindparam("at"))
    .order_by(LEDGER.c.at.desc(), LEDGER.c.id.desc())
    .limit(1)
)


_LATEST_BEFORE = (
    select(LEDGER.c.action)
    .where(LEDGER.c.member_id == bindparam("member_id"), LEDGER.c.digest_id == bindparam("digest_id"),
           LEDGER.c.at < bindparam("at"))
    .order_by(LEDGER.c.at.desc(), LEDGER.c.id.desc())
    .limit(1)
)


def record(session: Session, *, member_id: int, digest_id: int, action: str, how: str, platform: str,
           actor: str, policy_version: str, at: datetime) -> None:
    """Append one event; the ledger is never updated or deleted."""
    session.execute(insert(LEDGER), {
        "member_id": member_id, "digest_id": digest_id, "action": action, "how": how,
        "platform": platform, "actor": actor, "policy_version": policy_version, "at": at,
    })


def in_force(session: Session, member_id: int, digest_id: int, at: datetime) -> bool:
    """Whether the member's latest word on the digest, at `at`, was a grant."""
    latest = session.execute(_LATEST_AT, {"member_id": member_id, "digest_id": digest_id, "at": at}).scalar()
    return latest == GRANTED


def was_in_force_when_checked(session: Session, member_id: int, digest_id: int, checked_at: datetime) -> bool:
    """For the audit: was consent in force when a send was confirmed at `checked_at`?

    A revocation recorded later but with the same timestamp as the check must not count as
    earlier: a revocation committed before the check would have stopped the send.
    """
    if in_force(session, member_id, digest_id, checked_at):
        return True
    before = session.execute(_LATEST_BEFORE, {"member_id": member_id, "digest_id": digest_id,
                                              "at": checked_at}).scalar()
    return before == GRANTED


def history(session: Session, member_id: int) -> list[ConsentEvent]:
    return list(session.scalars(
        select(ConsentEvent).where(col(ConsentEvent.member_id) == member_id)
        .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
    ).all())
