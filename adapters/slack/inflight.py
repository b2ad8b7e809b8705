"""Work still running after Slack was acknowledged, counted so tests and shutdown can wait for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class InFlight:
    """Counts work still running after its acknowledgement (tests and shutdown wait for it)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task] = set()

    async def wait(self, timeout: float | None = None) -> None:
        """Return once nothing is in flight; a listener scheduled just now gets to start first."""
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(self._idle.wait(), timeout)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        """Run `work` after the acknowledgement, counted until it ends (its errors are logged)."""

        async def tracked() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)
            finally:
                self._done()

        self._count += 1
        self._idle.clear()
        task = asyncio.create_task(tracked(), name=name)
        self._tasks.add(task)  # keep a reference until it ends
        task.add_done_callback(self._tasks.discard)
        return task

    def _done(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()
