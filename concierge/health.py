"""What the health endpoints answer for one runtime: alive, ready (database and platforms), the metrics.

The HTTP side is `monitoring` (aiohttp, outside the core); this is what it asks. Readiness is
the database answering `SELECT 1` within `timeout_s` and every platform the process serves
connected (each `concierge.serve.Connection` says so with `connected()`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text
from sqlmodel import Session

from concierge.database import Database
from concierge.metrics import Metrics
from concierge.outbox import UNSENT
from concierge.records import OutboxItem
from concierge.tables import table_of

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0  # a database slower than this to say `SELECT 1` is not ready
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
_ITEMS = table_of(OutboxItem)
# One aggregate over the unsent rows (the `ix_outbox_due` index leads with the status).
_BACKLOG = select(func.count(), func.min(_ITEMS.c.created_at)).where(_ITEMS.c.status.in_(UNSENT))


def outbox_backlog(session: Session) -> tuple[int, datetime | None]:
    """How many outbox items are not sent yet, and when the oldest of them was queued."""
    depth, oldest = session.execute(_BACKLOG).one()
    return int(depth or 0), oldest


class Health:
    """The answers of `/healthz`, `/readyz` and `/metrics` for a runtime's database and metrics."""

    def __init__(self, db: Database, metrics: Metrics, *, timeout_s: float = READY_TIMEOUT_S) -> None:
        self.db = db
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.platforms: dict[str, Callable[[], bool]] = {}  # name: is it connected now?

    def watch(self, name: str, connected: Callable[[], bool]) -> None:
        """Count `name` in readiness: ready only while `connected()` is true."""
        self.platforms[name] = connected

    async def problems(self) -> dict[str, str]:
        """What keeps the process from being ready, by part (`database`, a platform); empty when ready."""
        found: dict[str, str] = {}
        try:
            # Its own thread, not the database's worker: a busy or stuck worker must not hide an answer.
            await asyncio.wait_for(asyncio.to_thread(self.db.run_sync, lambda session: session.execute(text("SELECT 1"))),
                                   self.timeout_s)
        except TimeoutError:
            found["database"] = f"no answer within {self.timeout_s:g} s"
        except Exception as error:
            found["database"] = f"unreachable ({type(error).__name__})"  # no URL, no password
        for name, connected in sorted(self.platforms.items()):
            try:
                if not connected():
                    found[name] = "not connected"
            except Exception as error:
                found[name] = f"unknown ({type(error).__name__})"
        return found

    async def metrics_text(self) -> bytes:
        """The Prometheus text exposition; the backlog is read first, off the event loop, within `timeout_s`."""
        backlog = self.metrics.backlog
        if backlog is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(backlog.refresh), self.timeout_s)
            except TimeoutError:
                backlog.forget()
                log.warning("the outbox backlog was not read within %g s: left out of /metrics", self.timeout_s)
        return await asyncio.to_thread(generate_latest, self.metrics.registry)
