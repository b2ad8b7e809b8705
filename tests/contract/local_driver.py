"""The local platform's driver for the shared scenarios, also used by the service tests."""

from __future__ import annotations

import itertools
import shlex
import uuid

from adapters.local.platform import LocalPlatform
from concierge.inbound import ButtonPressed, CommandInvoked, FormSubmitted, MemberMessage, StaffReply
from concierge.platform import Address
from tests.contract.driver import tick


class LocalDriver:
    admin = "admin"

    def __init__(self, runtime, platform: LocalPlatform) -> None:
        self.runtime = runtime
        self.platform = platform
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:6]  # a second driver on the same database (a restart) uses new ids
        self._answers: dict[str, list] = {}  # private answers to each person, newest last

    def _id(self) -> str:
        return f"{self._run}-e{next(self._ids)}"

    def mention(self, person: str) -> str:
        return person

    async def member_writes(self, person, text, *, event_id=None):
        await self.runtime.concierge.handle(
            MemberMessage(event_id or self._id(), LocalPlatform.dm_address(person), text))

    async def staff_writes(self, person, thread, text):
        reply = await self.runtime.concierge.handle(
            StaffReply(self._id(), Address("local", "concierge-staff", person, thread), text))
        return reply.text if reply else None

    def _where(self, person, thread):
        return Address("local", "concierge-staff", person, thread) if thread else LocalPlatform.dm_address(person)

    async def command(self, person, text, *, thread=None):
        reply = await self.runtime.concierge.handle(
            CommandInvoked(self._id(), self._where(person, thread), tuple(shlex.split(text))))
        return reply.text

    def _card_now(self, thread):
        """The card's message as it shows now: its last edit, or the message that opened the thread."""
        opened = next(sent for sent in self.platform.threads_opened() if sent.ref.address.thread == thread)
        edits = [message for ref, message in self.platform.edits if ref.message_id == opened.ref.message_id]
        return edits[-1] if edits else opened.message

    def card_updates(self, thread):
        opened = next(sent for sent in self.platform.threads_opened() if sent.ref.address.thread == thread)
        return sum(ref.message_id == opened.ref.message_id for ref, _ in self.platform.edits)

    async def press(self, person, thread, action):
        button = next(b for b in self._card_now(thread).card.buttons if b.action == action)
        reply = await self.runtime.concierge.handle(
            ButtonPressed(self._id(), self._where(person, thread), button.action, button.value))
        return reply.text

    async def press_in_dm(self, person, label, *, fill=None):
        # Buttons on the bot's DMs, and on its private answers there (the core's replies).
        cards = [sent.message.card for sent in self.platform.sent
                 if sent.address.channel == f"dm-{person}" and sent.message.card]
        cards += [reply.card for reply in self._answers.get(person, []) if reply.card]
        button = next(b for card in reversed(cards) for b in card.buttons if b.label == label)
        where = LocalPlatform.dm_address(person)
        reply = await self._private(person, ButtonPressed(self._id(), where, button.action, button.value))
        if reply.form is not None:
            assert fill is not None, f"pressing {label!r} asks for text: {reply.form}"
            reply = await self._private(person, FormSubmitted(self._id(), where, reply.form.action,
                                                              reply.form.value, fill))
        else:
            assert fill is None, f"pressing {label!r} asked for no text"
        await self.settle()
        return reply.text

    async def _private(self, person, event):
        reply = await self.runtime.concierge.handle(event)
        self._answers.setdefault(person, []).append(reply)
        return reply

    async def later(self, seconds):
        await tick(self.runtime, self.runtime.concierge.clock, seconds)
        await self.settle()

    async def settle(self):
        await self.runtime.drain()

    def threads(self):
        return [sent.ref.address.thread for sent in self.platform.threads_opened()]

    def thread_texts(self, thread):
        return self.platform.thread_posts(thread)

    def card(self, thread):
        message = self._card_now(thread)
        fields = [f"{name}: {value}" for name, value in message.card.fields]
        return "\n".join([message.card.title, *fields, message.text])

    def dms(self, person):
        return self.platform.dms_to(person)
