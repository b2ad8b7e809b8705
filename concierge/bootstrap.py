"""The one place that wires database, platforms, core and outbox together."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Mapping

from concierge.app import Concierge
from concierge.clock import Clock
from concierge.database import Database
from concierge.outbox import OutboxDispatcher
from concierge.platform import Address, Platform
from concierge.settings import Settings


@dataclass
class Runtime:
    """A wired bot: feed `concierge.handle`, run `dispatcher.run()`."""

    db: Database
    concierge: Concierge
    dispatcher: OutboxDispatcher

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
        try:
            await self.dispatcher.run()
        finally:
            if scheduler is not None:
                scheduler.shutdown()

    def close(self) -> None:
        self.db.close()


def build_runtime(
    settings: Settings,
    platforms: Mapping[str, Platform],
    *,
    db: Database | None = None,
    clock: Clock | None = None,
) -> Runtime:
    """Wire a runtime for `platforms` (the first one hosts the staff channel unless set)."""
    clock = clock or Clock()
    db = db or Database.from_url(settings.database_url.get_secret_value())
    staff_platform = settings.staff_platform or next(iter(platforms))
    dispatcher = OutboxDispatcher(
        db,
        platforms,
        clock=clock,
        max_attempts=settings.outbox_max_attempts,
        backoff_base_s=settings.outbox_backoff_base_s,
        backoff_cap_s=settings.outbox_backoff_cap_s,
        lease_s=settings.outbox_lease_s,
    )
    concierge = Concierge(
        db,
        settings,
        staff=Address(staff_platform, settings.staff_channel),
        clock=clock,
        on_queued=dispatcher.hand_over,
    )
    return Runtime(db=db, concierge=concierge, dispatcher=dispatcher)


def adapter_names() -> list[str]:
    """The platform folders under `adapters/` (a new platform is a new folder)."""
    package = importlib.import_module("adapters")  # found at run time: the core names no adapter
    return sorted(module.name for module in pkgutil.iter_modules(package.__path__) if module.ispkg)


def load_adapter(name: str):
    """Import `adapters.<name>`; each adapter exposes `is_configured()` and `async run(settings)`."""
    return importlib.import_module(f"adapters.{name}")


def choose_platform(settings: Settings) -> str:
    """The platform to run: the setting, else the first adapter with tokens, else local."""
    if settings.platform != "auto":
        return settings.platform
    for name in adapter_names():
        if name != "local" and load_adapter(name).is_configured():
            return name
    return "local"
