"""What an outbox item is (its kind) and where it stands (its status), as stored.

The values are the strings the `outboxitem` table has always held: stored rows read the same.
"""

from __future__ import annotations

from enum import StrEnum


class OutboxKind(StrEnum):
    POST = "post"  # to a fixed address (a member's DM, a channel)
    OPEN_THREAD = "open_thread"  # the card that opens a conversation's staff thread
    THREAD_POST = "thread_post"  # into the conversation's staff thread, resolved at send time
    EDIT_CARD = "edit_card"  # redraw a conversation's staff card, drawn from the records at send time
    # A digest edition to a subscriber. The outbox only stores and claims it: how it is drawn and
    # whether it may still go is the delivery policy the digests register (`concierge.digests.delivery`).
    DIGEST = "digest"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # due at `next_attempt_at`
    SENDING = "sending"  # claimed by a worker until `lease_until`
    CONFIRMED = "confirmed"  # claimed, and its policy's check just before sending passed (`consent_checked_at`)
    SENT = "sent"
    FAILED = "failed"  # given up; staff told when it was a message to a member
    CANCELLED = "cancelled"  # not to be sent after all (consent withdrawn)


UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.CONFIRMED)
LEASED = (OutboxStatus.SENDING, OutboxStatus.CONFIRMED)  # held by a worker (a lease run out: the worker died)

# The kinds by their old names (`from concierge.outbox import POST` keeps working).
POST = OutboxKind.POST
OPEN_THREAD = OutboxKind.OPEN_THREAD
THREAD_POST = OutboxKind.THREAD_POST
EDIT_CARD = OutboxKind.EDIT_CARD
