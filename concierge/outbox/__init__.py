"""Transactional outbox: queue messages with the change that caused them, deliver them once.

- `kinds`: what an item is and where it stands (`OutboxKind`, `OutboxStatus`).
- `queue`: the one module that writes outbox rows (`enqueue`, the hand-off, `enqueue_fan_out`).
- `store`: claiming due rows with a lease (SKIP LOCKED), giving back, recording outcomes.
- `dispatcher`: the send loop (`OutboxDispatcher`).
- `outcome`: how one send went (`Sent`, `RetryLater`, `RateLimited`, `Failed`, `Cancelled`).
- `policy`: what a kind may add to its delivery (`DeliveryPolicy`, `SendLimiter`); the digests
  register theirs through bootstrap. The outbox itself knows no digest.
"""

from concierge.outbox.dispatcher import OutboxDispatcher
from concierge.outbox.kinds import EDIT_CARD, LEASED, OPEN_THREAD, POST, THREAD_POST, UNSENT, OutboxKind, OutboxStatus
from concierge.outbox.outcome import Cancelled, Failed, Outcome, RateLimited, RetryLater, Sent
from concierge.outbox.policy import DeliveryPolicy, SendLimiter
from concierge.outbox.queue import (
    ITEMS,
    Claimed,
    HandOff,
    begin_hand_off,
    end_hand_off,
    enqueue,
    enqueue_fan_out,
    forget_queued,
)

__all__ = [
    "EDIT_CARD", "ITEMS", "LEASED", "OPEN_THREAD", "POST", "THREAD_POST", "UNSENT",
    "Cancelled", "Claimed", "DeliveryPolicy", "Failed", "HandOff", "OutboxDispatcher", "OutboxKind", "OutboxStatus",
    "Outcome", "RateLimited", "RetryLater", "SendLimiter", "Sent",
    "begin_hand_off", "end_hand_off", "enqueue", "enqueue_fan_out", "forget_queued",
]
