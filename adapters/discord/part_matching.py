"""Recognising a message's parts once posted: the nonce each part carries, and matching posted messages.

`DiscordPlatform.find_sent` reads the target's recent messages with these after an attempt whose
outcome is unknown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from adapters.discord.cards import CardButton, card_view, embed_for
from concierge.platform import Card, Outbound

NONCE_CHARS = 25  # Discord's limit for a message's nonce


def nonce_for(key: str, part: int) -> str | None:
    """The nonce of part `part` of the message with idempotency key `key` (None without a key).

    Sent with `enforce_nonce`, Discord answers a repeated post of the same nonce within a few
    minutes with the message it created the first time, instead of a copy.
    """
    if not key:
        return None
    return hashlib.sha256(f"{key}#{part}".encode()).hexdigest()[:NONCE_CHARS]


def part_content(content: str, card: Card | None) -> str:
    """What a part's content is when posted (a part with neither text nor card still says something)."""
    return "(empty message)" if not content and card is None else content


def matches_part(data: dict[str, Any], content: str, card: Card | None, text: str) -> bool:
    """Whether a posted message is this part: its text, and for the card part its title and buttons."""
    if (data.get("content") or "").strip() != content.strip():
        return False
    if card is None:
        return True
    embed = embed_for(card, text)
    titles = [item.get("title") or "" for item in data.get("embeds") or []]
    if embed is not None and titles[:1] != [embed.title or ""]:
        return False
    view = card_view(card)
    wanted = [item.custom_id for item in view.children if isinstance(item, CardButton)] if view is not None else []
    posted = [component.get("custom_id") for row in data.get("components") or []
              for component in row.get("components") or []]
    return posted == wanted


def own_parts(recent: list[dict[str, Any]], by_me: Callable[[dict[str, Any]], bool], parts: list[str],
              message: Outbound, *, with_card: bool) -> list[dict[str, Any]]:
    """The leading `parts` of `message` among `recent` (newest first), as Discord has them.

    Only the bot's posts (`by_me`) after the last message by anyone else count; the newest run
    that starts with the first part is taken.
    """
    own: list[dict[str, Any]] = []
    for data in recent:
        if not by_me(data):
            break  # someone wrote after this: what came before is older than our attempt
        own.append(data)
    own.reverse()  # oldest first
    card = message.card if with_card else None
    expected = [(part_content(part, card if index == 0 else None), card if index == 0 else None)
                for index, part in enumerate(parts)]
    for start in range(len(own) - 1, -1, -1):
        found: list[dict[str, Any]] = []
        for data, (content, part_card) in zip(own[start:], expected, strict=False):  # a partial send has fewer
            if not matches_part(data, content, part_card, message.text):
                break
            found.append(data)
        if found:
            return found
    return []
