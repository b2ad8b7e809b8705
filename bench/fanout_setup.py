"""Bulk set-up for the fan-out benchmark: members, subscriptions, one published edition."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import insert
from sqlmodel import Session

from concierge.database import Database
from concierge.records import Digest, DigestEdition, Member, Subscription, Tier

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")


def populate(db: Database, count: int, *, platform: str = "bench", chunk: int = 50000) -> None:
    """`count` members, each subscribed (daily, various hours and zones) and due at NOW."""

    def base(session: Session) -> None:
        session.execute(insert(Tier.__table__), {"name": "premium", "specialties": ""})
        session.execute(insert(Digest.__table__), {"slug": "tips", "title": "Tips", "cadence": "weekly",
                                                   "status": "active", "created_at": NOW - timedelta(days=30)})
        session.execute(insert(DigestEdition.__table__), {"digest_id": 1, "number": 1, "text": "- Stretch.",
                                                          "published_at": NOW - timedelta(hours=1)})

    db.run_sync(base)
    created = NOW - timedelta(days=30)
    for start in range(0, count, chunk):
        ids = range(start + 1, min(start + chunk, count) + 1)

        def rows(session: Session, ids: range = ids) -> None:
            session.execute(insert(Member.__table__), [
                {"id": i, "display_name": f"m{i}", "tier_id": 1, "active": True, "blocked": False,
                 "blocked_reason": "", "created_at": created} for i in ids])
            session.execute(insert(Subscription.__table__), [
                {"member_id": i, "digest_id": 1, "active": True, "cadence": "daily", "weekday": 0,
                 "day_of_month": 1, "hour": i % 24, "time_zone": ZONES[i % len(ZONES)], "platform": platform,
                 "user_id": f"U{i}", "next_due_at": NOW - timedelta(minutes=i % 60), "last_edition_id": 0,
                 "created_at": created, "updated_at": created} for i in ids])

        db.run_sync(rows)


def grant_all(db: Database, count: int, chunk: int = 50000) -> None:
    """The consent events that back the subscriptions (needed by the delivery part)."""
    from concierge.records import ConsentEvent

    for start in range(0, count, chunk):
        ids = range(start + 1, min(start + chunk, count) + 1)
        db.run_sync(lambda session, ids=ids: session.execute(insert(ConsentEvent.__table__), [
            {"member_id": i, "digest_id": 1, "action": "granted", "how": "admin_import", "platform": "bench",
             "actor": "bench", "policy_version": "2026-11", "at": NOW - timedelta(days=30)} for i in ids]))
