"""The consent audit: every digest delivery must have met a consent in force when it was sent."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from concierge.digests.consent import was_in_force_when_checked
from concierge.outbox.kinds import OutboxStatus
from concierge.records import OutboxItem
from concierge.tables import table_of

ITEMS = table_of(OutboxItem)


def consent_violations(session: Session, batch: int = 10000) -> list[str]:
    """One line per delivery not backed by the ledger; empty when all is well."""
    problems: list[str] = []
    last_id = 0
    while True:
        rows = session.execute(
            select(ITEMS.c.id, ITEMS.c.member_id, ITEMS.c.digest_id, ITEMS.c.edition_id, ITEMS.c.consent_checked_at,
                   ITEMS.c.sent_at)
            .where(ITEMS.c.edition_id.is_not(None), ITEMS.c.status == OutboxStatus.SENT, ITEMS.c.id > last_id)
            .order_by(ITEMS.c.id).limit(batch)
        ).all()
        if not rows:
            return problems
        for row in rows:
            if row.consent_checked_at is None:
                problems.append(f"delivery {row.id}: edition {row.edition_id} to member {row.member_id} "
                                "was sent without a consent check")
            elif not was_in_force_when_checked(session, row.member_id, row.digest_id, row.consent_checked_at):
                problems.append(f"delivery {row.id}: edition {row.edition_id} to member {row.member_id} was sent "
                                f"at {row.consent_checked_at:%Y-%m-%d %H:%M:%S} without consent in force")
        last_id = rows[-1].id
