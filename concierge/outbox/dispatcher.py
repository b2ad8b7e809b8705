"""The send loop: deliver claimed outbox items through the platforms, retrying what may succeed later.

Items come two ways. Hand-off (the hot path): the transaction that queues an item also claims it
when nothing earlier of its conversation is unsent, and gives it to this process's dispatcher in
memory (`hand_over`), so a relay costs a share of one more transaction (its outcome, written
with others while the next sends go out: `outcome_writer`), not a search. Scan: due rows are
claimed by `store.claim_due`. Kinds with a registered `DeliveryPolicy` (digests) get its message,
its check just before sending, its limiter and its answer to a 429.

Sending: up to `concurrency` messages at once, each to a different conversation or place; one
place's messages go one after the other, in order (`_send_all`). Outcomes are committed while the
next sends go out (`outcome_writer`), at most MAX_UNRECORDED uncommitted, those under way included.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial

from sqlmodel import Session

from concierge.clock import Clock
from concierge.database import Database
from concierge.metrics import Metrics, count_429, observed_send
from concierge.outbox import store
from concierge.outbox.kinds import OutboxKind
from concierge.outbox.outcome import Cancelled, Failed, Outcome, RateLimited, RetryLater, Sent
from concierge.outbox.outcome_writer import MAX_UNRECORDED, SLOW_SEND_S, OutcomeWriter
from concierge.outbox.policy import DeliveryPolicy, SendLimiter
from concierge.outbox.queue import Claimed
from concierge.platform import MessageRef, Outbound, Platform, PlatformDown, Unreachable
from concierge.platform import RateLimited as SlowDown
from concierge.retry import backoff_s

log = logging.getLogger(__name__)


class OutboxDispatcher:
    """Delivers outbox items through the platforms, retrying what may succeed later."""

    def __init__(
        self,
        db: Database,
        platforms: Mapping[str, Platform],
        *,
        clock: Clock,
        max_attempts: int = 10,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
        lease_s: float = 60.0,
        batch_size: int = 100,
        poll_interval_s: float = 1.0,
        concurrency: int = 4,
        jitter: Callable[[], float] = random.random,
        current_card: Callable[[Session, int], tuple[MessageRef, Outbound] | None] | None = None,
    ) -> None:
        self.db = db
        self.platforms = platforms
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.lease_s = lease_s
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        # Sends under way at once, to different destinations: a platform's round trip (50 to 300 ms)
        # would otherwise bound a process to a few messages a second. At most MAX_UNRECORDED.
        if not 1 <= concurrency <= MAX_UNRECORDED:
            raise ValueError(f"send concurrency must be from 1 to {MAX_UNRECORDED}, not {concurrency}")
        self.concurrency = concurrency
        self._sends_are_slow = True  # until a send shows otherwise: helpers take lanes (see `_send_all`)
        self.jitter = jitter
        self.current_card = current_card  # EDIT_CARD items: the card's message and what it should show now
        self._wake = asyncio.Event()
        self._handed: deque[Claimed] = deque()
        self._scan_wanted = True
        self._waiting: set[int] = set()  # conversations with items queued behind an unsent one
        # Per-platform send limiters (objects with an async `acquire()`, set by the scheduler). They
        # limit the kinds whose delivery policy takes them (bootstrap gives the digests' policy this
        # mapping): the digest fan-out, not the replies of a conversation.
        self.limiters: dict[str, SendLimiter] = {}
        self.policies: dict[str, DeliveryPolicy] = {}
        self._stopping = False
        # Outcomes of sends, committed while the next sends go out (one writer for every round: a
        # round that ends leaves its last outcomes committing, see `deliver_due`).
        self._outcomes = OutcomeWriter(lambda outcomes: self._write_outcomes(outcomes))
        self.metrics: Metrics | None = None  # the runtime's (bootstrap): sends by outcome, 429s

    def register(self, policy: DeliveryPolicy) -> None:
        """Deliver items of `policy.kind` under `policy` (see `concierge.outbox.policy`)."""
        self.policies[policy.kind] = policy

    def hand_over(self, claimed: list[Claimed], waiting: set[int]) -> None:
        """Take items claimed by the transaction that queued them, and wake the loop.

        `waiting` names conversations whose new items wait behind an unsent one: sending that
        one (or failing it) calls for a scan.
        """
        self._handed.extend(claimed)
        self._waiting |= waiting
        if waiting:  # the unsent one may have been sent and recorded already: only a scan finds these
            self._scan_wanted = True
        self._wake.set()

    def stop(self) -> None:
        """Finish the send in flight, record its outcome, and leave `run` (a clean shutdown, SIGTERM)."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        """Ask the running loop to look for due work now."""
        self._scan_wanted = True
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before try number `attempts + 1` (see `concierge.retry`)."""
        return backoff_s(attempts, self.backoff_base_s, self.backoff_cap_s, self.jitter)

    async def release_own_leases(self) -> int:
        """SQLite only (one process per file): leases left by this process's previous life are void."""
        if not self.db.is_sqlite:
            return 0
        return await self.db.run(store.release_all_leases)

    async def run(self) -> None:
        """Deliver forever: hand-offs at once, a scan when asked and every poll interval."""
        await self.release_own_leases()
        last_scan = 0.0
        while not self._stopping:
            self._wake.clear()
            scan = self._scan_wanted or time.monotonic() - last_scan >= self.poll_interval_s
            if scan:
                last_scan = time.monotonic()
            try:
                # Outcomes are left committing when the round ends: hand-offs arriving meanwhile go out at once.
                if await self.deliver_due(scan=scan, settle=False):
                    continue
            except Exception:  # the loop must survive a database hiccup
                log.exception("outbox round failed")
                self._scan_wanted = True
            if self._handed:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            except TimeoutError:
                pass
        try:
            await self._write_the_rest()
        except Exception:  # their items' leases run out, and the platform is asked before they go again
            log.exception("the last outcomes could not be written")

    async def drain(self) -> int:
        """Deliver everything due now (hand-offs and a scan); returns how many items were tried."""
        return await self.deliver_due(scan=True)

    async def deliver_due(self, scan: bool = True, settle: bool = True) -> int:
        """Send what was handed over (and, if `scan`, what is due), record, repeat while busy.

        Each outcome is written as soon as it is known, while the next sends go out; at most
        MAX_UNRECORDED sends are uncommitted at any moment, and after a crash each of those is
        checked with the platform before it is sent again (`maybe_sent`; see `outcome_writer`).
        A claim waits for them to be committed (it must not find them unsent); the next hand-offs
        do not. `settle`: return only once every outcome is committed (else the next round, or
        the end of `run`, waits for them)."""
        writer = self._outcomes
        batch = self._take_handed()
        scanned: set[int] = set()  # ids claimed by a scan: their conversations may have more queued
        if scan:
            self._scan_wanted = False
            found = await self._claim(writer)
            scanned = {item.id for item in found}
            batch += found
        total = 0
        while batch:
            total += len(batch)
            outcomes, untried = await self._send_all(batch, writer)
            if untried or self._stopping:  # shutting down: outcomes known are written, what was not tried goes back
                await self._write_the_rest()
                if untried:
                    await self.db.run(partial(store.release, items=untried))
                return total
            rescan = (self._scan_wanted or len(batch) >= self.batch_size
                      or any(not isinstance(o, (Sent, Cancelled)) or o.item.conversation_id in self._waiting
                             or (o.item.id in scanned and o.item.conversation_id is not None)
                             for o in outcomes))
            self._scan_wanted = False
            if not rescan:
                writer.flush()
                scanned = set()
                batch = self._take_handed()
                continue
            claimed = await self._claim(writer)
            # A conversation stops waiting once a scan after one of its sends finds nothing more.
            sent = {o.item.conversation_id for o in outcomes if isinstance(o, Sent)}
            self._waiting -= sent - {item.conversation_id for item in claimed}
            scanned = {item.id for item in claimed}
            batch = self._take_handed() + claimed
        if settle:
            await self._write_the_rest()
        return total

    async def _send_all(self, batch: list[Claimed], writer: OutcomeWriter) -> tuple[list[Outcome], list[Claimed]]:
        """Send `batch`, the items to one destination (a lane) one after the other in the batch's order.

        The lanes are taken one after the other by this coroutine; while sends take a network's round
        trip (the last one took `SLOW_SEND_S` or more), up to `concurrency - 1` helpers take lanes
        beside it. Sends that return at once (in memory) gain nothing from helpers and would pay
        for their tasks. Returns the outcomes, and the items not tried because the dispatcher is
        stopping (the sends under way finish first). A failed outcome write stops every lane at its
        next send and is raised once they have stopped; the items it left untried stay leased."""
        grouped: dict[object, list[Claimed]] = {}
        for item in batch:
            grouped.setdefault(_destination(item), []).append(item)
        lanes = deque(grouped.values())
        outcomes: dict[int, Outcome] = {}
        failures: list[Exception] = []
        helpers: list[asyncio.Future[None]] = []

        def help_if_slow() -> None:
            if self._sends_are_slow and not helpers and lanes and self.concurrency > 1:
                helpers.extend(asyncio.ensure_future(take_lanes())
                               for _ in range(min(self.concurrency - 1, len(lanes))))

        async def take_lanes() -> None:
            while lanes:
                for item in lanes.popleft():
                    if self._stopping or failures:
                        return
                    try:
                        await writer.room()
                    except Exception as error:
                        failures.append(error)
                        return
                    if failures:  # raised to another lane while this one waited
                        writer.abandon()
                        return
                    started = time.perf_counter()
                    try:
                        outcome = await observed_send(self.metrics, item, self._send(item), self.max_attempts)
                    except BaseException:
                        writer.abandon()
                        raise
                    send_s = time.perf_counter() - started
                    writer.add(outcome, send_s)
                    outcomes[item.id] = outcome
                    self._sends_are_slow = send_s >= SLOW_SEND_S
                    help_if_slow()

        help_if_slow()
        await take_lanes()
        if helpers:
            await asyncio.gather(*helpers)
        if failures:
            raise failures[0]
        return [outcomes[item.id] for item in batch if item.id in outcomes], [
            item for item in batch if item.id not in outcomes]

    async def _claim(self, writer: OutcomeWriter) -> list[Claimed]:
        """Claim what is due, in one transaction with the outcomes not yet written, once those being
        written are committed (on PostgreSQL writes run side by side: the claim must see them)."""
        if not self.db.is_sqlite:
            unwritten = await writer.settle()
            return await self._record_run(partial(self._record, outcomes=unwritten, scan=True))
        # SQLite: one database thread runs the units in the order they were queued, so a claim queued
        # behind the write in flight sees it committed without waiting for it first.
        claimed = await self._record_run(partial(self._record, outcomes=writer.take_waiting(), scan=True))
        try:
            await writer.settle()  # done by now: it was queued before the claim
        except Exception:  # its items' leases run out, and the platform is asked before they go again
            log.exception("outcomes could not be written")
        return claimed

    async def _write_the_rest(self) -> None:
        """Return once every outcome known is committed."""
        unwritten = await self._outcomes.settle()
        if unwritten:
            await self._record_run(partial(self._record, outcomes=unwritten, scan=False))

    def _record_run(self, work: Callable[[Session], list[Claimed]]) -> Awaitable[list[Claimed]]:
        """Where outcomes are written. SQLite (one database thread): in the group commit, sharing the
        commit of inbound messages queued meanwhile. PostgreSQL:
        a transaction of their own on the pool, side by side with the groups (one group runs at a time)."""
        return self.db.run_grouped(work) if self.db.is_sqlite else self.db.run(work)

    def _write_outcomes(self, outcomes: list[Outcome]) -> asyncio.Future[list[Claimed]]:
        """Queue the outcomes' write now, where `_record_run` would (the writer waits for it later)."""
        return self.db.submit(partial(self._record, outcomes=outcomes, scan=False), grouped=self.db.is_sqlite)

    def _take_handed(self) -> list[Claimed]:
        taken = list(self._handed)
        self._handed.clear()
        return taken

    def _claim_due(self, session: Session) -> list[Claimed]:
        return store.claim_due(session, now=self.clock.now(), platforms=self.platforms, limit=self.batch_size,
                               lease_s=self.lease_s, policies=self.policies)

    async def _send(self, item: Claimed) -> Outcome:
        platform = self.platforms.get(item.platform)
        if platform is None:
            return RetryLater(item, f"platform {item.platform!r} is not running")
        policy = self.policies.get(item.kind)
        if policy is not None:
            wait = policy.paused(item.platform, self.clock.now())
            if wait is not None:
                return RateLimited(item, wait)
            limiter = policy.limiter(item.platform)
            if limiter is not None:
                await limiter.acquire()
            if not await self.db.run(lambda session: self._confirm(session, policy, item)):
                return Cancelled(item, policy.refusal)
            wait = policy.paused(item.platform, self.clock.now())  # a send under way meanwhile got a 429
            if wait is not None:
                return RateLimited(item, wait)
        try:
            if not item.address.channel and item.address.user:
                item.address = await platform.open_dm(item.address)
            record_now = policy is not None and policy.records_each_send
            if item.maybe_sent:
                found = await self._find_sent(platform, item)
                if found is not None:
                    await self._complete_sent(platform, found, item)
                    return await self._sent(item, found, record_now)
            if record_now:
                # Recorded at once, not with the batch: a crash then repeats at most the one
                # message in flight (and that one carries the same idempotency key).
                return await self._sent(item, await platform.send(item.address, item.message), True)
            if item.kind == OutboxKind.OPEN_THREAD:
                return Sent(item, await platform.open_thread(item.address, item.message))
            if item.kind == OutboxKind.EDIT_CARD:
                return await self._edit_card(platform, item)
            if item.kind == OutboxKind.THREAD_POST and not item.address.thread:
                return Failed(item, "the staff thread of this conversation was never opened")
            return Sent(item, await platform.send(item.address, item.message))
        except SlowDown as error:
            count_429(self.metrics, item.platform)
            if policy is not None:  # e.g. the rest of a fan-out waits too, instead of hammering
                policy.rate_limited(item.platform, error.retry_after, self.clock.now())
            return RateLimited(item, max(error.retry_after, 0.0))
        except Unreachable as error:
            return Failed(item, str(error) or "unreachable")
        except PlatformDown as error:
            return RetryLater(item, str(error) or "platform down", maybe_sent=error.outcome_unknown)
        except Exception as error:  # an adapter bug must not lose the message: retry, bounded
            log.exception("unexpected error sending outbox item %s", item.id)
            return RetryLater(item, f"{type(error).__name__}: {error}", maybe_sent=True)

    def _confirm(self, session: Session, policy: DeliveryPolicy, item: Claimed) -> bool:
        """The policy's check just before sending, and the item marked confirmed in the same transaction."""
        now = self.clock.now()
        return policy.may_send(session, item, now) and store.confirm(session, item.id, now)

    async def _sent(self, item: Claimed, ref: MessageRef, record_now: bool) -> Sent:
        if record_now:
            await self.db.run(lambda session: store.mark_sent(session, item.id, ref, self.clock.now()))
        return Sent(item, ref, recorded=record_now)

    async def _edit_card(self, platform: Platform, item: Claimed) -> Outcome:
        """Redraw the card as the records say now (a later change then needs no edit of its own)."""
        current_card, conversation_id = self.current_card, item.conversation_id
        if current_card is None or conversation_id is None:
            return Failed(item, "nothing draws staff cards in this process")
        found = await self.db.run(lambda session: current_card(session, conversation_id))
        if found is None:
            return Failed(item, "the conversation's card was never posted")
        ref, message = found
        await platform.edit(ref, replace(message, idempotency_key=item.message.idempotency_key))
        return Sent(item, ref)

    async def _find_sent(self, platform: Platform, item: Claimed) -> MessageRef | None:
        """Ask the platform whether an earlier attempt of `item` arrived (when it can tell)."""
        find = getattr(platform, "find_sent", None)
        if find is None or item.kind == OutboxKind.EDIT_CARD:  # drawing a card again is harmless
            return None
        address = item.address
        if item.kind == OutboxKind.THREAD_POST and not address.thread:
            return None
        found = await find(address, item.message, opens_thread=item.kind == OutboxKind.OPEN_THREAD)
        if found is not None:
            log.info("outbox item %s had reached %s already: not sent again", item.id, item.platform)
        return found

    async def _complete_sent(self, platform: Platform, ref: MessageRef, item: Claimed) -> None:
        """What a send does after its post, if the attempt `find_sent` found was cut short (`CompletesSent`)."""
        complete = getattr(platform, "complete_sent", None)
        if complete is not None and item.message.files:
            await complete(ref, item.message)

    def _record(self, session: Session, outcomes: list[Outcome], scan: bool) -> list[Claimed]:
        """Write the outcomes; then, if asked, claim the next due batch in the same transaction."""
        if store.record(session, outcomes, self.clock.now(), max_attempts=self.max_attempts, backoff=self.backoff):
            self._scan_wanted = True
        return self._claim_due(session) if scan else []


def _destination(item: Claimed) -> object:
    """What a message's order is kept within: its conversation, else the place it goes to."""
    if item.conversation_id is not None:
        return item.conversation_id
    address = item.address
    return (address.platform, address.channel, address.thread) if address.channel else (address.platform, address.user)
