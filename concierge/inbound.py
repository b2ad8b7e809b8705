"""Neutral events that adapters hand to the core, each carrying the platform's event id."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from concierge.platform import Address


@dataclass(frozen=True)
class Attachment:
    """A file shared with a message: stored (`sha256`, see `concierge.files`), refused (`problem`),
    or, from an adapter that does not download files, a link (`url`)."""

    name: str
    url: str = ""
    size: int = 0
    sha256: str = ""  # its bytes are in the file store
    mime: str = ""
    problem: str = ""  # why it was not passed on (too large, a refused type, the download failed)


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
