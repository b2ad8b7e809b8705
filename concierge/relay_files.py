"""Files on the way through the relay: the lines the text shows, the limits of the receiving
platform, the records of a message's files, and the notices when a file is not passed on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import insert, select
from sqlmodel import Session, col

from concierge.files import FilePolicy, human_size, ref_of
from concierge.inbound import Attachment
from concierge.people import Context
from concierge.platform import FileRef
from concierge.records import Message, MessageFile
from concierge.tables import table_of


def file_line(item: Attachment) -> str:
    """How a file shows in a relayed text and the transcript."""
    if item.problem:
        return f"[file not passed on] {item.name} ({human_size(item.size)}): {item.problem}"
    if item.sha256:
        return f"[file] {item.name} ({human_size(item.size)})"
    return f"[file] {item.name}: {item.url}"  # an adapter that relays links only


def for_platform(ctx: Context, attachments: tuple[Attachment, ...], platform: str) -> tuple[Attachment, ...]:
    """The attachments with those the receiving `platform` cannot take (its upload limit) marked refused.

    A refused file keeps its `sha256`: its bytes stay in the transcript.
    """
    if not attachments:
        return attachments
    policy = FilePolicy.from_settings(ctx.settings)
    limit = ctx.upload_limits.get(platform)
    checked = []
    for item in attachments:
        if item.sha256 and not item.problem:
            problem = policy.refusal(item.name, item.mime, item.size, limit)
            if problem:
                item = replace(item, problem=problem)
        checked.append(item)
    return tuple(checked)


def files_to_send(attachments: Iterable[Attachment]) -> tuple[FileRef, ...]:
    return tuple(ref_of(item) for item in attachments if item.sha256 and not item.problem)


def not_passed_on(attachments: Iterable[Attachment]) -> tuple[Attachment, ...]:
    return tuple(item for item in attachments if item.problem)


def member_notice(items: tuple[Attachment, ...]) -> str:
    """What a member is told when files of theirs were not passed on."""
    lines = [f"- {item.name} ({human_size(item.size)}): {item.problem}" for item in items]
    return ("Sorry, we could not pass on " + ("this file" if len(items) == 1 else "these files")
            + " to our team:\n" + "\n".join(lines)
            + "\nThe rest of your message reached them. You could send a smaller file, or a PDF or an image.")


def staff_notice(items: tuple[Attachment, ...]) -> str:
    """What the staff thread says when an expert's files were not passed on to the member."""
    lines = [f"- {item.name} ({human_size(item.size)}): {item.problem}" for item in items]
    return ("Not passed on to the member:\n" + "\n".join(lines)
            + "\nEverything else was sent. A smaller file, or a PDF or an image, can go through.")


def record_files(session: Session, *, message_id: int, conversation_id: int, attachments: Iterable[Attachment],
                 now: datetime) -> None:
    """Keep which stored files a transcript message has (so export, erase and purge find them)."""
    rows = [{"message_id": message_id, "conversation_id": conversation_id, "sha256": item.sha256,
             "name": item.name, "mime": item.mime, "size": item.size, "created_at": now}
            for item in attachments if item.sha256]
    if rows:
        session.execute(insert(table_of(MessageFile)), rows)


def files_sent_in(session: Session, conversation_id: int, direction: str) -> tuple[FileRef, ...]:
    """The stored files of a conversation's messages in `direction` (a question held back for its topic)."""
    rows = session.execute(
        select(col(MessageFile.sha256), col(MessageFile.name), col(MessageFile.mime), col(MessageFile.size))
        .join(Message, col(Message.id) == MessageFile.message_id)
        .where(col(MessageFile.conversation_id) == conversation_id, col(Message.direction) == direction)
        .order_by(col(MessageFile.id))).all()
    return tuple(FileRef(*row) for row in rows)
