"""The stored files of conversations: listed for an export, forgotten with an erase or a purge."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, delete, event, select
from sqlmodel import Session

from concierge.files import FileStore
from concierge.records import MessageFile
from concierge.tables import table_of

FILES = table_of(MessageFile)


def files_of(session: Session, conversation_ids: Iterable[int] | Select) -> list[dict[str, Any]]:
    """The stored files of these conversations (ids, or a select of ids), oldest first."""
    rows = session.execute(select(FILES).where(FILES.c.conversation_id.in_(conversation_ids))
                           .order_by(FILES.c.id)).mappings().all()
    return [{**row, "created_at": row["created_at"].isoformat()} for row in rows]


def forget_files(session: Session, conversation_ids: Iterable[int] | Select, store: FileStore | None) -> int:
    """Drop the file records of these conversations; bytes no other message refers to are deleted
    once the transaction commits (a rollback keeps them). Returns how many files' bytes go."""
    hashes = set(session.execute(select(FILES.c.sha256).where(FILES.c.conversation_id.in_(conversation_ids))
                                 .distinct()).scalars())
    if not hashes:
        return 0
    session.execute(delete(FILES).where(FILES.c.conversation_id.in_(conversation_ids)))
    still_used = set(session.execute(select(FILES.c.sha256).where(FILES.c.sha256.in_(hashes))).scalars())
    unused = hashes - still_used
    if unused and store is not None:
        remove_after_commit(session, store, unused)
    return len(unused)


def remove_after_commit(session: Session, store: FileStore, hashes: Iterable[str]) -> None:
    hashes = sorted(hashes)

    def remove(_session: Session) -> None:
        for sha256 in hashes:
            store.remove(sha256)

    event.listen(session, "after_commit", remove, once=True)
