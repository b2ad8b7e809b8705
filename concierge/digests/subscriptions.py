"""Subscribing and unsubscribing: each change is a consent event and takes effect at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from concierge.digests import consent
from concierge.digests.cadence import Cadence, next_due
from concierge.digests.catalogue import digest_named, latest_edition_id
from concierge.errors import Refused
from concierge.outbox.kinds import OutboxStatus
from concierge.records import Digest, OutboxItem, Subscription
from concierge.tables import rows_affected, saved_id, table_of

ITEMS = table_of(OutboxItem)


def cadence_of(subscription: Subscription) -> Cadence:
    return Cadence(every=subscription.cadence, weekday=subscription.weekday,
                   day_of_month=subscription.day_of_month, hour=subscription.hour,
                   time_zone=subscription.time_zone, quiet_start=subscription.quiet_start,
                   quiet_end=subscription.quiet_end)


def subscribe(session: Session, *, member_id: int, slug: str, cadence: Cadence, platform: str, user_id: str,
              how: str, actor: str, policy_version: str, now: datetime) -> tuple[Subscription, Digest]:
    """Grant consent and (re)start deliveries; new subscribers get editions from now on."""
    digest = digest_named(session, slug)
    subscription = session.exec(select(Subscription).where(
        Subscription.member_id == member_id, Subscription.digest_id == digest.id)).first()
    if subscription is None:
        subscription = Subscription(member_id=member_id, digest_id=saved_id(digest), platform=platform, user_id=user_id,
                                    created_at=now, updated_at=now)
        session.add(subscription)
    was_active = subscription.active and subscription.id is not None
    subscription.active = True
    subscription.cadence = cadence.every
    subscription.weekday = cadence.weekday
    subscription.day_of_month = cadence.day_of_month
    subscription.hour = cadence.hour
    subscription.time_zone = cadence.time_zone
    subscription.quiet_start = cadence.quiet_start
    subscription.quiet_end = cadence.quiet_end
    subscription.platform = platform
    subscription.user_id = user_id
    subscription.updated_at = now
    subscription.next_due_at = next_due(cadence, now)
    if not was_active:
        subscription.last_edition_id = latest_edition_id(session, saved_id(digest))
        consent.record(session, member_id=member_id, digest_id=saved_id(digest), action=consent.GRANTED, how=how,
                       platform=platform, actor=actor, policy_version=policy_version, at=now)
    session.flush()
    return subscription, digest


def unsubscribe(session: Session, *, member_id: int, slug: str, how: str, platform: str, actor: str,
                policy_version: str, now: datetime) -> Digest:
    """Revoke consent; deliveries not yet confirmed for sending are cancelled in the same transaction."""
    digest = digest_named(session, slug, active_only=False)
    subscription = session.exec(select(Subscription).where(
        Subscription.member_id == member_id, Subscription.digest_id == digest.id)).first()
    if subscription is None or not subscription.active:
        raise Refused(f"You are not subscribed to `{digest.slug}`.")
    subscription.active = False
    subscription.next_due_at = None
    subscription.updated_at = now
    consent.record(session, member_id=member_id, digest_id=saved_id(digest), action=consent.REVOKED, how=how,
                   platform=platform, actor=actor, policy_version=policy_version, at=now)
    cancel_deliveries(session, member_id=member_id, digest_id=digest.id, reason="unsubscribed")
    return digest


def cancel_deliveries(session: Session, *, member_id: int, digest_id: int | None, reason: str) -> int:
    """Cancel queued digest messages (those not yet confirmed and sent) of a member."""
    query = update(ITEMS).where(ITEMS.c.member_id == member_id, ITEMS.c.edition_id.is_not(None),
                                ITEMS.c.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
    if digest_id is not None:
        query = query.where(ITEMS.c.digest_id == digest_id)
    return rows_affected(session.execute(query.values(status=OutboxStatus.CANCELLED, last_error=reason,
                                                      lease_until=None)))


def subscriptions_of(session: Session, member_id: int) -> list[tuple[Subscription, Digest]]:
    rows = session.exec(select(Subscription, Digest).join(Digest, col(Digest.id) == Subscription.digest_id).where(
        Subscription.member_id == member_id, Subscription.active).order_by(Digest.slug)).all()
    return [(subscription, digest) for subscription, digest in rows]
