"""The due-digest planner: due subscriptions in batches -> outbox items, once per (edition, member).

One call plans one batch in one transaction: it reads subscriptions whose `next_due_at` has
passed (through the due index), queues each unseen edition as an outbox item keyed
`digest:<edition>:<member>` (a unique key: a repeated plan cannot double it), and moves
`next_due_at` on. Quiet hours and the per-member daily cap hold deliveries back; nothing due is
dropped. Plain Core statements throughout: this runs over millions of rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from concierge.digests.cadence import Cadence, hold_back, next_due
from concierge.records import Digest, DigestEdition, OutboxItem, Subscription

SUBS, DIGESTS, EDITIONS, ITEMS = (Subscription.__table__, Digest.__table__, DigestEdition.__table__,
                                  OutboxItem.__table__)
DIGEST = "digest"  # outbox kind of a digest delivery
CAP_WINDOW = timedelta(hours=24)

_DUE = (
    select(SUBS.c.id, SUBS.c.member_id, SUBS.c.digest_id, SUBS.c.cadence, SUBS.c.weekday, SUBS.c.day_of_month,
           SUBS.c.hour, SUBS.c.time_zone, SUBS.c.quiet_start, SUBS.c.quiet_end, SUBS.c.platform, SUBS.c.user_id,
           SUBS.c.last_edition_id)
    .join(DIGESTS, DIGESTS.c.id == SUBS.c.digest_id)
    .where(SUBS.c.active, SUBS.c.next_due_at <= bindparam("now"), DIGESTS.c.status == "active")
    .order_by(SUBS.c.next_due_at)
    .limit(bindparam("limit"))
)


def _editions_after(session: Session, digest_ids: set[int]) -> dict[int, list[int]]:
    rows = session.execute(select(EDITIONS.c.digest_id, EDITIONS.c.id).where(EDITIONS.c.digest_id.in_(digest_ids))
                           .order_by(EDITIONS.c.id)).all()
    found: dict[int, list[int]] = defaultdict(list)
    for digest_id, edition_id in rows:
        found[digest_id].append(edition_id)
    return found


def _recent_counts(session: Session, member_ids: set[int], now: datetime) -> dict[int, int]:
    """Digest messages queued per member in the last 24 hours (for the frequency cap)."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(ITEMS.c.member_id, func.count()).where(
            ITEMS.c.member_id.in_(member_ids), ITEMS.c.edition_id.is_not(None),
            ITEMS.c.created_at > now - CAP_WINDOW, ITEMS.c.status != "cancelled")
        .group_by(ITEMS.c.member_id)
    ).all()
    return dict(rows)


def plan_due(session: Session, now: datetime, *, limit: int = 5000, max_per_day: int = 3) -> int:
    """Plan one batch of due subscriptions; returns how many subscriptions it handled (0: none due)."""
    due = session.execute(_DUE, {"now": now, "limit": limit}).all()
    if not due:
        return 0
    editions = _editions_after(session, {row.digest_id for row in due})
    capped_members = set()
    if max_per_day:
        # Only members with something to send can hit the cap; count just those.
        senders = {row.member_id for row in due if editions.get(row.digest_id) and
                   editions[row.digest_id][-1] > row.last_edition_id}
        counts = _recent_counts(session, senders, now) if senders else {}
    else:
        counts = {}
    cadences: dict[tuple, Cadence] = {}
    items: list[dict] = []
    moves: dict[tuple[datetime, int], list[int]] = defaultdict(list)  # (next_due, last_edition) -> ids
    for row in due:
        spec = (row.cadence, row.weekday, row.day_of_month, row.hour, row.time_zone, row.quiet_start, row.quiet_end)
        cadence = cadences.get(spec) or cadences.setdefault(spec, Cadence(*spec))
        unseen = [edition for edition in editions.get(row.digest_id, ()) if edition > row.last_edition_id]
        last = row.last_edition_id
        held = False
        if unseen:
            local_now = hold_back(now, cadence)
            if local_now > now:  # inside quiet hours: wait for their end
                held = True
                moves[(local_now, last)].append(row.id)
                continue
            room = max_per_day - counts.get(row.member_id, 0) if max_per_day else len(unseen)
            for edition in unseen[:max(room, 0)]:
                items.append({
                    "key": f"digest:{edition}:{row.member_id}", "kind": DIGEST, "platform": row.platform,
                    "address": {"platform": row.platform, "user": row.user_id}, "payload": {},
                    "status": "pending", "attempts": 0, "next_attempt_at": now, "last_error": "",
                    "created_at": now, "member_id": row.member_id, "digest_id": row.digest_id,
                    "edition_id": edition,
                })
                last = edition
                counts[row.member_id] = counts.get(row.member_id, 0) + 1
            if last != unseen[-1]:  # capped: try again in an hour, never dropped
                moves[(hold_back(now + timedelta(hours=1), cadence), last)].append(row.id)
                held = True
        if not held:
            moves[(next_due(cadence, now), last)].append(row.id)
    if items:
        # A unique key per (edition, member): should two planners ever overlap, the second adds nothing.
        dialect = session.get_bind().dialect.name
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ITEMS)
        session.execute(statement.on_conflict_do_nothing(index_elements=["key"]), items)
    for (due_at, last_edition), ids in moves.items():
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            session.execute(update(SUBS).where(SUBS.c.id.in_(ids[start:start + 900])),
                            {"next_due_at": due_at, "last_edition_id": last_edition})
    return len(due)


def plan_all_due(db_session_factory, now: datetime, *, limit: int = 5000, max_per_day: int = 3) -> int:
    """Plan batch after batch (one transaction each) until nothing is due; returns the total."""
    total = 0
    while True:
        handled = db_session_factory(lambda session: plan_due(session, now, limit=limit, max_per_day=max_per_day))
        total += handled
        if handled < limit:
            return total
