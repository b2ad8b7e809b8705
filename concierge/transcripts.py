"""Transcripts: every conversation kept (messages, notes, who, when), exported, and purged after retention.

A conversation counts as *active since* a moment when its last activity, its closing, or any of its
messages (internal notes do not touch `last_activity_at`) is at or after that moment. Exports take
whole conversations active since `--since`; retention purges the texts of conversations not active
since the cutoff, keeping the rows (counts, who, when).
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, time, timedelta, timezone
from typing import Any, TextIO

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from concierge.durations import looks_like_duration, parse_duration
from concierge.file_data import forget_files
from concierge.files import FileStore, human_size
from concierge.member_data import ERASED
from concierge.outbox.kinds import OutboxStatus
from concierge.records import AuditEvent, Conversation, Member, Message, OutboxItem, PurgeMark, Tier
from concierge.states import Direction
from concierge.tables import rows_affected, table_of

FORMATS = ("jsonl", "csv", "html")
FIELDS = ("conversation_id", "member_id", "member_name", "tier", "specialty", "status", "direction",
          "author", "text", "created_at", "attachments")
BATCH = 500

def parse_since(value: str, now: datetime) -> datetime:
    """`YYYY-MM-DD` (midnight UTC) or a duration back from `now`: `30m`, `12h`, `7d`, `2w`."""
    if looks_like_duration(value):
        return now - parse_duration(value)
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"{value!r} is neither a date (YYYY-MM-DD) nor a duration like 7d, 12h or 2w") from None
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _active_since(moment: datetime) -> ColumnElement[bool]:
    """A SQL condition on Conversation."""
    later = aliased(Message)  # its own alias: the export's outer query reads Message too
    closed_at = col(Conversation.closed_at)
    return or_(
        col(Conversation.last_activity_at) >= moment,
        and_(closed_at.is_not(None), closed_at >= moment),  # no NULL: this gets negated
        exists().where(col(later.conversation_id) == Conversation.id, col(later.created_at) >= moment),
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def transcript_rows(session: Session, since: datetime | None = None, member_id: int | None = None,
                    *, batch_size: int = BATCH) -> Iterator[dict[str, Any]]:
    """One record per message, ordered by conversation then message, read `batch_size` rows at a time."""
    query = (
        select(col(Message.id), col(Message.conversation_id), col(Conversation.member_id), col(Member.display_name),
               col(Tier.name), col(Conversation.specialty), col(Conversation.status), col(Message.direction),
               col(Message.author), col(Message.text), col(Message.created_at), col(Message.attachments))
        .join(Conversation, col(Conversation.id) == Message.conversation_id)
        .join(Member, col(Member.id) == Conversation.member_id)
        .outerjoin(Tier, col(Tier.id) == Member.tier_id)
        .order_by(col(Message.conversation_id), col(Message.id))
        .limit(batch_size)
    )
    if member_id is not None:
        query = query.where(col(Conversation.member_id) == member_id)
    if since is not None:
        query = query.where(_active_since(since))
    last: tuple[int, int] | None = None
    while True:
        page = query
        if last is not None:  # keyset pagination: no offset scans, no cursor held open
            page = page.where(or_(col(Message.conversation_id) > last[0],
                                  (col(Message.conversation_id) == last[0]) & (col(Message.id) > last[1])))
        batch = session.execute(page).all()
        for (_message_id, conversation_id, member, name, tier, specialty, status, direction, author, text,
             created_at, attachments) in batch:
            yield {
                "conversation_id": conversation_id, "member_id": member, "member_name": name, "tier": tier,
                "specialty": specialty, "status": status, "direction": direction, "author": author,
                "text": text, "created_at": _iso(created_at), "attachments": list(attachments or []),
            }
        if len(batch) < batch_size:
            return
        last = (batch[-1].conversation_id, batch[-1].id)


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({**row, "attachments": json.dumps(row["attachments"], ensure_ascii=False)})
        count += 1
    return count


_LABELS = {Direction.IN: "member", Direction.OUT: "to member", Direction.INTERNAL: "INTERNAL NOTE (not sent to the member)",
           Direction.EVENT: "event"}  # other directions (dropped) are shown by their name
_STYLE = (
    "body{font-family:sans-serif;max-width:60rem;margin:auto}section{border-top:1px solid #ccc;padding:.5rem 0}"
    ".message{margin:.4rem 0;padding:.3rem .6rem;border-left:4px solid #9ab}"
    ".message.in{border-color:#4a7}.message.internal{border-color:#d80;background:#fff4dd}"
    ".message.event{color:#666;font-style:italic}.meta{font-size:.85em;color:#555}"
    ".text{white-space:pre-wrap;margin:.2rem 0}"
)


def _attachment_html(item: dict[str, Any], store: FileStore | None) -> str:
    """One file of a message: a link into the file store when its bytes are kept there."""
    e = html.escape
    name = e(str(item.get("name", "")))
    problem = f" (not passed on: {e(str(item['problem']))})" if item.get("problem") else ""
    try:
        path = store.path(str(item.get("sha256") or "")) if store is not None else None
    except ValueError:  # no stored bytes (a link-only file), or not a hash at all
        path = None
    if path is None:
        return f"<li>{name}: {e(str(item.get('url', '')))}{problem}</li>"
    return (f"<li><a href=\"{e(path.resolve().as_uri())}\" type=\"{e(str(item.get('mime') or ''))}\">{name}</a>"
            f" ({e(human_size(int(item.get('size') or 0)))}){problem}</li>")


def write_html(rows: Iterable[dict[str, Any]], out: TextIO, store: FileStore | None = None) -> int:
    """A standalone page, one <section> per conversation; every text is escaped. Stored files are
    linked into the file store (`store`; file URIs, so the page opens them where the store is)."""
    e = html.escape
    out.write("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Concierge transcripts</title>"
              f"<style>{_STYLE}</style></head><body>\n<h1>Concierge transcripts</h1>\n")
    current = None
    count = 0
    for row in rows:
        if row["conversation_id"] != current:
            if current is not None:
                out.write("</section>\n")
            current = row["conversation_id"]
            out.write(f"<section class=\"conversation\" id=\"conversation-{e(str(current))}\">\n"
                      f"<h2>Conversation {e(str(current))}</h2>\n"
                      f"<p class=\"meta\">member {e(str(row['member_id']))} {e(row['member_name'] or '')}"
                      f" &middot; tier {e(row['tier'] or '')} &middot; {e(row['specialty'])}"
                      f" &middot; {e(row['status'])}</p>\n")
        direction = row["direction"]
        label = _LABELS.get(direction, direction)
        attachments = "".join(_attachment_html(item, store) for item in row["attachments"])
        out.write(f"<div class=\"message {e(direction)}\">"
                  f"<div class=\"meta\"><strong>{e(label)}</strong> &middot; {e(row['author'])}"
                  f" &middot; <time>{e(row['created_at'] or '')}</time></div>"
                  f"<div class=\"text\">{e(row['text'])}</div>"
                  + (f"<ul class=\"attachments\">{attachments}</ul>" if attachments else "")
                  + "</div>\n")
        count += 1
    if current is not None:
        out.write("</section>\n")
    elif count == 0:
        out.write("<p>No conversations.</p>\n")
    out.write("</body></html>\n")
    return count


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "html": write_html}


def export(session: Session, out: TextIO, fmt: str, *, since: datetime | None = None,
           member_id: int | None = None, store: FileStore | None = None) -> int:
    """Write the transcripts in `fmt` to `out`; returns how many messages were written.

    Every format lists a message's files (name, type, size, sha256); HTML links those in `store`."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "html":
        return write_html(transcript_rows(session, since, member_id), out, store)
    return WRITERS[fmt](transcript_rows(session, since, member_id), out)


