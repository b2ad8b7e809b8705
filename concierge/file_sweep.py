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
Leftover temporary files of an interrupted download (or sweep) go too, after the same grace period.
The leader's tick runs it hourly (`scheduling.ticker`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

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


def sweep_unused(store: FileStore, keep: set[str], *, grace_s: float = GRACE_S, now: float | None = None,
                 meanwhile: Callable[[], None] = lambda: None) -> int:
    """Delete the stored files not in `keep` (and leftover temporary files) older than `grace_s`; how many went.
    `meanwhile` runs between moving a file aside and deleting it (tests: a `put` arriving then)."""
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
            if not (unused or name.startswith((".incoming-", ".sweeping-"))):
                continue
            removed += _remove_if_old(path, cutoff, meanwhile)
    return removed


def _remove_if_old(path: Path, cutoff: float, meanwhile: Callable[[], None]) -> int:
    """Delete `path` if it was last written before `cutoff`; 1 if it went.

    The file is first moved aside, then its time is read again: a `put` of the same bytes that
    renewed it just before the move is seen (the file is put back), and one just after finds no
    file and writes it anew. A plain stat-then-delete could delete bytes a `put` had just promised.
    """
    try:
        if path.stat().st_mtime >= cutoff:
            return 0
        aside = path.with_name(f".sweeping-{path.name}")
        path.rename(aside)
    except FileNotFoundError:  # removed meanwhile (an erase, another sweep)
        return 0
    meanwhile()
    try:
        if aside.stat().st_mtime >= cutoff:
            aside.replace(path)  # renewed at the last moment: kept (a copy written meanwhile has the same bytes)
            return 0
        aside.unlink()
    except FileNotFoundError:
        return 0
    return 1
