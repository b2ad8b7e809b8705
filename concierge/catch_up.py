"""Catch-up after downtime: which channels and threads to read back, and from when.

The gateway and the Events API do not replay what people wrote while the bot was stopped or
disconnected. On start and after each reconnect an adapter asks for a `CatchUpPlan`, reads the
platform's history of each place from `since(place)` on, and hands every message it finds to
`Concierge.receive` like a live one: messages already recorded are recognised by their id and
have no second effect, so reading too much costs API calls, never a doubled message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from concierge.inbox import last_written
from concierge.records import Conversation
from concierge.states import ConversationStatus
from concierge.tables import table_of

CONVERSATIONS = table_of(Conversation)


@dataclass(frozen=True)
class ThreadToRead:
    """A staff thread of an open conversation: the replies in it may be for a member."""

    channel: str
    thread: str

    @property
    def place(self) -> str:
        return f"{self.channel}/{self.thread}"


@dataclass(frozen=True)
class CatchUpPlan:
    """What to read back on one platform.

    Attributes:
        platform: the platform it is for.
        oldest: nothing written before this is read (now minus `CONCIERGE_CATCH_UP_HOURS`).
        dm_channels: the members' DM channels we know on this platform (the adapter adds those
            the platform lists, e.g. Slack's `users.conversations`, so a first DM is found too).
        threads: the staff threads of the open conversations on this platform.
        last_seen: per place (channel, or channel/thread), the newest message recorded there.
    """

    platform: str
    oldest: datetime
    dm_channels: tuple[str, ...] = ()
    threads: tuple[ThreadToRead, ...] = ()
    last_seen: dict[str, datetime] = field(default_factory=dict)

    def since(self, place: str) -> datetime:
        """Read `place` from here on: its newest recorded message, or `oldest` (whichever is later)."""
        seen = self.last_seen.get(place)
        return max(seen, self.oldest) if seen is not None else self.oldest


def plan_catch_up(session: Session, platform: str, now: datetime, hours: float) -> CatchUpPlan:
    """The plan for `platform` from the records: members' DM channels, open staff threads, last seen."""
    dm_channels = session.execute(
        select(CONVERSATIONS.c.member_channel).distinct()
        .where(CONVERSATIONS.c.member_platform == platform, CONVERSATIONS.c.member_channel != "")
    ).scalars().all()
    threads = session.execute(
        select(CONVERSATIONS.c.staff_channel, CONVERSATIONS.c.staff_thread)
        .where(CONVERSATIONS.c.staff_platform == platform, CONVERSATIONS.c.status == ConversationStatus.OPEN,
               CONVERSATIONS.c.staff_thread.is_not(None))
        .order_by(CONVERSATIONS.c.id)
    ).all()
    oldest = now - timedelta(hours=hours)
    return CatchUpPlan(
        platform=platform,
        oldest=oldest,
        dm_channels=tuple(sorted(set(dm_channels))),
        threads=tuple(ThreadToRead(channel, thread) for channel, thread in threads),
        last_seen=last_written(session, platform, oldest),
    )
