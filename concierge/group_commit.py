"""Group commit: units of work queued at the same moment share one transaction and one commit.

Under load many inbound events wait for the database at once. Run one by one, each pays for its
own session, BEGIN and COMMIT (on a real disk, its own sync). `GroupCommitter.run` queues the
unit; one runner on a database thread takes everything queued (up to `max_group`), runs the
units one after the other in one session and commits once; each caller gets its result only
after that commit, so nothing is answered before it is durable.

When a unit raises, the whole group is rolled back and each unit is run again alone, in its
own transaction, exactly as `Database.run` would have: the failing one fails alone and the
others commit. Units must therefore be safe to run again after a rollback (the core's are:
they only read and write through the session). One runner at a time: on PostgreSQL two groups
locking the same rows in different orders could otherwise deadlock each other.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from sqlmodel import Session

T = TypeVar("T")
Unit = tuple[Callable[[Session], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class GroupCommitter:
    """Runs queued units of work in shared transactions on `executor` (see the module's note)."""

    def __init__(self, executor: Executor, open_session: Callable[[], Session],
                 run_alone: Callable[[Callable[[Session], Any]], Any], max_group: int = 64) -> None:
        self.executor = executor
        self.open_session = open_session
        self.run_alone = run_alone
        self.max_group = max_group
        self.groups = 0  # groups committed (tests, the benchmark)
        self._queued: deque[Unit] = deque()
        self._lock = threading.Lock()
        self._running = False

    async def run(self, work: Callable[[Session], T]) -> T:
        return await self.submit(work)

    def submit(self, work: Callable[[Session], T]) -> asyncio.Future[T]:
        """Queue `work` now (ahead of whatever is queued after this call) and return its future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queued.append((work, future, loop))
            start = not self._running
            self._running = True
        if start:
            self.executor.submit(self._run_group)
        return future

    def _run_group(self) -> None:
        """On a database thread: run what is queued now as one group.

        What is queued meanwhile waits for the next group, submitted behind the work other callers
        queued on the executor in between (an outcome being recorded must not be overtaken).
        """
        with self._lock:
            units = [self._queued.popleft() for _ in range(min(self.max_group, len(self._queued)))]
        try:
            self._settle_all(units)
        finally:
            with self._lock:
                if self._queued:
                    try:
                        self.executor.submit(self._run_group)
                    except RuntimeError as error:  # the database is being closed: nothing more runs
                        while self._queued:
                            _, future, loop = self._queued.popleft()
                            _settle(future, loop, None, error)
                        self._running = False
                else:
                    self._running = False

    def _settle_all(self, units: list[Unit]) -> None:
        if len(units) > 1:
            try:
                results = self._run_together(units)
            except Exception:  # one unit failed, or the commit: each runs again alone, below
                pass
            else:
                _settle_many([(future, loop, result, None) for (_, future, loop), result in zip(units, results,
                                                                                                strict=True)])
                return
        for work, future, loop in units:
            try:
                _settle(future, loop, self.run_alone(work), None)
            except Exception as error:
                _settle(future, loop, None, error)

    def _run_together(self, units: list[Unit]) -> list[Any]:
        with self.open_session() as session:
            results = [work(session) for work, _, _ in units]
            session.commit()
        self.groups += 1
        return results


Settling = tuple["asyncio.Future[Any]", asyncio.AbstractEventLoop, Any, "BaseException | None"]


def _settle_many(settlings: list[Settling]) -> None:
    """Answer a committed group: one wake-up of each caller's loop for all its units, not one per unit
    (each `call_soon_threadsafe` writes to the loop's wake-up pipe and costs it a turn)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Settling]] = {}
    for settling in settlings:
        by_loop.setdefault(settling[1], []).append(settling)
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_now, batch)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting
            pass


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:  # noqa: ANN401
    if future.done():  # the caller was cancelled: the work was done all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _settle_now(batch: list[Settling]) -> None:
    for future, _, result, error in batch:
        _resolve(future, result, error)


def _settle(future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop, result: Any,  # noqa: ANN401
            error: BaseException | None) -> None:
    try:
        loop.call_soon_threadsafe(_resolve, future, result, error)
    except RuntimeError:  # the caller's loop is closed: nobody is waiting
        pass
