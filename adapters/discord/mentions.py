"""Who a Discord message may ping: only the users the core pages on purpose (`Outbound.mentions`)."""

from __future__ import annotations

import discord

from concierge.platform import Outbound

NO_MENTIONS = discord.AllowedMentions.none()
MAX_MENTIONED_USERS = 100  # Discord's limit for allowed_mentions.users


def paged_users(message: Outbound) -> list[int]:
    """The user ids the core pages on purpose (`Outbound.mentions`): digits only, each once."""
    ids = dict.fromkeys(int(user) for user in message.mentions if str(user).isdigit())
    return list(ids)[:MAX_MENTIONED_USERS]


def allowed_mentions_for(message: Outbound) -> discord.AllowedMentions:
    """Exactly the paged users may be pinged; never @everyone, roles, or a replied-to author."""
    users = paged_users(message)
    if not users:
        return NO_MENTIONS
    return discord.AllowedMentions(everyone=False, roles=False, replied_user=False,
                                   users=[discord.Object(id=user) for user in users])


def content_with_mentions(message: Outbound) -> str:
    """The text with the paged users' `<@id>` on a first line of its own (so it lands in part one)."""
    users = paged_users(message)
    if not users:
        return message.text
    line = " ".join(f"<@{user}>" for user in users)
    return f"{line}\n{message.text}" if message.text else line
