"""The digest tick: compose due editions, plan due subscriptions in batches, wake the outbox.

There is one apscheduler job (an interval tick), not one per subscription: what is due lives in
the subscriptions' `next_due_at` index, so a tick missed during a restart is found by the next.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from concierge.clock import Clock
from concierge.database import Database
from concierge.desk import close_idle
from concierge.digests.catalogue import compose_due_editions
from concierge.digests.planner import plan_all_due
from concierge.duty import escalate_overdue
from concierge.file_sweep import referenced, sweep_unused
from concierge.files import FileStore
from concierge.outbox.dispatcher import OutboxDispatcher
from concierge.people import Context
from concierge.platform import Address
from concierge.settings import Settings
from concierge.transcripts import purge_older_than
from scheduling.leader import Leadership

log = logging.getLogger(__name__)

PURGE_EVERY = timedelta(hours=1)  # retention is counted in days; an hourly look is plenty


class DigestScheduler:
    def __init__(self, db: Database, dispatcher: OutboxDispatcher, settings: Settings, clock: Clock,
                 batch_size: int = 50000) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock
        self.batch_size = batch_size
        self.leadership = Leadership(db.engine)
        self.scheduler: AsyncIOScheduler | None = None
        self._next_purge_at: datetime | None = None

    async def tick(self) -> int:
        """Plan everything due now; returns how many subscriptions were looked at."""
        if not await self.db.run(lambda session: self.leadership.try_lead()):
            return 0
        now = self.clock.now()
        editions = await self.db.run(lambda session: compose_due_editions(session, now))
        total = await plan_all_due(self.db.run, now, limit=self.batch_size,
                                   max_per_day=self.settings.digest_max_per_day)
        if editions or total:
            log.info("digest tick: %d editions composed, %d subscriptions planned", len(editions), total)
            self.dispatcher.wake()
        paged = await self.db.run(lambda session: escalate_overdue(session, now, self.settings.admins))
        if paged:
            log.info("escalation: %d conversations over their response target", paged)
            self.dispatcher.wake()
        if idle_hours := self.settings.auto_close_hours:
            closed = await self.db.run(lambda session: close_idle(
                session, Context(settings=self.settings, now=now, staff=Address("", "")), idle_hours))
            if closed:
                log.info("auto-close: %d idle conversations closed", closed)
                self.dispatcher.wake()
        if self._next_purge_at is None or now >= self._next_purge_at:  # the hourly housekeeping
            self._next_purge_at = now + PURGE_EVERY
            await self.purge(now)
            await self.sweep_files()
        return total

    async def purge(self, now: datetime) -> None:
        """Retention (`CONCIERGE_RETENTION_DAYS`): texts of conversations idle since before the cutoff go."""
        if not self.settings.retention_days:
            return
        cutoff = now - timedelta(days=self.settings.retention_days)
        store = FileStore.from_settings(self.settings)  # files no other message has go with the texts
        purged = await self.db.run(lambda session: purge_older_than(session, cutoff, actor="retention", now=now,
                                                                    store=store))
        if purged:
            log.info("retention: %d message texts purged (idle since before %s)", purged, cutoff.isoformat())

    async def sweep_files(self) -> int:
        """Delete stored bytes nothing refers to any more (`concierge.file_sweep`); how many went."""
        store = FileStore.from_settings(self.settings)
        keep = await self.db.read(referenced)  # every stored file's hash: beside the writer (see `Database.read`)
        swept = await asyncio.to_thread(sweep_unused, store, keep)
        if swept:
            log.info("files: %d stored files no record uses were deleted", swept)
        return swept

    async def scheduled_tick(self) -> None:
        """The scheduler's job: one `tick`. A shutdown (APScheduler's) cancels it between two transactions; each
        step is a transaction of its own and what is due stays due, so the next start does the rest.
        The cancellation ends here: raised into APScheduler, it was logged as a failed job."""
        try:
            await self.tick()
        except asyncio.CancelledError:
            log.info("digest tick stopped by the shutdown; the next start picks up what is left")

    def start(self) -> None:
        """Run `tick` every `digest_tick_s` seconds on the running event loop."""
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_job(self.scheduled_tick, "interval", seconds=self.settings.digest_tick_s, id="digest-tick",
                               max_instances=1, coalesce=True, next_run_time=self.clock.now())
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        self.leadership.release()
