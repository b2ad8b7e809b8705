"""Neutral events that adapters hand to the core, each carrying the platform's event id."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from concierge.platform import Address, Card


@dataclass(frozen=True)
class Attachment:
    """A file shared with a message, relayed as a link."""

    name: str
    url: str
    size: int = 0


@dataclass(frozen=True)
class MemberMessage:
    """Someone wrote to the bot in a direct message.

    `event_id` names the message itself, not the envelope it came in: unique on its platform
    (Slack: `<channel>:<ts>`; Discord: the message id), with `:edit:<edit time>` for an edit.
    The same message delivered again (a retry, a reconnect, the catch-up) has one effect.
    """

    event_id: str
    address: Address  # the DM channel and the author's user id
    text: str
    attachments: tuple[Attachment, ...] = ()
    display_name: str = ""
    edited: bool = False
    written_at: datetime | None = None  # the platform's time of the message (staff see late arrivals)


@dataclass(frozen=True)
class StaffReply:
    """Someone wrote inside a thread of the staff channel; `event_id` names the message, as above."""

    event_id: str
    address: Address  # channel, thread and the author's user id
    text: str
    attachments: tuple[Attachment, ...] = ()
    written_at: datetime | None = None


@dataclass(frozen=True)
class CommandInvoked:
    """Someone ran `/concierge <tokens...>`; `address` is where they ran it."""

    event_id: str
    address: Address
    tokens: tuple[str, ...]
    # Display names the adapter resolved for people the command names (user id, name): an
    # admin who enrols `@alice` without a name gets Alice's platform name, not her id.
    names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ButtonPressed:
    """Someone pressed a card button; `action` and `value` come from the `Button`."""

    event_id: str
    address: Address
    action: str
    value: str = ""


@dataclass(frozen=True)
class FormSubmitted:
    """Someone sent the `Form` the core asked for (a Slack or Discord modal); `text` is what they wrote."""

    event_id: str
    address: Address
    action: str
    value: str
    text: str


Inbound = MemberMessage | StaffReply | CommandInvoked | ButtonPressed | FormSubmitted
WrittenMessage = MemberMessage | StaffReply  # recorded, retried and recovered by catch-up
KINDS: dict[type, str] = {MemberMessage: "member_message", StaffReply: "staff_reply", CommandInvoked: "command",
                          ButtonPressed: "button", FormSubmitted: "form"}


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL refuses it) and lone surrogates (no UTF-8)


def storable(text: str) -> str:
    """`text` as it can be stored and sent anywhere: NUL dropped, a lone surrogate replaced by U+FFFD."""
    return _UNSTORABLE.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", text)


def normalised(event: Inbound) -> Inbound:
    """The event with every text it carries made storable (see `storable`); the same object when it was."""
    changes: dict = {}
    for name in event.__dataclass_fields__:
        value = getattr(event, name)
        if isinstance(value, str) and _UNSTORABLE.search(value):
            changes[name] = storable(value)
        elif name in ("tokens", "names") and any(_UNSTORABLE.search(str(part)) for part in value):
            changes[name] = tuple(storable(part) if isinstance(part, str) else tuple(map(storable, part))
                                  for part in value)
    return replace(event, **changes) if changes else event


def is_written_message(event: Inbound) -> bool:
    """A message a person wrote (as opposed to a command or a press, which is answered at once)."""
    return isinstance(event, (MemberMessage, StaffReply))


def event_to_dict(event: Inbound) -> dict:
    """The event as JSON-ready data (what the inbox keeps of an event still to be processed)."""
    data: dict = {"kind": KINDS[type(event)]}
    for name in event.__dataclass_fields__:
        value = getattr(event, name)
        if isinstance(value, Address):
            value = value.to_dict()
        elif name == "attachments":
            value = [vars(item) for item in value]
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        data[name] = value
    return data


def event_from_dict(data: dict) -> Inbound:
    """The event `event_to_dict` wrote."""
    kind = {name: cls for cls, name in KINDS.items()}[data["kind"]]
    values = {key: value for key, value in data.items() if key != "kind"}
    values["address"] = Address.from_dict(values["address"])
    if "attachments" in values:
        values["attachments"] = tuple(Attachment(**item) for item in values["attachments"])
    if values.get("written_at"):
        values["written_at"] = datetime.fromisoformat(values["written_at"])
    if "tokens" in values:
        values["tokens"] = tuple(values["tokens"])
    if "names" in values:
        values["names"] = tuple(tuple(pair) for pair in values["names"])
    return kind(**values)


@dataclass(frozen=True)
class Form:
    """A request for a few lines of text, shown natively (a modal on Slack and Discord).

    Sending it comes back as `FormSubmitted(action, value, text)`, which the core runs as the
    command `<action> <value> <text>`. Where a form cannot be shown (the playground, an answer
    Discord already deferred), the reply's text is shown instead: it says which command to type.
    """

    title: str  # short: Slack cuts modal titles at 24 characters
    label: str  # the text box's label; Discord cuts it at 45 characters
    action: str
    value: str = ""
    placeholder: str = ""
    required: bool = False
    max_chars: int = 1000


@dataclass(frozen=True)
class FileAttachment:
    """A file the core hands over with a private answer (the stats chart), as bytes."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"
    title: str = ""  # a caption or alt text; the filename when empty


@dataclass(frozen=True)
class Reply:
    """What the core answers privately to the person behind an inbound event."""

    text: str
    ok: bool = True
    card: Card | None = None  # buttons to offer with the answer (e.g. the digest catalogue)
    attachment: FileAttachment | None = None  # a file for the same person only (e.g. the stats chart)
    form: Form | None = None  # ask the person for text (a modal) instead of showing `text`
    # Slow work that completes this reply without the database (drawing a chart): `Concierge.handle`
    # runs it after the transaction committed, off the database thread, and answers what it returns.
    finish: Callable[[], Reply] | None = field(default=None, repr=False, compare=False)
