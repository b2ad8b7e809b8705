"""What a running bot counts, for Prometheus (`/metrics`): one `Metrics` per runtime, on its own registry.

The hooks are one call where the thing happens. Counts made inside a database transaction (a
relay, a first answer, an inbound event given up on) are kept on the session and applied only
once it commits: a transaction retried or rolled back counts nothing. The outbox backlog is read
from the database when Prometheus scrapes (`BacklogCollector`), at most once per `CACHE_S`.

Names (all prefixed `concierge_`): see `Metrics.__init__`; the README's PostgreSQL section says
what to watch.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session

from concierge.logs import handling

if TYPE_CHECKING:  # types only: the outbox and the inbound events import this module
    from concierge.inbound import Inbound
    from concierge.outbox.outcome import Outcome
    from concierge.outbox.queue import Claimed

log = logging.getLogger(__name__)

SESSION_KEY = "concierge.metrics"  # session.info: the runtime's Metrics, set by the core's front door
PENDING_KEY = "concierge.metrics.pending"  # session.info: counts waiting for the commit
# First-response time, seconds: a minute to a day (targets are minutes to hours).
FIRST_RESPONSE_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, float("inf"))
SEND_OUTCOMES = ("sent", "retried", "rate_limited", "failed", "cancelled")
CACHE_S = 5.0  # the backlog query runs at most this often, however often /metrics is scraped
R = TypeVar("R")


def inbound_kind(event: object) -> str:
    """`member_message`, `staff_reply`, `command_invoked`, `button_pressed`, `form_submitted`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


