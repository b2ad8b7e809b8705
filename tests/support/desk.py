"""Shared steps on the local desk (the `desk` fixture): enrolling people, a digest and its tick, a flaky relay."""

from __future__ import annotations

from typing import Any

from concierge import relay


async def enrol(desk: Any, *members: str, tier: str = "premium", specialties: str = "nutrition") -> None:
    """`members` (default alice) join `tier`; bob answers `specialties` (comma-separated)."""
    for member in members or ("alice",):
        await desk.command("admin", f"member add {member} {tier}")
    await desk.command("admin", f"expert add bob {specialties}")


async def tick(ticker: Any, desk: Any) -> None:
    """One digest tick, then deliver what is due (as the running bot would)."""
    await ticker.tick()
    await desk.settle()


async def catalogue(desk, cadence="weekly"):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    answer = await desk.command("admin", f"digest create nutrition-tips Weekly nutrition tips --cadence {cadence}")
    assert "created" in answer


async def an_edition_due_for_alice(desk, clock, tip="tip"):
    """Alice subscribed daily at 10:00, one edition published, and it is 10:00."""
    await catalogue(desk)
    await desk.command("alice", "subscribe nutrition-tips --cadence daily --hour 10")
    await desk.command("bob", f"digest add nutrition-tips {tip}")
    await desk.command("admin", "digest publish nutrition-tips")
    clock.advance(3600)


def digest_dms(platform, person):
    return [text for text in platform.dms_to(person) if "nutrition tips #" in text]


def failing_once(monkeypatch, times: int = 1):
    """The relay raises `times` times (a core bug or a hiccup), then works."""
    real = relay.member_message
    calls = {"n": 0}

    def flaky(session, ctx, event):
        calls["n"] += 1
        if calls["n"] <= times:
            raise RuntimeError("boom")
        return real(session, ctx, event)

    monkeypatch.setattr("concierge.app.member_message", flaky)
    return calls
