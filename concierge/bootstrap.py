"""The one place that wires database, platforms, core and outbox together."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from concierge.app import Concierge
from concierge.cards import current_card
from concierge.clock import Clock
from concierge.database import Database
from concierge.digests.delivery import DigestDelivery
from concierge.health import Health, outbox_backlog
from concierge.inbox import InboxWorker
from concierge.metrics import Metrics
from concierge.outbox.dispatcher import OutboxDispatcher
from concierge.platform import Address, Platform
from concierge.send_budget import SharedSendBudget
from concierge.settings import Settings


class Endpoint(Protocol):
    """The /metrics, /healthz and /readyz server (`monitoring`, found at run time)."""

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    """A wired bot: feed `concierge.receive`; `run_background()` runs the outbox and the inbox workers."""

    db: Database
    concierge: Concierge
    dispatcher: OutboxDispatcher
    inbox: InboxWorker
    metrics: Metrics = field(default_factory=Metrics)  # what /metrics serves (its own registry)
    health: Health | None = None  # what /healthz and /readyz answer
    endpoint: Endpoint | None = None  # the running `monitoring.Endpoint`, if any

    async def open_endpoint(self) -> None:
        """With CONCIERGE_METRICS_PORT set, serve /metrics, /healthz and /readyz (`monitoring`) until
        `close_endpoint`; a port already taken raises here, before the bot starts."""
        settings = self.concierge.settings
        if settings.metrics_port is not None and self.health is not None and self.endpoint is None:
            self.endpoint = await importlib.import_module("monitoring").start(  # found at run time: aiohttp
                self.health, settings.metrics_host, settings.metrics_port)   # is no dependency of the core

    async def close_endpoint(self) -> None:
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            await endpoint.stop()

    async def run_background(self) -> None:
        """The outbox loop and, when the `scheduling` package is installed, the digest scheduler."""
        scheduler = None
        try:
            scheduling = importlib.import_module("scheduling")  # found at run time, like adapters
        except ModuleNotFoundError:
            scheduling = None
        if scheduling is not None:
            scheduler = scheduling.attach(self)
            scheduler.start()
        inbox = asyncio.create_task(self.inbox.run(), name="concierge-inbox")
        try:
            await self.dispatcher.run()
            await inbox
        finally:
            inbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inbox
            if scheduler is not None:
                scheduler.shutdown()

    async def stop_background(self, task: asyncio.Task[None], timeout_s: float = 10.0) -> None:
        """Stop `run_background` cleanly: the send and the event in flight finish and their outcomes
        are recorded; cancelled only if that takes longer than `timeout_s`."""
        self.dispatcher.stop()
        self.inbox.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:  # the loop's own failure was logged where it happened
            pass

    async def drain(self) -> int:
        """Process due inbound events and deliver what is due (tests and the playground); how many were tried."""
        tried = await self.inbox.drain() + await self.dispatcher.drain()
        await self.concierge.told()
        return tried

    def close(self) -> None:
        self.db.close()


def build_runtime(
    settings: Settings,
    platforms: Mapping[str, Platform],
    *,
    db: Database | None = None,
    clock: Clock | None = None,
) -> Runtime:
    """Wire a runtime for `platforms` (the staff channel's platform: see `staff_platform_for`)."""
    staff_platform = staff_platform_for(settings, list(platforms))
    clock = clock or Clock()
    db = db or Database.from_url(settings.database_url.get_secret_value(), synchronous=settings.sqlite_synchronous)
    share_send_budgets(db, platforms)
    metrics = Metrics()
    metrics.watch_backlog(lambda: db.run_sync(outbox_backlog), clock.now)
    dispatcher = OutboxDispatcher(
        db,
        platforms,
        clock=clock,
        max_attempts=settings.outbox_max_attempts,
        backoff_base_s=settings.outbox_backoff_base_s,
        backoff_cap_s=settings.outbox_backoff_cap_s,
        lease_s=settings.outbox_lease_s,
        concurrency=settings.outbox_send_concurrency,
        current_card=current_card,
    )
    # Digest editions go out under the digests' policy: drawn from the edition, consent checked just
    # before sending, the scheduler's per-platform limiters (`dispatcher.limiters`), a 429 pausing the fan-out.
    dispatcher.register(DigestDelivery(dispatcher.limiters))
    dispatcher.metrics = metrics
    concierge = Concierge(
        db,
        settings,
        staff=Address(staff_platform, settings.staff_channel),
        clock=clock,
        on_queued=dispatcher.hand_over,
        platforms=platforms,
        metrics=metrics,
        upload_limits=upload_limits(),
    )
    inbox = InboxWorker(
        concierge,
        list(platforms),
        max_attempts=settings.inbox_max_attempts,
        backoff_base_s=settings.outbox_backoff_base_s,
        backoff_cap_s=settings.outbox_backoff_cap_s,
        lease_s=settings.outbox_lease_s,
    )
    concierge.on_recorded = inbox.wake
    return Runtime(db=db, concierge=concierge, dispatcher=dispatcher, inbox=inbox, metrics=metrics,
                   health=Health(db, metrics))


def share_send_budgets(db: Database, platforms: Mapping[str, Platform]) -> None:
    """On PostgreSQL, a platform that paces some of its calls itself (Discord: opening DMs) takes the pace
    from a budget shared by all the bot's processes (`concierge.send_budget`); on SQLite it keeps its own."""
    if db.is_sqlite:
        return
    for platform in platforms.values():
        share = getattr(platform, "share_budgets", None)
        if share is not None:
            share(lambda key, rate_per_s, burst: SharedSendBudget(db, key, rate_per_s, burst).reserve)


def staff_platform_for(settings: Settings, names: list[str]) -> str:
    """The platform of the staff channel: CONCIERGE_STAFF_PLATFORM, else the one platform served.

    With several platforms served and no setting, which side holds the staff threads cannot be
    guessed: the bot refuses to start and says what to set.
    """
    if settings.staff_platform:
        return settings.staff_platform
    if len(names) > 1:
        raise SystemExit(
            f"{' and '.join(names)} are configured, so the staff channel's platform is not clear: set "
            f"CONCIERGE_STAFF_PLATFORM to the platform where experts answer ({' or '.join(names)}); "
            "members write from any of them.")
    return names[0]


def adapter_names() -> list[str]:
    """The platform folders under `adapters/` (a new platform is a new folder)."""
    package = importlib.import_module("adapters")  # found at run time: the core names no adapter
    return sorted(module.name for module in pkgutil.iter_modules(package.__path__) if module.ispkg)


def upload_limits() -> dict[str, int]:
    """Each platform's upload limit in bytes, as its adapter package declares it (`MAX_FILE_BYTES`).

    Known for every platform, not only those this process serves: with one process per platform, a
    file relayed to the other platform is checked against that platform's limit when it is relayed,
    so its sender and staff are told at once (nothing is dropped later at send time).
    """
    limits = {}
    for name in adapter_names():
        limit = getattr(load_adapter(name), "MAX_FILE_BYTES", None)
        if isinstance(limit, int):
            limits[name] = limit
    return limits


def load_adapter(name: str) -> ModuleType:
    """Import `adapters.<name>`; each adapter exposes `is_configured()` and `async run(settings)`, and
    a platform served beside others `async connect(settings, **options)` (see `concierge.serve`)."""
    return importlib.import_module(f"adapters.{name}")


def choose_platforms(settings: Settings) -> list[str]:
    """The platforms to serve: the one the setting names, else every adapter with tokens, else local."""
    if settings.platform != "auto":
        return [settings.platform]
    configured = [name for name in adapter_names() if name != "local" and load_adapter(name).is_configured()]
    return configured or ["local"]