class Metrics:
    """The runtime's counters and histograms, registered on `registry` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.inbound = Counter("concierge_inbound_events", "Inbound events received, by platform, kind and outcome "
                               "(done, queued for a retry, duplicate, failed)", ["platform", "kind", "outcome"],
                               registry=r)
        self.relays = Counter("concierge_relays", "Messages relayed: member to staff (to_staff), staff to member "
                              "(to_member)", ["direction"], registry=r)
        self.sends = Counter("concierge_sends", "Outbox send attempts by platform and outcome "
                             f"({', '.join(SEND_OUTCOMES)})", ["platform", "outcome"], registry=r)
        self.rate_limited = Counter("concierge_platform_429", "Rate-limit answers (HTTP 429) from a platform",
                                    ["platform"], registry=r)
        self.digests = Counter("concierge_digest_deliveries", "Digest editions delivered to a member",
                               ["platform"], registry=r)
        self.first_response = Histogram("concierge_first_response_seconds", "Time from a conversation's opening "
                                        "to the first expert answer relayed, by specialty", ["specialty"],
                                        buckets=FIRST_RESPONSE_BUCKETS, registry=r)
        self.caught_up = Counter("concierge_catch_up_events", "Events recovered by a catch-up after downtime "
                                 "(read back and new)", ["platform"], registry=r)
        self.backlog: BacklogCollector | None = None  # `watch_backlog`
        self.inbox_failures = Counter("concierge_inbox_failures", "Inbound events given up on (staff are told)",
                                      ["platform"], registry=r)

    # Counted at once (outside a transaction).

    async def counted(self, event: Inbound, receiving: Awaitable[R]) -> R:
        """Await the core's handling of an inbound `event`; count it by its receipt's status, or `failed`."""
        platform, kind = event.address.platform, inbound_kind(event)
        try:
            receipt = await receiving
        except BaseException:
            self.count_inbound(platform, kind, "failed")
            raise
        self.count_inbound(platform, kind, getattr(receipt, "status", "done"))
        return receipt

    def count_inbound(self, platform: str, kind: str, outcome: str) -> None:
        self.inbound.labels(platform, kind, outcome).inc()

    def count_send(self, platform: str, outcome: str, *, digest: bool = False) -> None:
        self.sends.labels(platform, outcome).inc()
        if digest and outcome == "sent":
            self.digests.labels(platform).inc()

    def count_caught_up(self, platform: str, new: int) -> None:
        if new:
            self.caught_up.labels(platform).inc(new)

    def watch_backlog(self, read: Callable[[], tuple[int, datetime | None]], now: Callable[[], datetime]) -> None:
        """Report the outbox backlog at scrape time with `read()` (depth, oldest unsent creation time)."""
        self.backlog = BacklogCollector(read, now)
        self.registry.register(self.backlog)


class BacklogCollector(Collector):
    """`concierge_outbox_depth` and `concierge_outbox_oldest_unsent_age_seconds`, read when scraped.

    `/metrics` calls `refresh()` first, off the event loop and under a timeout (`concierge.health`):
    one aggregate query, at most once per `CACHE_S`. `collect()` itself never queries: when the last
    read failed or is stale, the two gauges are left out of the scrape (Prometheus sees them absent,
    not a number from before the outage) and `/readyz` says why.
    """

    def __init__(self, read: Callable[[], tuple[int, datetime | None]], now: Callable[[], datetime]) -> None:
        self.read = read
        self.now = now
        self._cached: tuple[float, tuple[int, datetime | None]] | None = None
        self._reading = threading.Lock()

    def _fresh(self) -> bool:
        return self._cached is not None and time.monotonic() - self._cached[0] <= max(CACHE_S, 30.0)

    def refresh(self) -> None:
        """Read the backlog again unless it was read less than `CACHE_S` ago (blocking: call it in a thread)."""
        if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_S:
            return
        if not self._reading.acquire(blocking=False):
            return  # a read still hangs: one at a time, whatever the scrapers do
        try:
            self._cached = (time.monotonic(), self.read())
        except Exception as error:
            self._cached = None
            log.warning("could not read the outbox backlog for /metrics: %s", type(error).__name__)
        finally:
            self._reading.release()

    def forget(self) -> None:
        """The read did not answer in time: leave the gauges out until one does."""
        self._cached = None

    def describe(self) -> list:  # no query at registration
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cached = self._cached
        if cached is None or not self._fresh():
            return
        depth, oldest = cached[1]
        yield GaugeMetricFamily("concierge_outbox_depth", "Outbox items not sent yet (pending, sending)", value=depth)
        age = max((self.now() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        yield GaugeMetricFamily("concierge_outbox_oldest_unsent_age_seconds",
                                "Age of the oldest outbox item not sent yet (0 when none)", value=age)


# Counted inside a transaction: applied when it commits.

def attach(session: Session, metrics: Metrics | None) -> None:
    """Let the hooks below count on `session` (the core's front door does this per transaction)."""
    if metrics is not None:
        session.info[SESSION_KEY] = metrics


def on_commit(session: Session, count: Callable[[Metrics], None]) -> None:
    """Apply `count` to the session's metrics once the transaction commits (not at all if it does not)."""
    metrics = session.info.get(SESSION_KEY)
    if metrics is not None:
        session.info.setdefault(PENDING_KEY, []).append(lambda: count(metrics))


def count_relay(session: Session, direction: str) -> None:
    on_commit(session, lambda metrics: metrics.relays.labels(direction).inc())


def observe_first_response(session: Session, specialty: str, opened_at: datetime | None, now: datetime) -> None:
    if opened_at is not None:
        seconds = max((now - opened_at).total_seconds(), 0.0)
        on_commit(session, lambda metrics: metrics.first_response.labels(specialty).observe(seconds))


def count_inbox_failure(session: Session, platform: str) -> None:
    on_commit(session, lambda metrics: metrics.inbox_failures.labels(platform).inc())


@event.listens_for(Session, "after_commit")
def _apply_pending(session: Session) -> None:
    for count in session.info.pop(PENDING_KEY, ()):
        count()


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous_transaction: object) -> None:
    session.info.pop(PENDING_KEY, None)


# The outbox's outcome types (`concierge.outbox.outcome`), by name: the core of the outbox imports this module.
OUTCOME_NAMES = {"Sent": "sent", "RetryLater": "retried", "RateLimited": "rate_limited", "Failed": "failed",
                 "Cancelled": "cancelled"}


def send_outcome(outcome: Outcome, max_attempts: int) -> str:
    """The `concierge_sends` outcome of one attempt; a retry that spends the last attempt is `failed`."""
    name = OUTCOME_NAMES.get(type(outcome).__name__, "failed")
    if name == "retried" and outcome.item.attempts + 1 >= max_attempts:
        return "failed"
    return name


async def observed_send(metrics: Metrics | None, item: Claimed, sending: Awaitable[Outcome],
                        max_attempts: int) -> Outcome:
    """The outbox's hook around one send: its log lines carry the item's ids; its outcome is counted."""
    with handling(conversation_id=item.conversation_id, outbox_item=item.id):
        outcome = await sending
    if metrics is not None:
        metrics.count_send(item.platform, send_outcome(outcome, max_attempts), digest=item.kind == "digest")
    return outcome


def count_429(metrics: Metrics | None, platform: str) -> None:
    """The outbox's hook where a platform answered "slow down" (HTTP 429)."""
    if metrics is not None:
        metrics.rate_limited.labels(platform).inc()
