"""How digest editions go out through the outbox: the digests' delivery policy.

Registered with the dispatcher by bootstrap (the outbox knows no digest):
- the message is drawn from the edition when the item is claimed (once per edition per process);
- just before sending, consent must still be in force (`consent.in_force`). Unsubscribing
  cancels every unconfirmed item in the transaction that records the revocation, so either the
  check sees the cancellation, or the revocation comes after the confirmation (which
  `consent_checked_at` records for the audit);
- sends go through the per-platform limiter (`limiters`, set by the scheduler);
- a 429 holds back the rest of the fan-out on that platform for its Retry-After, instead of hammering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from concierge.digests.catalogue import render
from concierge.digests.consent import in_force
from concierge.outbox.kinds import OutboxKind
from concierge.outbox.policy import SendLimiter
from concierge.outbox.queue import Claimed
from concierge.platform import Button, Card, Outbound
from concierge.records import Digest, DigestEdition, OutboxItem


@dataclass(frozen=True)
class Recipient:
    """Whose consent a claimed digest item needs, for which digest (`Claimed.context`)."""

    member_id: int | None
    digest_id: int | None


class DigestDelivery:
    kind: str = OutboxKind.DIGEST
    refusal: str = "no consent in force"
    records_each_send: bool = True

    def __init__(self, limiters: Mapping[str, SendLimiter]) -> None:
        self.limiters = limiters
        self._paused_until: dict[str, datetime] = {}
        self._editions: dict[int, Outbound] = {}

    def draw(self, session: Session, row: OutboxItem) -> tuple[Outbound, Recipient]:
        assert row.edition_id is not None  # digest items are queued by the planner, one per edition and member
        return self._edition_message(session, row.edition_id), Recipient(row.member_id, row.digest_id)

    def may_send(self, session: Session, item: Claimed, now: datetime) -> bool:
        recipient = item.context
        if not isinstance(recipient, Recipient) or recipient.member_id is None or recipient.digest_id is None:
            return False
        return in_force(session, recipient.member_id, recipient.digest_id, now)

    def limiter(self, platform: str) -> SendLimiter | None:
        return self.limiters.get(platform)

    def paused(self, platform: str, now: datetime) -> float | None:
        resume = self._paused_until.get(platform)
        return (resume - now).total_seconds() if resume is not None and resume > now else None

    def rate_limited(self, platform: str, retry_after: float, now: datetime) -> None:
        self._paused_until[platform] = now + timedelta(seconds=retry_after)

    def _edition_message(self, session: Session, edition_id: int) -> Outbound:
        """A digest message: the edition's text, the text form of unsubscribing, and its button."""
        cached = self._editions.get(edition_id)
        if cached is not None:
            return cached
        edition = session.get(DigestEdition, edition_id)
        assert edition is not None
        digest = session.get(Digest, edition.digest_id)
        assert digest is not None
        message = Outbound(
            render(digest.title, digest.slug, edition.number, edition.text),
            Card(title=f"{digest.title} #{edition.number}",
                 buttons=(Button("Unsubscribe", "unsubscribe", digest.slug, "danger"),)),
        )
        self._editions[edition_id] = message
        return message
