"""The core's `Form` (a request for text, e.g. a comment on a rating) as a Discord modal.

The modal is finished before it is sent, so discord.py keeps no object for it: its submission
is matched by its custom id here (`concierge-form:<action>:<value>`), and one sent before a
restart still reaches the core, as card buttons do.
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord.limits import clip
from concierge.replies import Form

FORM_PREFIX = "concierge-form:"
TEXT_ID = "text"
TITLE_CHARS = 45  # Discord's limits for a modal's title and a text input's label
LABEL_CHARS = 45
TEXT_CHARS = 4000
CUSTOM_ID_CHARS = 100


def form_modal(form: Form) -> discord.ui.Modal:
    modal = discord.ui.Modal(title=clip(form.title, TITLE_CHARS),
                             custom_id=f"{FORM_PREFIX}{form.action}:{form.value}"[:CUSTOM_ID_CHARS], timeout=None)
    modal.add_item(discord.ui.TextInput(
        label=clip(form.label, LABEL_CHARS), custom_id=TEXT_ID, style=discord.TextStyle.paragraph,
        required=form.required, max_length=min(form.max_chars, TEXT_CHARS),
        placeholder=clip(form.placeholder, 100) or None))
    modal.stop()  # matched by its custom id (`FormCog`, presses.py), not kept by discord.py
    return modal


def _written(components: list[dict[str, Any]]) -> str:
    """The text input's value, wherever the payload nests it (action rows, labels)."""
    for component in components:
        if component.get("custom_id") == TEXT_ID and "value" in component:
            return str(component.get("value") or "")
        nested = component.get("components") or ([component["component"]] if "component" in component else [])
        found = _written(nested)
        if found:
            return found
    return ""


def submission_of(interaction: discord.Interaction) -> tuple[str, str, str] | None:
    """(action, value, text) of a submitted form modal, or None for any other interaction."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data: Any = interaction.data or {}
    custom_id = str(data.get("custom_id", ""))
    if not custom_id.startswith(FORM_PREFIX):
        return None
    action, _, value = custom_id[len(FORM_PREFIX):].partition(":")
    return action, value, _written(data.get("components") or [])
