"""The seam between the core and a chat platform: addresses, outbound messages, the port, its errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Address:
    """Where a message comes from or goes to, in plain strings.

    Attributes:
        platform: adapter name, e.g. "local", "slack", "discord".
        channel: channel or DM channel id ("" when only the user is known).
        user: user id on that platform ("" for a channel).
        thread: thread id inside the channel ("" for top level).
        workspace: Slack team or Discord guild id ("" when there is one).
    """

    platform: str
    channel: str = ""
    user: str = ""
    thread: str = ""
    workspace: str = ""

    def in_thread(self, thread: str) -> Address:
        return Address(self.platform, self.channel, self.user, thread, self.workspace)

    def to_dict(self) -> dict[str, str]:
        return {"platform": self.platform, "channel": self.channel, "user": self.user,
                "thread": self.thread, "workspace": self.workspace}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Address:
        return cls(**data)


@dataclass(frozen=True)
class Button:
    """A button on a card; `action` is what the core receives back when it is pressed."""

    label: str
    action: str
    value: str = ""
    style: str = ""  # "", "primary" or "danger"


@dataclass(frozen=True)
class Card:
    """A structured message part that adapters render natively or as plain text.

    With an empty title and no fields, it is just buttons under the message's text.
    """

    title: str
    fields: tuple[tuple[str, str], ...] = ()
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class FileRef:
    """A file in the file store (`concierge.files`) a message carries: the adapter uploads its bytes."""

    sha256: str
    name: str
    mime: str
    size: int


@dataclass(frozen=True)
class Outbound:
    """A message the core wants sent: text plus an optional card.

    `idempotency_key` is the same on every attempt to send this message (the outbox sets it);
    a platform that can de-duplicate sends (Discord's `nonce`) should pass it on.
    """

    text: str
    card: Card | None = None
    idempotency_key: str = ""
    # User ids (on the message's platform) the core pages on purpose, e.g. the experts on duty.
    # Adapters ping exactly these and nobody else; everything in `text` stays inert.
    mentions: tuple[str, ...] = ()
    # Files to upload with the message, read from the file store at send time (never bytes here).
    files: tuple[FileRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.card is None and not self.files:  # the hot path (a relayed message): what asdict gives, cheaper
            return {"text": self.text, "card": None, "idempotency_key": self.idempotency_key,
                    "mentions": self.mentions, "files": ()}
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outbound:
        card = data.get("card")
        if card is not None:
            card = Card(
                title=card["title"],
                fields=tuple(tuple(pair) for pair in card.get("fields", ())),
                buttons=tuple(Button(**button) for button in card.get("buttons", ())),
            )
        return cls(text=data["text"], card=card, idempotency_key=data.get("idempotency_key", ""),
                   mentions=tuple(data.get("mentions", ())),
                   files=tuple(FileRef(**item) for item in data.get("files", ())))


@dataclass(frozen=True)
class MessageRef:
    """A sent message: where it went and the platform's id for it.

    For `open_thread`, `address.thread` names the new thread.
    """

    address: Address
    message_id: str


class PlatformError(Exception):
    """Base of the neutral errors adapters raise."""


class RateLimited(PlatformError):
    """The platform asked us to slow down; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float, detail: str = "rate limited") -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unreachable(PlatformError):
    """The recipient cannot be reached (left, DMs closed, channel gone): permanent."""


class PlatformDown(PlatformError):
    """The platform failed or could not be reached: transient, retry later.

    `outcome_unknown`: the request may have gone through all the same (a timeout, a 5xx after
    the platform took it); the outbox then asks the platform (`find_sent`) before sending again.
    False when the request certainly did not arrive (connection refused, a 429).
    """

    def __init__(self, detail: str = "platform down", *, outcome_unknown: bool = True) -> None:
        super().__init__(detail)
        self.outcome_unknown = outcome_unknown


@runtime_checkable
class Platform(Protocol):
    """The port every adapter implements once; the outbox dispatcher is its only caller."""

    name: str

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        """Post `message` at `address` (a channel, a DM, or a thread)."""
        ...

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        """Post `message` in `channel` as the start of a new thread; the ref names the thread."""
        ...

    async def open_dm(self, user: Address) -> Address:
        """Return the address of the direct-message channel with `user`."""
        ...

    async def edit(self, ref: MessageRef, message: Outbound) -> None:
        """Replace a message the bot sent earlier."""
        ...


class FindsSent(Protocol):
    """Optional part of the port: can the platform tell whether a message whose outcome we lost arrived?

    `find_sent` looks for the message the bot posted at `address` carrying `message.idempotency_key`
    (Slack: the key in the message's metadata; Discord: the nonce) and returns its ref as `send`
    (or, with `opens_thread`, `open_thread`) would have, or None when it is not there.
    """

    async def find_sent(self, address: Address, message: Outbound, *, opens_thread: bool = False
                        ) -> MessageRef | None: ...


class CompletesSent(Protocol):
    """Optional, with `FindsSent`: finish what `send` does after its post, for a message `find_sent`
    found (the attempt that posted it may have stopped there). Slack: upload the message's files
    not in its thread yet. A platform whose message and files are one post (Discord) needs none.
    """

    async def complete_sent(self, ref: MessageRef, message: Outbound) -> None: ...
