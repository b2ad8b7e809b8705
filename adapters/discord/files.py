"""Files on Discord: a message's attachments read (`Attachment.read()`, from Discord's CDN) into the
file store, and stored files sent as attachments of a message (`discord.File`).

Only the attachments of the message itself are read, never a link in its text. A bot's upload
limit without server boosts is 10 MiB; a file over it is not uploaded and the message says so.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable

import discord

from adapters.discord.limits import MAX_FILE_BYTES
from concierge.files import FilePolicy, FileStore, clean_file_name, human_size, take_in
from concierge.inbound import Attachment
from concierge.platform import FileRef, Outbound
from concierge.settings import Settings

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = MAX_FILE_BYTES  # declared by the package (see its __init__)
MAX_FILES = 10  # attachments Discord takes on one message


def _reader(item: discord.Attachment) -> Callable[[int], Awaitable[bytes]]:
    """Downloads an attachment whole (Discord caps its size; `take_in` checks the bytes after)."""
    return lambda _limit: item.read()


class DiscordFiles:
    """Reads attachments into the store; turns stored files into `discord.File`s for a message."""

    def __init__(self, store: FileStore, policy: FilePolicy) -> None:
        self.store = store
        self.policy = policy

    @classmethod
    def from_settings(cls, settings: Settings) -> DiscordFiles:
        return cls(FileStore.from_settings(settings), FilePolicy.from_settings(settings))

    async def take_in(self, message: discord.Message) -> tuple[Attachment, ...]:
        """The message's attachments, stored (or refused, saying why)."""
        taken = []
        for item in message.attachments:
            taken.append(await take_in(self.store, self.policy, name=item.filename,
                                       mime=item.content_type or "", size=item.size,
                                       download=_reader(item)))
        return tuple(taken)

    def sorted_out(self, message: Outbound) -> tuple[list[FileRef], str]:
        """The message's stored files that can go, and a line naming those that cannot ("" if none)."""
        sendable: list[FileRef] = []
        left_out: list[tuple[FileRef, str]] = []
        for ref in message.files:
            if ref.size > MAX_UPLOAD_BYTES:
                left_out.append((ref, f"it is larger than Discord's {human_size(MAX_UPLOAD_BYTES)} limit"))
            elif len(sendable) >= MAX_FILES:
                left_out.append((ref, f"Discord takes {MAX_FILES} files a message"))
            elif not self.store.has(ref.sha256):
                left_out.append((ref, "it is no longer kept"))
            else:
                sendable.append(ref)
        lines = [f"- {ref.name} ({human_size(ref.size)}): {why}" for ref, why in left_out]
        return sendable, "\n(A file could not be passed on:\n" + "\n".join(lines) + ")" if lines else ""

    def files_for(self, refs: list[FileRef]) -> list[discord.File]:
        """Fresh `discord.File`s for one request (discord.py reads each once)."""
        return [discord.File(io.BytesIO(self.store.read(ref.sha256)), filename=clean_file_name(ref.name))
                for ref in refs]


def left_out(files: DiscordFiles | None, message: Outbound) -> str:
    """The line a message gets naming its files that cannot go to Discord ("" when all can, or none)."""
    return files.sorted_out(message)[1] if files is not None and message.files else ""
