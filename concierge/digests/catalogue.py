"""The digest catalogue: digests, their items, and the editions composed from them."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from concierge.digests.cadence import Cadence, next_due
from concierge.errors import Refused
from concierge.records import Digest, DigestEdition, DigestItem, Subscription
from concierge.tables import saved_id

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EDITION_HOUR_UTC = 6  # editions are composed at 06:00 UTC on their cadence's day


def edition_cadence(digest: Digest) -> Cadence:
    return Cadence(every=digest.cadence, hour=EDITION_HOUR_UTC, time_zone="UTC")


def digest_named(session: Session, slug: str, *, active_only: bool = True) -> Digest:
    digest = session.exec(select(Digest).where(Digest.slug == slug.lower())).first()
    if digest is None or (active_only and digest.status != "active"):
        raise Refused(f"There is no digest `{slug}`. See `/concierge digests` for the catalogue.")
    return digest


def create_digest(session: Session, *, slug: str, title: str, cadence: str, now: datetime) -> Digest:
    slug = slug.lower()
    if not SLUG.match(slug):
        raise Refused("A digest name is 2-63 lowercase letters, digits and dashes, e.g. `nutrition-tips`.")
    if session.exec(select(Digest).where(Digest.slug == slug)).first() is not None:
        raise Refused(f"A digest `{slug}` exists already.")
    digest = Digest(slug=slug, title=title, cadence=cadence, created_at=now)
    digest.next_edition_at = next_due(edition_cadence(digest), now)
    session.add(digest)
    session.flush()
    return digest


def list_digests(session: Session, *, include_archived: bool = False) -> list[Digest]:
    query = select(Digest).order_by(Digest.slug)
    if not include_archived:
        query = query.where(Digest.status == "active")
    return list(session.exec(query).all())


def archive_digest(session: Session, slug: str) -> Digest:
    """Stop a digest: no more editions, no more deliveries (subscriptions are paused)."""
    digest = digest_named(session, slug)
    digest.status = "archived"
    session.execute(update(Subscription).where(col(Subscription.digest_id) == digest.id).values(next_due_at=None))
    return digest


def add_item(session: Session, *, slug: str, text: str, author: str, now: datetime) -> DigestItem:
    digest = digest_named(session, slug)
    item = DigestItem(digest_id=saved_id(digest), text=text.strip(), author=author, created_at=now)
    session.add(item)
    return item


def pending_items(session: Session, digest: Digest) -> list[DigestItem]:
    return list(session.exec(
        select(DigestItem).where(DigestItem.digest_id == digest.id, col(DigestItem.edition_id).is_(None))
        .order_by(col(DigestItem.id))
    ).all())


def compose_text(items: list[DigestItem]) -> str:
    return "\n".join(f"- {item.text}" for item in items)


def compose_edition(session: Session, digest: Digest, now: datetime) -> DigestEdition | None:
    """Collect the items added since the last edition into a new one (None when there are none)."""
    items = pending_items(session, digest)
    if not items:
        return None
    number = (session.exec(select(func.max(DigestEdition.number)).where(
        DigestEdition.digest_id == digest.id)).one() or 0) + 1
    edition = DigestEdition(digest_id=saved_id(digest), number=number, text=compose_text(items), published_at=now)
    session.add(edition)
    session.flush()
    for item in items:
        item.edition_id = edition.id
    return edition


def compose_due_editions(session: Session, now: datetime) -> list[DigestEdition]:
    """Compose every active digest whose edition time has come; schedule its next one."""
    editions = []
    due = session.exec(select(Digest).where(Digest.status == "active", col(Digest.next_edition_at) <= now)).all()
    for digest in due:
        edition = compose_edition(session, digest, now)
        if edition is not None:
            editions.append(edition)
        digest.next_edition_at = next_due(edition_cadence(digest), now)
    return editions


def latest_edition_id(session: Session, digest_id: int) -> int:
    return session.exec(select(func.max(DigestEdition.id)).where(DigestEdition.digest_id == digest_id)).one() or 0


def render(digest_title: str, slug: str, number: int, text: str) -> str:
    """The text of a digest message, with the text form of unsubscribing."""
    return (f"{digest_title} #{number}\n{text}\n\n"
            f"You get this because you subscribed. To stop: /concierge unsubscribe {slug}")
