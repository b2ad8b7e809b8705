"""The member flood limit: how many messages a member wrote into a conversation in the last minute."""

from __future__ import annotations

from concierge.people import Context


def too_fast(ctx: Context, recent: int) -> bool:
    """Whether a member who wrote `recent` messages into their conversation in the last minute
    (counted by `concierge.relay_lookup`, with the relay's other reads) is over the limit."""
    return recent >= ctx.settings.member_messages_per_minute
