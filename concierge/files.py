"""The file store: files members and experts send, kept by content so transcripts keep them.

Adapters download a file with their own credentials, from their platform's own file hosts only,
and hand the bytes to `take_in`, which checks the size cap and the allowed types and stores
them under their sha256 (`<dir>/<2 hex>/<64 hex>`): the same file sent twice is kept once.
Messages and the outbox keep `FileRef`s (hash, name, type, size), never bytes; the sending
adapter reads the bytes from the store when it uploads. Bytes go once no message refers to them
(`forget_unreferenced`, called by `member erase` and the retention purge).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import mimetypes
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from concierge.inbound import Attachment
from concierge.platform import FileRef
from concierge.settings import Settings

log = logging.getLogger(__name__)

MiB = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def human_size(size: int) -> str:
    """1536 -> "1.5 KB"; for people, not for limits."""
    if size < 1024:
        return f"{size} bytes"
    amount = float(size)
    for unit in ("KB", "MB", "GB"):
        amount /= 1024
        if amount < 1024 or unit == "GB":
            return f"{amount:.1f} {unit}".replace(".0 ", " ")
    return ""  # not reached


class FileStore:
    """Bytes by sha256 under one folder; writes are atomic (a temporary file renamed into place)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> FileStore:
        return cls(settings.files_dir)

    def path(self, sha256: str) -> Path:
        """Where the bytes of `sha256` live; refuses anything that is not a sha256 (no path tricks)."""
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Keep `data`; returns its sha256 (already there: nothing written)."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.exists():
            try:
                os.utime(target)  # fresh again: the sweep of unused files counts from the last arrival
            except FileNotFoundError:  # swept just now: written again below
                pass
            else:
                return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256

    def read(self, sha256: str) -> bytes:
        """The bytes of `sha256`; FileNotFoundError when they are not (or no longer) kept."""
        return self.path(sha256).read_bytes()

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def remove(self, sha256: str) -> bool:
        """Delete the bytes of `sha256`; False when there were none."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True


@dataclass(frozen=True)
class FilePolicy:
    """Which files are taken in: at most `max_bytes`, of a type one of `allowed` matches.

    A pattern is a MIME type (`application/pdf`), a MIME family (`image/*`) or an extension (`.pdf`).
    """

    max_bytes: int
    allowed: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> FilePolicy:
        return cls(settings.files_max_bytes, tuple(settings.files_allowed_types))

    def type_allowed(self, name: str, mime: str) -> bool:
        extension = Path(name).suffix.lower()
        mime = mime.split(";")[0].strip().lower()
        for pattern in self.allowed:
            pattern = pattern.strip().lower()
            if pattern.startswith("."):
                if extension == pattern:
                    return True
            elif mime and fnmatch.fnmatchcase(mime, pattern):
                return True
        return False

    def refusal(self, name: str, mime: str, size: int, platform_limit: int | None = None) -> str:
        """Why a file of this name, type and size is not passed on; "" when it may be."""
        limit = min(self.max_bytes, platform_limit) if platform_limit else self.max_bytes
        if size > limit:
            return f"it is larger than the {human_size(limit)} limit"
        if not self.type_allowed(name, mime):
            return f"files of this type ({mime or Path(name).suffix or 'unknown'}) are not accepted"
        return ""


def guess_mime(name: str, given: str = "") -> str:
    """The type the platform said, else one guessed from the name, else application/octet-stream."""
    given = (given or "").split(";")[0].strip().lower()
    return given or mimetypes.guess_type(name)[0] or "application/octet-stream"


def refused(name: str, size: int, mime: str, problem: str) -> Attachment:
    """A file that was not taken in, and why (the sender and staff are told)."""
    return Attachment(name=name, url="", size=size, mime=mime, problem=problem)


async def take_in(store: FileStore, policy: FilePolicy, *, name: str, mime: str, size: int,
                  download: Callable[[int], Awaitable[bytes]]) -> Attachment:
    """Check, download and keep one file; the attachment names its bytes (`sha256`) or its `problem`.

    `size` is what the platform announced (checked before downloading); `download(limit)` returns
    the bytes and may stop past `limit` bytes (what it returns is checked again).
    """
    name = clean_file_name(name)
    mime = guess_mime(name, mime)
    problem = policy.refusal(name, mime, size)
    if problem:
        return refused(name, size, mime, problem)
    try:
        data = await download(policy.max_bytes)
    except Exception as error:  # any failure to fetch is told, not raised
        log.warning("could not download %s: %s", name, type(error).__name__)
        return refused(name, size, mime, "it could not be downloaded")
    problem = policy.refusal(name, mime, len(data))
    if problem:
        return refused(name, len(data), mime, problem)
    sha256 = store.put(data)
    return Attachment(name=name, url="", size=len(data), sha256=sha256, mime=mime)


_UNSAFE_NAME = re.compile(r"[\x00-\x1f/\\]")


def clean_file_name(name: str) -> str:
    """A file name fit to show and to upload: no folders, no control characters, at most 200 characters."""
    cleaned = _UNSAFE_NAME.sub("_", (name or "").strip()).strip(". ") or "file"
    return cleaned[:200]


def ref_of(attachment: Attachment) -> FileRef:
    return FileRef(attachment.sha256, attachment.name, attachment.mime, attachment.size)


def stored(attachments: Iterable[Attachment]) -> tuple[Attachment, ...]:
    return tuple(item for item in attachments if item.sha256)
