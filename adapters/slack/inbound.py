"""Translation: Slack payloads (events, commands, button presses) to the core's neutral events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from adapters.slack.blocks import action_of
from adapters.slack.files import attachment_of
from adapters.slack.mrkdwn import command_tokens, from_mrkdwn, to_plain
from adapters.slack.names import SlackNames
from adapters.slack.platform import PLATFORM, ts_to_datetime
from concierge.inbound import Attachment, ButtonPressed, CommandInvoked, Inbound, MemberMessage, StaffReply
from concierge.platform import Address

# Message subtypes that carry something a person wrote; all others (joins, deletions, bot
# posts, channel topic changes...) are ignored.
WRITTEN_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}  # /me text is written text


def _from_a_bot(message: dict[str, Any], bot_user_id: str | None) -> bool:
    return bool(
        message.get("bot_id")
        or message.get("bot_profile")
        or message.get("subtype") == "bot_message"
        or (bot_user_id and message.get("user") == bot_user_id)
    )


def _text(value: object) -> str:
    """A field that should be text; anything else (a number, a list: never from Slack) reads as none."""
    return value if isinstance(value, str) else ""


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _attachments(files: object) -> tuple[Attachment, ...]:
    """Shared files to download (`with_files`); one Slack gives no URL for (plan limits) is refused, and said.

    Fields of the wrong type are passed over: what can be read is relayed, the rest is not.
    """
    return tuple(attachment_of(_object(item)) for item in (files if isinstance(files, list) else ()))


def _written_at(ts: str | None) -> datetime | None:
    try:
        return ts_to_datetime(ts) if ts else None
    except ValueError:
        return None


def message_inbound(body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None, *, names: SlackNames,
                    staff_channels: frozenset[str]) -> Inbound | None:
    """A `message` event as MemberMessage (a DM), StaffReply (a staff thread) or None (not ours).

    The event id names the message itself, `<channel>:<ts>` (an edit: `<channel>:<ts>:edit:<edit ts>`),
    whatever envelope it came in: the catch-up reads the same message back from history under the
    same id. `written_at` is the message's `ts` (the edit's time for an edit).
    """
    # Fields of a type Slack never sends read as absent: a message is relayed as far as it can be
    # read (one with no readable text gets the member a polite "please write it out").
    channel = _text(event.get("channel"))
    team = _text(body.get("team_id")) or _text(event.get("team"))
    subtype = event.get("subtype")
    if subtype == "message_changed":
        message = _object(event.get("message"))
        previous = _object(event.get("previous_message"))
        if (event.get("channel_type") != "im" or message.get("subtype") not in WRITTEN_SUBTYPES
                or _from_a_bot(message, bot_user_id) or not _text(message.get("user"))):
            return None
        if _text(message.get("text")) == _text(previous.get("text")):
            return None  # a link preview or another change that is not an edit of the text
        edited_ts = (_text(_object(message.get("edited")).get("ts")) or _text(event.get("event_ts"))
                     or _text(event.get("ts")))
        event_id = f"{channel}:{_text(message.get('ts'))}:edit:{edited_ts}"
        return MemberMessage(event_id, Address(PLATFORM, channel, message["user"], workspace=team),
                             from_mrkdwn(to_plain(_text(message.get("text")))), (),  # files went with the message
                             edited=True, display_name=names.cached(message["user"]),
                             written_at=_written_at(edited_ts))
    if subtype not in WRITTEN_SUBTYPES or _from_a_bot(event, bot_user_id) or not _text(event.get("user")):
        return None
    ts = _text(event.get("ts")) or _text(event.get("event_ts"))
    if not channel or not ts:
        return None  # no message without a place and a time
    event_id = f"{channel}:{ts}"
    text = from_mrkdwn(to_plain(_text(event.get("text"))))
    attachments = _attachments(event.get("files"))
    if event.get("channel_type") == "im":
        return MemberMessage(event_id, Address(PLATFORM, channel, event["user"], workspace=team), text, attachments,
                             display_name=names.cached(event["user"]), written_at=_written_at(ts))
    thread = _text(event.get("thread_ts"))
    if channel in staff_channels and thread and thread != ts:
        return StaffReply(event_id, Address(PLATFORM, channel, event["user"], thread, team), text, attachments,
                          written_at=_written_at(ts))
    return None  # top-level chatter, other channels, group DMs


def command_inbound(command: dict[str, Any]) -> CommandInvoked:
    # Slash commands are not retried by Slack; the trigger id names one invocation.
    event_id = f"command:{command.get('trigger_id') or uuid.uuid4().hex}"
    where = Address(PLATFORM, command.get("channel_id", ""), command.get("user_id", ""),
                    workspace=command.get("team_id", ""))
    return CommandInvoked(event_id, where, command_tokens(command.get("text", "")))


def button_inbound(body: dict[str, Any], action: dict[str, Any]) -> ButtonPressed:
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
    # A card opens its thread: the thread is the card's own ts.
    thread = message.get("thread_ts") or message.get("ts") or container.get("message_ts", "")
    user = body.get("user") or {}
    team = (body.get("team") or {}).get("id") or user.get("team_id", "")
    event_id = f"action:{body.get('trigger_id') or action.get('action_ts') or uuid.uuid4().hex}"
    return ButtonPressed(event_id, Address(PLATFORM, channel, user.get("id", ""), thread, team),
                         action_of(action.get("action_id", "")), action.get("value", ""))

