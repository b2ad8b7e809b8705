"""Serving the platforms of one process from one runtime: one outbox, one inbox worker, one scheduler.

Each platform's adapter offers a `Connection` (`adapters.<name>.connect(settings, **options)`):
its `platform` is the port the outbox sends through, built before the runtime; `start(runtime)`
attaches the adapter's event side (Slack's bolt app, Discord's gateway client) to the shared
runtime. `serve` wires them and, on Ctrl-C or SIGTERM (the task is cancelled), stops them in the
order that loses nothing: no platform takes new events, what was acknowledged finishes, the
outbox and inbox workers finish the item in flight and record its outcome, the private words to
staff under way are said, and only then are the platforms' clients closed (the outbox sends
through them until the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from concierge.bootstrap import Runtime, adapter_names, build_runtime, load_adapter, staff_platform_for
from concierge.collector import freeze_startup_objects
from concierge.platform import Platform
from concierge.settings import Settings

log = logging.getLogger(__name__)

TOLD_TIMEOUT_S = 5.0  # longest the shutdown waits for private words to staff still under way


class Connection(Protocol):
    """One platform's event side, attached to a runtime it shares with the other platforms."""

    @property
    def platform(self) -> Platform:
        """The port the outbox sends through (its `name` is the platform's); read-only, so a connection may
        declare its own platform class."""

    async def start(self, runtime: Runtime) -> None:
        """Hand the platform's events to `runtime.concierge` from now on (connect, listen, catch up)."""

    async def wait(self) -> None:
        """Return, or raise, only when the connection ends by itself (a fatal error); else wait for ever."""

    async def stop(self) -> None:
        """Take no new events; return once every event already acknowledged has been handled."""

    async def close(self) -> None:
        """Release the platform's clients (after the outbox stopped: it sends through them)."""

    def connected(self) -> bool:
        """Whether the platform's events can reach us now (`/readyz`); a connection without it counts as connected."""


def settings_for(settings: Settings, names: list[str]) -> Settings:
    """`settings` with the staff channel's platform made explicit, so every adapter checks the same one.

    Refuses to start (SystemExit, with what to set) when several platforms are served and none is
    named, or when the one named is no platform at all.
    """
    staff = staff_platform_for(settings, names)
    if staff not in adapter_names():
        raise SystemExit(f"CONCIERGE_STAFF_PLATFORM is {staff!r}; choose from {', '.join(adapter_names())}.")
    return settings.model_copy(update={"staff_platform": staff})


async def serve(settings: Settings, names: list[str], **options: object) -> None:
    """Serve the platforms `names` in this process until cancelled; `options` go to every adapter's
    `connect` (`http=True`: Slack's HTTP events mode). The database is migrated by the caller."""
    settings = settings_for(settings, names)
    connections: list[Connection] = []
    try:
        for name in names:
            connections.append(await load_adapter(name).connect(settings, **options))
    except BaseException:
        await _close(connections)
        raise
    await serve_connections(settings, connections)


async def serve_connections(settings: Settings, connections: list[Connection]) -> None:
    """Run one runtime for `connections` until cancelled or until one of them fails; then stop cleanly."""
    try:
        runtime = build_runtime(settings, {connection.platform.name: connection.platform
                                           for connection in connections})
    except BaseException:
        await _close(connections)
        raise
    freeze_startup_objects()  # what startup built stays out of every later full collection (a 65 ms stall)
    # The outbox and inbox workers and the digest scheduler: once for the process, whatever it serves.
    for connection in connections:  # /readyz: ready while every platform is connected
        if runtime.health is not None:
            runtime.health.watch(connection.platform.name, getattr(connection, "connected", lambda: True))
    try:
        await runtime.open_endpoint()  # CONCIERGE_METRICS_PORT: /metrics, /healthz, /readyz
    except BaseException:
        await _close(connections)
        runtime.close()
        raise
    background = asyncio.create_task(runtime.run_background(), name="concierge-background")
    started: list[Connection] = []
    try:
        for connection in connections:
            await connection.start(runtime)
            started.append(connection)
        await _until_one_ends(started)
    finally:
        # Ctrl-C or SIGTERM (or a platform failed): no platform takes new events, and what each
        # acknowledged finishes (all at once); then the send and the event in flight finish and are recorded.
        stopped = await asyncio.gather(*(connection.stop() for connection in started), return_exceptions=True)
        for connection, outcome in zip(started, stopped, strict=True):
            if isinstance(outcome, Exception):
                log.error("stopping %s failed", connection.platform.name, exc_info=outcome)
        await runtime.stop_background(background)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runtime.concierge.told(), TOLD_TIMEOUT_S)
        await _close(connections)
        await runtime.close_endpoint()
        runtime.close()


async def _close(connections: list[Connection]) -> None:
    for connection in connections:
        try:
            await connection.close()
        except Exception:
            log.exception("closing %s failed", connection.platform.name)


async def _until_one_ends(connections: list[Connection]) -> None:
    """Wait until a connection ends by itself (raising what ended it); cancelling this waits no more."""
    waiting = [asyncio.create_task(connection.wait(), name=f"concierge-{connection.platform.name}-connection")
               for connection in connections]
    try:
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    for task in done:
        task.result()
