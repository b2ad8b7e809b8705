"""The one place that wires database, platforms, core and outbox together."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass

from concierge.app import Concierge
from concierge.cards import current_card
from concierge.clock import Clock
from concierge.database import Database
from concierge.inbox import InboxWorker
from concierge.outbox import OutboxDispatcher
from concierge.platform import Address, Platform
from concierge.settings import Settings


@dataclass
class Runtime:
    """A wired bot: feed `concierge.receive`; `run_background()` runs the outbox and the inbox workers."""

    db: Database
    concierge: Concierge
    dispatcher: OutboxDispatcher
    inbox: InboxWorker

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
    dispatcher = OutboxDispatcher(
        db,
        platforms,
        clock=clock,
        max_attempts=settings.outbox_max_attempts,
        backoff_base_s=settings.outbox_backoff_base_s,
        backoff_cap_s=settings.outbox_backoff_cap_s,
        lease_s=settings.outbox_lease_s,
        current_card=current_card,
    )
    concierge = Concierge(
        db,
        settings,
        staff=Address(staff_platform, settings.staff_channel),
        clock=clock,
        on_queued=dispatcher.hand_over,
        platforms=platforms,
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
    return Runtime(db=db, concierge=concierge, dispatcher=dispatcher, inbox=inbox)


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


def load_adapter(name: str):
    """Import `adapters.<name>`; each adapter exposes `is_configured()` and `async run(settings)`, and
    a platform served beside others `async connect(settings, **options)` (see `concierge.serve`)."""
    return importlib.import_module(f"adapters.{name}")


def choose_platforms(settings: Settings) -> list[str]:
    """The platforms to serve: the one the setting names, else every adapter with tokens, else local."""
    if settings.platform != "auto":
        return [settings.platform]
    configured = [name for name in adapter_names() if name != "local" and load_adapter(name).is_configured()]
    return configured or ["local"]
