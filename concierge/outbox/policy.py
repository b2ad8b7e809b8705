"""What a kind of outbox item may add to its delivery: registered by its owner through bootstrap.

The outbox knows how to store, claim, send and record any item. A kind that needs more (today:
digest deliveries, see `concierge.digests.delivery`) registers a `DeliveryPolicy` with the
dispatcher: the message is drawn from the records when the item is claimed, a check runs just
before sending (and cancels the item when it fails), sends go through a per-platform limiter,
and a 429 may hold back the rest of the kind's sends on that platform.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from concierge.outbox.queue import Claimed
from concierge.platform import Outbound
from concierge.records import OutboxItem


class SendLimiter(Protocol):
    """A rate limiter: `acquire()` returns when one more send is allowed."""

    async def acquire(self) -> None: ...


class DeliveryPolicy(Protocol):
    kind: str  # the outbox kind it governs
    refusal: str  # the reason recorded when `may_send` says no
    # Each send recorded as soon as it is known, not with the batch (a fan-out: a crash repeats
    # at most the one message in flight).
    records_each_send: bool

    def draw(self, session: Session, row: OutboxItem) -> tuple[Outbound, Any]:
        """At claim time: the message to send, and what `may_send` needs later (`Claimed.context`)."""
        ...

    def may_send(self, session: Session, item: Claimed, now: datetime) -> bool:
        """Just before sending, in the transaction that marks the item confirmed: may it still go?"""
        ...

    def limiter(self, platform: str) -> SendLimiter | None:
        """Waited on before each send of this kind through `platform` (None: no limit)."""
        ...

    def paused(self, platform: str, now: datetime) -> float | None:
        """Seconds this kind's sends through `platform` wait still (after a 429), or None."""
        ...

    def rate_limited(self, platform: str, retry_after: float, now: datetime) -> None:
        """The platform said "slow down" (429) to a send of this kind."""
        ...
