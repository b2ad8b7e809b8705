"""The inbox: every inbound event is recorded before the platform hears "got it", then processed.

The hot path records and processes an event in one transaction (its row is written `done`
with its whole effect). When that transaction fails (the core raised, the database hiccuped),
the event is recorded alone, `pending`, with what it said, and `InboxWorker` processes it again
with backoff, on any process and after any restart, until it is handled or declared failed.
When even that cannot be written, the caller learns it (`NotRecorded`) and must not acknowledge.

An event's identity is `(platform, event_id)`: adapters name messages by the platform's own id
of the message, so the same message delivered again (retries, reconnects, re-enveloped events,
the catch-up after downtime) finds its row and has no second effect.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from concierge.driver_write import write
from concierge.inbound import (
    KINDS,
    Inbound,
    MemberMessage,
    StaffReply,
    event_from_dict,
    event_to_dict,
)
from concierge.platform import Address, Outbound
from concierge.records import InboxItem
from concierge.retry import backoff_s
from concierge.tables import rows_affected, table_of

if TYPE_CHECKING:  # pragma: no cover
    from concierge.app import Concierge
    from concierge.database import Database

log = logging.getLogger(__name__)

ITEMS = table_of(InboxItem)
STUCK_AFTER_ATTEMPTS = 3  # the member is told "we are on it" once processing failed this often
ON_IT = ("We have your message, but it is taking longer than usual to reach our team. "
         "We are on it: there is no need to send it again.")


class AlreadyHandled(Exception):
    """The platform delivered this event before (under this or another envelope)."""


class NotRecorded(Exception):
    """The event could not be written to the database: do not acknowledge it.

    The platform then sends it again (Slack retries what got no 2xx), or the catch-up after the
    next start finds it in the platform's history (Discord cannot be refused).
    """


def place_of(event: Inbound) -> str:
    """Where the event was written, as the catch-up resumes from it: a channel, or channel/thread."""
    address = event.address
    return f"{address.channel}/{address.thread}" if address.thread else address.channel


# The row of an event, unless it is there already: built once per dialect (this is every event's first statement).
_RECORD = {name: make(ITEMS).on_conflict_do_nothing().returning(ITEMS.c.id)
           for name, make in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}


def record(session: Session, event: Inbound, now: datetime, *, status: str = "done",
           error: str = "", next_attempt_at: datetime | None = None, attempts: int = 0) -> int:
    """Write the event's row in this transaction; raises `AlreadyHandled` when it exists already.

    A `done` row keeps no payload (its effect is in the records); a `pending` one keeps the
    whole event, to be processed again.
    """
    statement = _RECORD["postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"]
    written_at = getattr(event, "written_at", None)
    inserted = write(session, statement, {
        "platform": event.address.platform,
        "event_id": event.event_id,
        "kind": KINDS[type(event)],
        "place": place_of(event)[:300],
        "payload": event_to_dict(event) if status != "done" else {},
        "status": status,
        "attempts": attempts,
        "next_attempt_at": next_attempt_at or now,
        "last_error": error[:1000],
        "written_at": written_at,
        "received_at": now,
        "handled_at": now if status == "done" else None,
        "member_told": False,
    })
    if inserted is None:
        raise AlreadyHandled(event.event_id)
    return int(inserted)


@dataclass
class Due:
    """An inbox row taken by this worker for processing."""

    id: int
    event: Inbound
    attempts: int
    member_told: bool


# The condition of the partial index `ix_inbox_due`, word for word: the database may use that index
# (the few rows still to process) only when the query states it so. With the statuses as parameters
# only, the poll read every event the platform ever sent, each second.
_STILL_TO_PROCESS = text("inboxitem.status IN ('pending', 'processing')")
# Likewise for `ix_inbox_kept`, the events not done (failed ones among them): without it, counting the
# failed events read every event ever received.
NOT_DONE = text("inboxitem.status != 'done'")

_DUE = (
    select(ITEMS.c.id, ITEMS.c.payload, ITEMS.c.attempts, ITEMS.c.member_told)
    .where(
        _STILL_TO_PROCESS,
        or_(
            and_(ITEMS.c.status == "pending", ITEMS.c.next_attempt_at <= bindparam("now")),
            and_(ITEMS.c.status == "processing", ITEMS.c.lease_until < bindparam("now")),
        ),
        ITEMS.c.platform.in_(bindparam("platforms", expanding=True)),
    )
    .order_by(ITEMS.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


def claim_due(session: Session, now: datetime, lease_until: datetime, platforms: list[str],
              limit: int = 50) -> list[Due]:
    """Take due rows (oldest first) with a lease; on PostgreSQL rows another worker holds are skipped."""
    rows = session.execute(_DUE, {"now": now, "platforms": platforms, "limit": limit}).all()
    if not rows:
        return []
    session.execute(update(ITEMS).where(ITEMS.c.id.in_([row.id for row in rows])),
                    {"status": "processing", "lease_until": lease_until})
    return [Due(row.id, event_from_dict(row.payload), row.attempts, row.member_told) for row in rows]


def mark_done(session: Session, item_id: int, now: datetime) -> bool:
    """Close a claimed row in the transaction that applies its effect; False when it is not ours any more."""
    return rows_affected(session.execute(
        update(ITEMS).where(ITEMS.c.id == item_id, ITEMS.c.status == "processing"),
        {"status": "done", "handled_at": now, "lease_until": None, "payload": {}},
    )) == 1


def count_failed(session: Session) -> int:
    """Inbound events given up on (shown by `concierge doctor` and the stats)."""
    return session.execute(select(func.count()).select_from(ITEMS)
                           .where(NOT_DONE, ITEMS.c.status == "failed")).scalar_one()


def failed_items(session: Session, limit: int = 20) -> list[tuple[int, str, str, str]]:
    """The newest failed events: id, platform, kind, last error."""
    rows = session.execute(
        select(ITEMS.c.id, ITEMS.c.platform, ITEMS.c.kind, ITEMS.c.last_error)
        .where(NOT_DONE, ITEMS.c.status == "failed").order_by(ITEMS.c.id.desc()).limit(limit)
    ).all()
    return [tuple(row) for row in rows]


def last_written(session: Session, platform: str, since: datetime) -> dict[str, datetime]:
    """Per place (channel or channel/thread), the time of the newest message recorded there, from
    the events received since `since` (`ix_inbox_received`): not the whole history.

    A message written at or after `since` was received after it (`written_at` is the platform's
    clock, `received_at` ours), so every place whose newest message is that recent is here. A
    place missing is read back from the catch-up's oldest time, which is `since`: at worst (our
    clock behind the platform's) a little more is read again, and what was recorded already is
    recognised by its id.
    """
    rows = session.execute(
        select(ITEMS.c.place, func.max(ITEMS.c.written_at))
        .where(ITEMS.c.platform == platform, ITEMS.c.received_at >= since, ITEMS.c.written_at.is_not(None))
        .group_by(ITEMS.c.place)
    ).all()
    return {place: written for place, written in rows if written is not None}


class InboxWorker:
    """Processes recorded events whose first processing failed, with backoff, until done or failed."""

    def __init__(self, concierge: Concierge, platforms: list[str], *, max_attempts: int = 10,
                 backoff_base_s: float = 1.0, backoff_cap_s: float = 300.0, lease_s: float = 60.0,
                 poll_interval_s: float = 1.0) -> None:
        self.concierge = concierge
        self.platforms = platforms
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.lease_s = lease_s
        self.poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def db(self) -> Database:
        return self.concierge.db

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Leave `run` after the event being processed (a clean shutdown)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Process due events until stopped; a database outage only delays the next round."""
        while not self._stopping:
            self._wake.clear()
            try:
                if await self.drain():
                    continue
            except Exception:
                log.exception("inbox round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Process every due event once; returns how many were tried."""
        now = self.concierge.clock.now()
        due = await self.db.run(lambda session: claim_due(
            session, now, now + timedelta(seconds=self.lease_s), self.platforms))
        for item in due:
            if self._stopping:  # the rest keep their lease; it runs out and any worker takes them
                break
            await self.process(item)
        return len(due)

    async def process(self, item: Due) -> None:
        try:
            await self.concierge.apply_recorded(item.id, item.event)
        except AlreadyHandled:
            return  # another worker finished it after our lease ran out
        except Exception as error:
            log.warning("processing inbound %s event %s failed (try %d): %s", item.event.address.platform,
                        item.event.event_id, item.attempts + 1, error)
            await self.db.run(partial(self._record_failure, item=item, error=error))

    def _record_failure(self, session: Session, item: Due, error: Exception) -> None:
        now = self.concierge.clock.now()
        attempts = item.attempts + 1
        detail = f"{type(error).__name__}: {error}"[:1000]
        values: dict[str, object] = {"attempts": attempts, "last_error": detail, "lease_until": None}
        if attempts >= self.max_attempts:
            values["status"] = "failed"
            self.concierge.report_failed_inbound(session, item.id, item.event, detail, now)
        else:
            values["status"] = "pending"
            values["next_attempt_at"] = now + timedelta(
                seconds=backoff_s(attempts, self.backoff_base_s, self.backoff_cap_s))
            if attempts >= STUCK_AFTER_ATTEMPTS and not item.member_told and isinstance(item.event, MemberMessage):
                values["member_told"] = True
                self.concierge.tell_member_we_are_on_it(session, item.id, item.event, now)
        session.execute(update(ITEMS).where(ITEMS.c.id == item.id, ITEMS.c.status == "processing"), values)


def on_it_message() -> Outbound:
    return Outbound(ON_IT)


def staff_notice(event: Inbound, item_id: int, detail: str) -> str:
    who = event.address.user or "someone"
    what = "A member's message" if isinstance(event, MemberMessage) else (
        "A staff reply" if isinstance(event, StaffReply) else "An inbound event")
    text = getattr(event, "text", "")
    excerpt = (text[:200] + "…") if len(text) > 200 else text
    return (f"{what} ({event.address.platform} user {who}) could not be processed and is kept for review "
            f"(inbox item {item_id}): {detail[:300]}\n> {excerpt}")


def dm_of(event: MemberMessage) -> Address:
    author = event.address
    return Address(author.platform, author.channel, author.user, workspace=author.workspace)
