"""What a platform driver offers the shared conversation scenarios.

Each adapter's tests implement this with the platform's real code path (signed requests to the
bolt app, discord.py objects, the local playground), so one scenario runs on every platform.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from concierge.clock import FrozenClock
from scheduling.ticker import DigestScheduler


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

    async def press_in_dm(self, person: str, label: str, *, fill: str | None = None) -> str:
        """`person` presses the button labelled `label` on the latest message in their DM with the bot
        that has one (a topic picker, a rating request, a private answer); returns the private answer.

        A button that asks for text opens a form (a modal): `person` writes `fill` and sends it,
        and the answer to that is returned. Pressing one with no `fill`, or giving `fill` for a
        button that asks nothing, fails the scenario.
        """

    async def later(self, seconds: float) -> None:
        """Time passes: the clock moves on by `seconds`, the scheduler's tick runs, everything settles."""

    async def settle(self) -> None:
        """Wait until everything queued has been delivered."""

    def threads(self) -> list[str]:
        """Ids of the staff threads opened so far, oldest first."""

    def thread_texts(self, thread: str) -> list[str]:
        """Texts posted in a staff thread, the opening card's text first."""

    def card(self, thread: str) -> str:
        """Everything a person reads now on the staff card that opened `thread` (title, fields, text), one line
        each: after its updates (the card follows the conversation)."""

    def card_updates(self, thread: str) -> int:
        """How many times the card of `thread` was edited."""

    def dms(self, person: str) -> list[str]:
        """Texts the bot sent to `person` in direct messages."""


async def tick(runtime, clock: FrozenClock, seconds: float) -> None:  # noqa: ANN001
    """Move `clock` on and run one scheduler tick on `runtime`, as the running bot would."""
    clock.advance(seconds)
    ticker = DigestScheduler(runtime.db, runtime.dispatcher, runtime.concierge.settings, clock)
    try:
        assert await ticker.tick() >= 0 and ticker.leadership.try_lead(), "the tick must have run as the leader"
    finally:
        ticker.shutdown()  # let go of the leader's lock (PostgreSQL) for the next tick


def with_settings(**settings: Any) -> Callable:
    """Mark a scenario that needs core settings other than the defaults (each driver builds its bot with them)."""

    def mark(scenario: Callable) -> Callable:
        scenario.settings = settings
        return scenario

    return mark


def settings_of(scenario: Callable) -> dict[str, Any]:
    return dict(getattr(scenario, "settings", {}))
