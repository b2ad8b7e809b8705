"""The local platform: a terminal playground, and the in-memory fake the tests drive."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from concierge.settings import Settings


def is_configured() -> bool:
    """The local playground needs no tokens."""
    return True


async def run(settings: Settings) -> None:
    """Start the interactive playground on this terminal."""
    from adapters.local.playground import run_playground

    await run_playground(settings)
