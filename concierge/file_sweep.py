"""Bytes in the file store that nothing refers to: swept once they are old enough.

An adapter downloads a file before the core decides what its message is. When the core records
nothing, because the sender is not a member, or the event was a duplicate, or the transaction failed
for good, the bytes stay in the store with no record naming them. `sweep_unused` deletes the
files that are:

- named by no `messagefile` row,
- named by no inbound event still kept for processing (its payload holds the file's reference),
- named by no unsent outbox item,
- older than the grace period, so a download whose message is being recorded now is left alone.

`FileStore.put` renews the time of a file it already has, so bytes that come back are fresh again.
Leftover temporary files of an interrupted download go too, after the same grace period.
The leader's tick runs it hourly (`scheduling.ticker`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlmodel import Session

from concierge.file_data import FILES
from concierge.files import FileStore
from concierge.inbox import ITEMS as INBOX
from concierge.outbox.kinds import UNSENT
from concierge.outbox.queue import ITEMS as OUTBOX

GRACE_S = 24 * 3600  # a day: an inbound event retried for hours still finds its file
_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def referenced(session: Session) -> set[str]:
    """Every sha256 a record still needs: stored messages' files, kept inbound events', unsent items'."""
    hashes = set(session.execute(select(FILES.c.sha256).distinct()).scalars())
    kept = select(INBOX.c.payload).where(INBOX.c.status != "done")
    unsent = select(OUTBOX.c.payload).where(OUTBOX.c.status.in_(UNSENT))
    for payloads in (session.execute(kept).scalars(), session.execute(unsent).scalars()):
        hashes |= _hashes_in(payloads)
    return hashes


def _hashes_in(payloads: Iterable[object]) -> set[str]:
    found: set[str] = set()
    for payload in payloads:
        if payload:
            found.update(_HASH.findall(json.dumps(payload)))
    return found


def sweep_unused(store: FileStore, keep: set[str], *, grace_s: float = GRACE_S, now: float | None = None) -> int:
    """Delete the stored files not in `keep` (and leftover temporary files) older than `grace_s`; how many went."""
    cutoff = (time.time() if now is None else now) - grace_s
    removed = 0
    if not store.root.is_dir():
        return 0
    for folder in store.root.iterdir():
        if not folder.is_dir() or len(folder.name) != 2:
            continue
        for path in folder.iterdir():
            name = path.name
            unused = (_HASH.fullmatch(name) is not None and name[:2] == folder.name and name not in keep)
            if not (unused or name.startswith(".incoming-")):
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # removed meanwhile (an erase, another sweep)
                continue
    return removed