def purge_older_than(session: Session, cutoff: datetime, *, batch_size: int = BATCH, actor: str = "",
                     now: datetime | None = None, store: FileStore | None = None) -> int:
    """Replace message texts and attachments of conversations not active since `cutoff` with ERASED.

    The rows stay (direction, author, when), so counts and response times survive. Copies of those
    texts in delivered or failed outbox items go too. Returns how many messages were purged;
    running it again purges nothing new. With an `actor`, a purge that erased anything is audited.

    It reads what is new only, not every transcript ever purged (it runs every hour): a purged
    conversation is marked (`purged_at`) and leaves the candidates' index; one that got a line since
    (a note, a late message, a closing) is unmarked first (`_unmark_written_since`), so it is purged
    again once idle.
    """
    now = now or datetime.now(timezone.utc)
    _unmark_written_since(session, now)
    conversation = table_of(Conversation).c  # Core: ids read back are never None
    query = purge_candidates(cutoff, batch_size)
    purged = 0
    while True:
        ids = list(session.scalars(query).all())
        if not ids:
            if actor and purged:
                session.add(AuditEvent(actor=actor, action="transcripts.purge", at=now,
                                       detail={"cutoff": cutoff.isoformat(), "messages": purged}))
            return purged
        purged += rows_affected(session.execute(
            update(Message).where(col(Message.conversation_id).in_(ids), col(Message.text) != ERASED)
            .values(text=ERASED, attachments=[])))
        forget_files(session, ids, store)  # the files' bytes too, unless another message has them
        session.execute(update(OutboxItem).where(col(OutboxItem.conversation_id).in_(ids),
                                                 col(OutboxItem.status).in_((OutboxStatus.SENT, OutboxStatus.FAILED)))
                        .values(payload={"text": ERASED}))
        session.execute(update(table_of(Conversation)).where(conversation.id.in_(ids)).values(purged_at=now))


def purge_candidates(cutoff: datetime, batch_size: int) -> Select[int]:
    """Up to `batch_size` conversations not purged yet and not active since `cutoff`.

    No order and no "after the last id": the purge marks each batch before it reads the next, so
    the batch leaves the candidates, and the read goes through `ix_conversation_unpurged` (ordered
    by id, SQLite walked every conversation along its primary key instead)."""
    conversation = table_of(Conversation).c
    return (select(conversation.id)
            .where(conversation.purged_at.is_(None), conversation.opened_at < cutoff, ~_active_since(cutoff))
            .limit(batch_size))


RECHECK = timedelta(hours=1)  # lines younger than this are read again by the next purge (see below)


def _unmark_written_since(session: Session, now: datetime) -> None:
    """Unmark the purged conversations that got a line since the last purge, then move the mark.

    Only the lines after the mark are read: those written since the last run (message ids only grow;
    rows are never deleted). On PostgreSQL ids are taken when a line is written and become visible
    when its transaction commits, so a line written just before the last run may have an id below
    lines already visible then: the mark stops before the first line younger than `RECHECK`, and
    those are read again next time. A transaction open for over an hour would be needed to slip by.
    """
    message = table_of(Message).c
    mark = session.get(PurgeMark, 1) or PurgeMark(id=1, message_id=0)
    written = select(message.conversation_id).where(message.id > mark.message_id)
    session.execute(update(table_of(Conversation))
                    .where(table_of(Conversation).c.purged_at.is_not(None), table_of(Conversation).c.id.in_(written))
                    .values(purged_at=None))
    young = session.scalar(select(func.min(message.id)).where(message.id > mark.message_id,
                                                              message.created_at >= now - RECHECK))
    mark.message_id = young - 1 if young is not None else session.scalar(select(func.max(message.id))) or 0
    session.add(mark)
