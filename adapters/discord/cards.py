"""Cards as Discord embeds with buttons whose custom ids keep working after a restart."""

from __future__ import annotations

import re
from typing import Any

import discord

from adapters.discord.limits import clip
from concierge.platform import Card

# A button's custom id carries the core's action and value, so any process can handle a press on
# any card ever sent: no per-message view has to be registered again after a restart. Discord
# allows 100 characters: the value may take what the shortest action leaves (a digest's name
# has up to 63), and a press whose id the template does not match would fail for the person.
CUSTOM_ID = "concierge:{action}:{value}"
TEMPLATE = r"concierge:(?P<action>[a-z][a-z0-9_-]{0,30}):(?P<value>[^\s]{0,88})"

STYLES = {
    "": discord.ButtonStyle.secondary,
    "primary": discord.ButtonStyle.primary,
    "danger": discord.ButtonStyle.danger,
}

# Discord's embed and component limits.
TITLE_CHARS = 256
FIELD_NAME_CHARS = 256
FIELD_VALUE_CHARS = 1024
MAX_FIELDS = 25
EMBED_CHARS = 6000  # all text of an embed together
LABEL_CHARS = 80
MAX_BUTTONS = 25


def card_embed(card: Card) -> discord.Embed:
    """The card's title and fields as an embed (buttons go in the view)."""
    embed = discord.Embed(title=clip(card.title, TITLE_CHARS))
    for name, value in card.fields[:MAX_FIELDS]:
        name, value = clip(name or "-", FIELD_NAME_CHARS), clip(value or "-", FIELD_VALUE_CHARS)
        if len(embed) + len(name) + len(value) > EMBED_CHARS:
            break
        embed.add_field(name=name, value=value)
    return embed


def embed_for(card: Card, text: str) -> discord.Embed | None:
    """The card's embed beside `text`, or None when it would only repeat the text's first line.

    A digest's card is its title and an Unsubscribe button, and the text already opens with that
    title: the message then carries the text and the button, without an embed saying it twice.
    """
    first_line = text.strip().split("\n", 1)[0].strip()
    if not card.fields and card.title.strip() in ("", first_line):
        return None
    return card_embed(card)


class CardButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    """A card button as sent; a press on one is handled by its subclass `CardPress` (presses.py)."""

    def __init__(self, action: str, value: str = "", *, label: str = "",
                 style: str | discord.ButtonStyle = "") -> None:
        if not isinstance(style, discord.ButtonStyle):
            style = STYLES.get(style, discord.ButtonStyle.secondary)
        super().__init__(
            discord.ui.Button(
                label=clip(label or action, LABEL_CHARS),
                style=style,
                custom_id=CUSTOM_ID.format(action=action, value=value),
            )
        )
        self.action = action
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CardButton:
        # `item` is the pressed discord.ui.Button (typed as any item by discord.py's hook)
        return cls(match["action"], match["value"], label=getattr(item, "label", None) or "",
                   style=getattr(item, "style", ""))


def card_view(card: Card) -> discord.ui.View | None:
    """The card's buttons as a persistent view, or None when it has none."""
    if not card.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in card.buttons[:MAX_BUTTONS]:
        view.add_item(CardButton(button.action, button.value, label=button.label, style=button.style))
    return view
