"""Block Kit rendering of the core's `Outbound` (text plus optional `Card`), within Slack's limits."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from adapters.slack.manifest import COMMAND
from adapters.slack.mrkdwn import escape, to_mrkdwn
from concierge.platform import Button, Card, Outbound
from concierge.relay import NOTE_PREFIX
from concierge.replies import Form

# Block Kit limits (characters or items), from Slack's block reference.
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_MAX = 10
BUTTON_LABEL_MAX = 75
BUTTON_VALUE_MAX = 2000
ACTIONS_MAX = 25
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100

ACTION_PREFIX = "concierge:"
# A Slack user id as the core stores it; anything else in `Outbound.mentions` is not rendered.
_USER_ID = re.compile(r"^[UW][A-Z0-9]{1,30}$")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _chunks(text: str, size: int) -> list[str]:
    return [text[start:start + size] for start in range(0, len(text), size)] or [""]


def action_id(index: int, button: Button) -> str:
    """`concierge:<n>:<action>`: unique within the card, and the core's action at the end."""
    return f"{ACTION_PREFIX}{index}:{button.action}"


def action_of(action_id_: str) -> str:
    """The core's action name from a button's `action_id`."""
    return action_id_[len(ACTION_PREFIX):].split(":", 1)[-1]


def _button(index: int, button: Button) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(button.label, BUTTON_LABEL_MAX)},
        "action_id": action_id(index, button),
        "value": _clip(button.value, BUTTON_VALUE_MAX),
    }
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    return element


def card_blocks(card: Card, text: str, *, thread_hint: bool = False, paged: str = "") -> list[dict[str, Any]]:
    """A header, who is paged, the message text, the card's fields, its buttons, and (for a thread) how to answer.

    `paged` is a `mention_line` (real mentions, not escaped); everything else is escaped.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(card.title, HEADER_MAX)}}
    ] if card.title.strip() else []  # no title: the text with buttons under it
    if paged:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": paged}})
    title_line, _, rest = text.partition("\n")
    if rest and len(card.title) <= HEADER_MAX and title_line.strip() == card.title.strip():
        text = rest  # the header shows it already (a digest edition starts with its title)
    escaped = escape(to_mrkdwn(text))
    if escaped:
        # Escaping grows the text; a long message spreads over several sections.
        for part in _chunks(escaped, SECTION_TEXT_MAX)[: MESSAGE_BLOCKS_MAX - 3 - len(blocks)]:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": part}})
    if card.fields:
        fields = [
            {"type": "mrkdwn", "text": _clip(f"*{escape(name)}*\n{escape(value)}", FIELD_TEXT_MAX)}
            for name, value in card.fields[:FIELDS_MAX]
        ]
        blocks.append({"type": "section", "fields": fields})
    if card.buttons:
        blocks.append({
            "type": "actions",
            "elements": [_button(index, button) for index, button in enumerate(card.buttons[:ACTIONS_MAX])],
        })
    if thread_hint:
        hint = f"Reply in this thread to answer the member; a reply that starts with `{NOTE_PREFIX}` stays here."
        if card.buttons:
            # A pressed button reaches the core as the command `<action> <value>`; slash commands
            # carry no thread, so this is how to type them for this conversation.
            typed = (" ".join(word for word in (COMMAND, b.action, b.value) if word) for b in card.buttons)
            hint += " Same as the buttons: " + " \u00b7 ".join(f"`{escape(command)}`" for command in typed)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(hint, SECTION_TEXT_MAX)}]})
    return blocks


def mention_line(user_ids: tuple[str, ...]) -> str:
    """Real `<@U...>` mentions of exactly `user_ids` (the people the core pages on purpose).

    Only well-formed Slack user ids are rendered, each once; nothing else can become a ping.
    """
    seen: list[str] = []
    for user in user_ids:
        if _USER_ID.match(user or "") and user not in seen:
            seen.append(user)
    return " ".join(f"<@{user}>" for user in seen)


def message_fields(message: Outbound, *, opens_thread: bool = False) -> dict[str, Any]:
    """`text` (in Slack's formatting, escaped; with a card, the notification fallback) and `blocks` for chat.* methods.

    `message.mentions` come first, as real mentions (in the fallback text and, for a card, in a
    block under the header); the text itself is escaped, so it never pings anyone.
    """
    paged = mention_line(message.mentions)
    if message.card is None:
        text = escape(to_mrkdwn(message.text))
        return {"text": f"{paged} {text}" if paged else text}
    title = message.card.title.strip()
    fallback = f"{title}: {message.text}" if message.text and title else message.text or title
    text = escape(to_mrkdwn(fallback))
    blocks = card_blocks(message.card, message.text, thread_hint=opens_thread, paged=paged)
    return {"text": f"{paged} {text}" if paged else text, "blocks": blocks}


@dataclass(frozen=True)
class Section:
    """One paragraph of a view (already escaped mrkdwn), with an optional button beside it."""

    text: str
    button: Button | None = None


def home_view(sections: list[Section | str], *, title: str, notice: str = "") -> dict[str, Any]:
    """The App Home tab: a header, the `notice` (the answer to a button just pressed), the sections.

    A section's button sits beside its text (an accessory); pressing it reaches the core as
    `ButtonPressed(action, value)`, like a message card's.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_MAX)}}]
    if notice:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _clip(escape(notice), SECTION_TEXT_MAX)}})
        blocks.append({"type": "divider"})
    for index, section in enumerate(sections[: VIEW_BLOCKS_MAX - len(blocks)]):
        if isinstance(section, str):
            section = Section(section)
        block: dict[str, Any] = {"type": "section",
                                 "text": {"type": "mrkdwn", "text": _clip(section.text, SECTION_TEXT_MAX)}}
        if section.button is not None:
            block["accessory"] = _button(index, section.button)
        blocks.append(block)
    return {"type": "home", "blocks": blocks}


FORM_CALLBACK = "concierge-form"
FORM_BLOCK, FORM_INPUT = "answer", "text"
MODAL_TITLE_MAX = 24
INPUT_LABEL_MAX = 2000
INPUT_MAX = 3000


def form_view(form: Form, channel: str) -> dict[str, Any]:
    """The core's `Form` as a modal with one text box; `private_metadata` carries what the submission needs."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": FORM_INPUT, "multiline": True,
                               "max_length": min(form.max_chars, INPUT_MAX)}
    if form.placeholder:
        element["placeholder"] = {"type": "plain_text", "text": _clip(form.placeholder, 150)}
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK,
        "title": {"type": "plain_text", "text": _clip(form.title, MODAL_TITLE_MAX)},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"action": form.action, "value": form.value, "channel": channel}),
        "blocks": [{"type": "input", "block_id": FORM_BLOCK, "optional": not form.required,
                    "label": {"type": "plain_text", "text": _clip(form.label, INPUT_LABEL_MAX)},
                    "element": element}],
    }


def form_submission(view: dict[str, Any]) -> tuple[str, str, str, str]:
    """(action, value, channel, text) of a submitted `form_view`."""
    meta = json.loads(view.get("private_metadata") or "{}")
    text = (((view.get("state") or {}).get("values") or {}).get(FORM_BLOCK) or {}).get(FORM_INPUT) or {}
    return meta.get("action", ""), meta.get("value", ""), meta.get("channel", ""), text.get("value") or ""
