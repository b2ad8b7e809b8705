"""A member's data: export everything stored about them; erase what identifies them."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session, SQLModel, col

from concierge.digests import consent
from concierge.digests.subscriptions import cancel_deliveries
from concierge.errors import Refused
from concierge.file_data import files_of, forget_files
from concierge.files import FileStore
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
from concierge.states import Direction
from concierge.tables import rows_affected, saved_id

ERASED = "[erased]"


def _plain(record: SQLModel) -> dict[str, Any]:
    data = record.model_dump()
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in data.items()}


def export_member(session: Session, member_id: int) -> dict[str, Any]:
    """Everything stored about the member, as JSON-ready data (ledger included)."""
    member = session.get(Member, member_id)
    if member is None:
        raise Refused(f"There is no member {member_id}.")
    conversations = session.scalars(select(Conversation).where(col(Conversation.member_id) == member_id)
                                    .order_by(col(Conversation.id))).all()
    return {
        "member": _plain(member),
        "tier": _plain(session.get_one(Tier, member.tier_id)),
        "identities": [_plain(i) for i in session.scalars(
            select(PlatformIdentity).where(col(PlatformIdentity.member_id) == member_id)).all()],
        "conversations": [
            {**_plain(c), "messages": [_plain(m) for m in session.scalars(
                select(Message).where(col(Message.conversation_id) == c.id).order_by(col(Message.id))).all()]}
            for c in conversations
        ],
        "files": files_of(session, [saved_id(c) for c in conversations]),  # their bytes: see `copy_files`
        "subscriptions": [_plain(s) for s in session.scalars(
            select(Subscription).where(col(Subscription.member_id) == member_id)).all()],
        "consent_ledger": [_plain(event) for event in consent.history(session, member_id)],
        "digest_deliveries": [
            {"edition_id": item.edition_id, "digest_id": item.digest_id, "status": item.status,
             "sent_at": item.sent_at.isoformat() if item.sent_at else None}
            for item in session.scalars(select(OutboxItem).where(col(OutboxItem.member_id) == member_id,
                                                                 col(OutboxItem.edition_id).is_not(None))).all()
        ],
    }


def write_member_zip(data: dict[str, Any], store: FileStore, path: Path) -> int:
    """`data` (an `export_member`) as member.json in a zip, with each file's bytes under files/;
    returns how many files were no longer in the store (listed in the JSON all the same)."""
    missing = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("member.json", json.dumps(data, indent=2, default=str))
        for item in data["files"]:
            try:
                archive.writestr(f"files/{item['id']}-{item['name']}", store.read(item["sha256"]))
            except (FileNotFoundError, ValueError):
                missing += 1
    return missing


def erase_member(session: Session, member_id: int, *, actor: str, policy_version: str, now: datetime,
                 store: FileStore | None = None) -> dict[str, int]:
    """Erase personal data, message texts and files (their bytes from `store` when no other message has
    them); keep anonymised counts and the fact of consent changes."""
    member = session.get(Member, member_id)
    if member is None:
        raise Refused(f"There is no member {member_id}.")
    for subscription in session.scalars(select(Subscription).where(col(Subscription.member_id) == member_id,
                                                                     col(Subscription.active))).all():
        consent.record(session, member_id=member_id, digest_id=subscription.digest_id, action=consent.REVOKED,
                       how="erase", platform="", actor=actor, policy_version=policy_version, at=now)
    session.execute(update(Subscription).where(col(Subscription.member_id) == member_id)
                    .values(active=False, next_due_at=None, user_id=ERASED))
    cancel_deliveries(session, member_id=member_id, digest_id=None, reason="member erased")
    conversation_ids = select(col(Conversation.id)).where(col(Conversation.member_id) == member_id)
    messages = rows_affected(session.execute(update(Message).where(col(Message.conversation_id).in_(conversation_ids))
                                             .values(text=ERASED, attachments=[])))
    files = forget_files(session, conversation_ids, store)
    session.execute(update(Message).where(col(Message.conversation_id).in_(conversation_ids),
                                          col(Message.direction) == Direction.IN)
                    .values(author=ERASED))
    session.execute(update(Conversation).where(col(Conversation.member_id) == member_id)
                    .values(member_channel=ERASED, member_user=ERASED))
    session.execute(update(OutboxItem).where(col(OutboxItem.conversation_id).in_(conversation_ids))
                    .values(payload={"text": ERASED}, address={"platform": "", "user": ERASED}))
    # Only digest deliveries name a member: through their index, not a read of the whole outbox.
    session.execute(update(OutboxItem).where(col(OutboxItem.member_id) == member_id,
                                             col(OutboxItem.edition_id).is_not(None))
                    .values(address={"platform": "", "user": ERASED}))
    identities = rows_affected(session.execute(delete(PlatformIdentity).where(
        col(PlatformIdentity.member_id) == member_id, col(PlatformIdentity.expert_id).is_(None))))
    # The same person may also be an expert: keep that link, drop the member one.
    session.execute(update(PlatformIdentity).where(col(PlatformIdentity.member_id) == member_id)
                    .values(member_id=None))
    # The ledger keeps the fact of every change; only the member's own name as actor goes.
    session.execute(update(ConsentEvent).where(col(ConsentEvent.member_id) == member_id,
                                               col(ConsentEvent.actor) == member.display_name)
                    .values(actor=f"member {member_id}"))
    member.display_name = f"erased member {member_id}"
    member.active = False
    member.blocked_reason = ""
    session.add(AuditEvent(actor=actor, action="member.erase", detail={"member_id": member_id}, at=now))
    return {"messages": messages, "identities": identities, "files": files}
