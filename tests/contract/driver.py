"""What a platform driver offers the shared conversation scenarios.

Each adapter's tests implement this with the platform's real code path (signed requests to the
bolt app, discord.py objects, the local playground), so one scenario runs on every platform.
"""

from __future__ import annotations

from typing import Protocol


class ConversationDriver(Protocol):
    admin: str  # the person who runs admin commands

    def mention(self, person: str) -> str:
        """How `person` is named as a command argument on this platform."""

    async def member_writes(self, person: str, text: str, *, event_id: str | None = None) -> None:
        """`person` sends the bot a direct message (`event_id` forces a redelivery)."""

    async def staff_writes(self, person: str, thread: str, text: str) -> str | None:
        """`person` writes in staff thread `thread`; returns any private answer."""

    async def command(self, person: str, text: str, *, thread: str | None = None) -> str:
        """`person` runs `/concierge <text>` (in `thread` when given); returns the private answer."""

    async def press(self, person: str, thread: str, action: str) -> str:
        """`person` presses the card button `action` of the conversation in `thread`."""

    async def settle(self) -> None:
        """Wait until everything queued has been delivered."""

    def threads(self) -> list[str]:
        """Ids of the staff threads opened so far, oldest first."""

    def thread_texts(self, thread: str) -> list[str]:
        """Texts posted in a staff thread, the opening card's text first."""

    def dms(self, person: str) -> list[str]:
        """Texts the bot sent to `person` in direct messages."""
