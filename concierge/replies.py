"""What the core answers the person behind an inbound event: a private reply, a form to fill in, a file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from concierge.platform import Card


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
    # A read over a long history that completes this reply (`stats` over a period): `Concierge.receive`
    # runs it after the transaction committed, through `Database.read` (beside the writer on SQLite,
    # so relays do not wait for it), and answers what it returns. It must not write: nothing it does
    # is committed.
    read: Callable[[Session], Reply] | None = field(default=None, repr=False, compare=False)
    # Slow work that completes this reply without the database (drawing a chart): `Concierge.receive`
    # runs it after the transaction committed (and after `read`), off the database thread, and
    # answers what it returns.
    finish: Callable[[], Reply] | None = field(default=None, repr=False, compare=False)
