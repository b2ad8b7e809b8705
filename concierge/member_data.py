"""A member's data: export everything stored about them; erase what identifies them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session

from concierge.digests import consent
from concierge.digests.subscriptions import cancel_deliveries
from concierge.errors import Refused
from concierge.records import (
    AuditEvent,
    ConsentEvent,
    Conversation,
    Member,
    Message,
    OutboxItem,
    PlatformIdentity,
    Subscription,
    Tier,
)

ERASED = "[erased]"


def _plain(record: Any) -> dict[str, Any]:
    data = record.model_dump()
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in data.items()}


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """Everything stored about the member, as JSON-ready data (ledger included)."""
    member = session.get(Member, member_id)
    if member is None:
        raise Refused(f"There is no member {member_id}.")
    conversations = session.scalars(select(Conversation).where(Conversation.member_id == member_id)
                                    .order_by(Conversation.id)).all()
    return {
        "member": _plain(member),
        "tier": _plain(session.get(Tier, member.tier_id)),
        "identities": [_plain(i) for i in session.scalars(
            select(PlatformIdentity).where(PlatformIdentity.member_id == member_id)).all()],
        "conversations": [
            {**_plain(c), "messages": [_plain(m) for m in session.scalars(
                select(Message).where(Message.conversation_id == c.id).order_by(Message.id)).all()]}
            for c in conversations
        ],
        "subscriptions": [_plain(s) for s in session.scalars(
            select(Subscription).where(Subscription.member_id == member_id)).all()],
        "consent_ledger": [_plain(event) for event in consent.history(session, member_id)],
        "digest_deliveries": [
            {"edition_id": item.edition_id, "digest_id": item.digest_id, "status": item.status,
             "sent_at": item.sent_at.isoformat() if item.sent_at else None}
            for item in session.scalars(select(OutboxItem).where(OutboxItem.member_id == member_id,
                                                                 OutboxItem.edition_id.is_not(None))).all()
        ],
    }


def erase_member(session: Session, member_id: int, *, actor: str, policy_version: str, now: datetime) -> dict[str, int]:
    """Erase personal data and message texts; keep anonymised counts and the fact of consent changes."""
    member = session.get(Member, member_id)
    if member is None:
        raise Refused(f"There is no member {member_id}.")
    for subscription in session.scalars(select(Subscription).where(Subscription.member_id == member_id,
                                                                     Subscription.active)).all():
        consent.record(session, member_id=member_id, digest_id=subscription.digest_id, action=consent.REVOKED,
                       how="erase", platform="", actor=actor, policy_version=policy_version, at=now)
    session.execute(update(Subscription).where(Subscription.member_id == member_id)
                    .values(active=False, next_due_at=None, user_id=ERASED))
    cancel_deliveries(session, member_id=member_id, digest_id=None, reason="member erased")
    conversation_ids = select(Conversation.id).where(Conversation.member_id == member_id)
    messages = session.execute(update(Message).where(Message.conversation_id.in_(conversation_ids))
                               .values(text=ERASED, attachments=[])).rowcount
    session.execute(update(Message).where(Message.conversation_id.in_(conversation_ids), Message.direction == "in")
                    .values(author=ERASED))
    session.execute(update(Conversation).where(Conversation.member_id == member_id)
                    .values(member_channel=ERASED, member_user=ERASED))
    session.execute(update(OutboxItem).where(OutboxItem.conversation_id.in_(conversation_ids))
                    .values(payload={"text": ERASED}, address={"platform": "", "user": ERASED}))
    session.execute(update(OutboxItem).where(OutboxItem.member_id == member_id)
                    .values(address={"platform": "", "user": ERASED}))
    identities = session.execute(delete(PlatformIdentity).where(
        PlatformIdentity.member_id == member_id, PlatformIdentity.expert_id.is_(None))).rowcount
    # The same person may also be an expert: keep that link, drop the member one.
    session.execute(update(PlatformIdentity).where(PlatformIdentity.member_id == member_id).values(member_id=None))
    # The ledger keeps the fact of every change; only the member's own name as actor goes.
    session.execute(update(ConsentEvent).where(ConsentEvent.member_id == member_id,
                                               ConsentEvent.actor == member.display_name)
                    .values(actor=f"member {member_id}"))
    member.display_name = f"erased member {member_id}"
    member.active = False
    member.blocked_reason = ""
    session.add(AuditEvent(actor=actor, action="member.erase", detail={"member_id": member_id}, at=now))
    return {"messages": messages, "identities": identities}
