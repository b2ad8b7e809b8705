"""LocalPlatform: the `Platform` port in memory, recording what is sent and optionally printing it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from concierge.platform import Address, Card, MessageRef, Outbound, PlatformDown


def button_hints(card: Card | None) -> str:
    """The playground has no buttons: each one is shown with the command that does the same."""
    if card is None or not card.buttons:
        return ""
    return "\n".join(f"    [{button.label}] /concierge {button.action} {button.value}".rstrip()
                     for button in card.buttons)


@dataclass(frozen=True)
class Sent:
    """One delivered message."""

    address: Address
    message: Outbound
    ref: MessageRef
    opened_thread: bool = False


class LocalPlatform:
    """An in-memory platform: DMs are channels named `dm-<user>`, threads are numbered from 1.

    `fail_next(...)` makes the next sends raise the given neutral errors, in order;
    `lose_next_answers(n)` makes the next `n` sends deliver the message and then raise
    `PlatformDown` all the same (a post that went through but whose answer was lost).
    """

    name = "local"

    def __init__(self, echo: Callable[[str], None] | None = None, name: str = "local") -> None:
        self.name = name
        self.echo = echo
        self.sent: list[Sent] = []
        self.edits: list[tuple[MessageRef, Outbound]] = []
        self._failures: list[Exception] = []
        self._lost_answers = 0
        self._threads = itertools.count(1)
        self._messages = itertools.count(1)

    def fail_next(self, *errors: Exception) -> None:
        self._failures.extend(errors)

    def start_threads_after(self, last: int) -> None:
        """Number new threads from `last + 1` on (threads of an earlier run keep theirs)."""
        self._threads = itertools.count(last + 1)

    def lose_next_answers(self, count: int = 1) -> None:
        self._lost_answers += count

    def _maybe_fail(self) -> None:
        if self._failures:
            raise self._failures.pop(0)

    def _maybe_lose_answer(self) -> None:
        if self._lost_answers:
            self._lost_answers -= 1
            raise PlatformDown("the answer to the post was lost (it went through)")

    @staticmethod
    def dm_address(user: str, platform: str = "local") -> Address:
        return Address(platform, f"dm-{user}", user)

    def _show(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        self._maybe_fail()
        ref = MessageRef(address, str(next(self._messages)))
        self.sent.append(Sent(address, message, ref))
        if address.channel.startswith("dm-"):
            elsewhere = f" on {self.name}" if self.name != "local" else ""
            self._show(f"  [DM to {address.user or address.channel[3:]}{elsewhere}] {message.text}")
            if button_hints(message.card):
                self._show(button_hints(message.card))
        elif address.thread:
            self._show(f"  [staff #{address.channel} thread {address.thread}] {message.text}")
        else:
            self._show(f"  [#{address.channel}] {message.text}")
        self._maybe_lose_answer()
        return ref

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        self._maybe_fail()
        thread = str(next(self._threads))
        ref = MessageRef(channel.in_thread(thread), str(next(self._messages)))
        self.sent.append(Sent(channel, message, ref, opened_thread=True))
        title = f" ({message.card.title})" if message.card else ""
        where = dict(message.card.fields).get("Id", "") if message.card else ""
        if message.card and where and not where.startswith(f"{self.name}:"):  # a member writing from another platform
            title = f" ({message.card.title}; writes from {where})"
        self._show(f"  [staff #{channel.channel}] thread {thread}{title}: {message.text}")
        self._maybe_lose_answer()
        return ref

    async def find_sent(self, address: Address, message: Outbound, *, opens_thread: bool = False) -> MessageRef | None:
        """The message sent earlier with the same idempotency key, if it arrived (see `FindsSent`)."""
        if not message.idempotency_key:
            return None
        for sent in reversed(self.sent):
            if sent.message.idempotency_key == message.idempotency_key and sent.opened_thread == opens_thread:
                return sent.ref
        return None

    async def open_dm(self, user: Address) -> Address:
        return self.dm_address(user.user, self.name)

    async def edit(self, ref: MessageRef, message: Outbound) -> None:
        self._maybe_fail()
        self.edits.append((ref, message))
        if message.card is not None:  # the staff card follows its conversation
            status = dict(message.card.fields).get("Status", message.card.title)
            self._show(f"  [staff #{ref.address.channel} thread {ref.address.thread}, card] {status}")
            if button_hints(message.card):
                self._show(button_hints(message.card))

    # What tests read.
    def dms_to(self, user: str) -> list[str]:
        return [sent.message.text for sent in self.sent if sent.address.channel == f"dm-{user}"]

    def thread_posts(self, thread: str) -> list[str]:
        return [sent.message.text for sent in self.sent if sent.ref.address.thread == thread]

    def threads_opened(self) -> list[Sent]:
        return [sent for sent in self.sent if sent.opened_thread]
