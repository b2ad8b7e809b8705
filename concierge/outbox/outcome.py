"""How one send went: one small type per outcome, each carrying only what it needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from concierge.outbox.queue import Claimed
from concierge.platform import MessageRef


@dataclass
class _Outcome:
    item: Claimed
    recorded: bool = field(default=False, kw_only=True)  # already written (the dispatcher sets it)


@dataclass
class Sent(_Outcome):
    """Delivered (or found delivered by an earlier attempt): `ref` is the platform's message."""

    ref: MessageRef


@dataclass
class RetryLater(_Outcome):
    """A failure that may pass: retried with backoff, an attempt spent, until `max_attempts`."""

    error: str
    maybe_sent: bool = False  # the failed attempt may have reached the platform all the same


@dataclass
class RateLimited(_Outcome):
    """The platform said "slow down": try again after `retry_after` seconds, no attempt spent."""

    retry_after: float


@dataclass
class Failed(_Outcome):
    """Given up at once (unreachable, nowhere to send it): staff are told if it was for a member."""

    error: str


@dataclass
class Cancelled(_Outcome):
    """Not to be sent after all (its policy's check before sending refused it: consent withdrawn)."""

    reason: str


Outcome = Sent | RetryLater | RateLimited | Failed | Cancelled
