"""CrossDriver: the shared scenarios with members on one platform and staff on the other.

Members (alice, erin, mallory) write from the member platform and run their commands there (in
their DM with the bot); everyone else (the admin, the experts) works on the staff platform: in
its staff channel, its threads, and their own DM with the bot. Each side is played by that
platform's own driver (signed requests into the bolt app; gateway payloads through discord.py),
on one runtime. A person named in a command is a mention when they are on the platform the
command runs on, and `platform:id` otherwise, as an admin names someone on the other platform.
"""

from __future__ import annotations

import re

from tests.contract.driver import tick
from tests.cross.world import CrossWorld
from tests.slack.driver import SlackDriver
from tests.slack.driver import user_id as slack_user_id
from tests.support.discord import DiscordDriver

MEMBERS = {"alice", "erin", "mallory"}
NAMED = re.compile(r"\{@(\w+)\}")  # what `mention` returns: a placeholder named where the command runs


class CrossDriver:
    admin = "admin"

    def __init__(self, world: CrossWorld) -> None:
        self.world = world
        self.on = {"slack": SlackDriver(world.slack), "discord": DiscordDriver(world.discord)}
        for driver in self.on.values():
            driver.settle = self.settle  # settling one side settles both: they share the outbox

    def platform_of(self, person: str) -> str:
        return self.world.members_on if person in MEMBERS else self.world.staff_on

    def _driver(self, person: str):  # noqa: ANN202
        return self.on[self.platform_of(person)]

    @property
    def _staff(self):  # noqa: ANN202
        return self.on[self.world.staff_on]

    def user_id(self, person: str) -> str:
        """`person`'s id on their own platform."""
        if self.platform_of(person) == "slack":
            return slack_user_id(person)
        return str(self.world.discord.user_id(person))

    def mention(self, person: str) -> str:
        return f"{{@{person}}}"

    def _named(self, text: str, runs_on: str) -> str:
        def name(match: re.Match[str]) -> str:
            person = match[1]
            where = self.platform_of(person)
            return self.on[where].mention(person) if where == runs_on else f"{where}:{self.user_id(person)}"

        return NAMED.sub(name, text)

    async def member_writes(self, person, text, *, event_id=None):
        await self._driver(person).member_writes(person, text, event_id=event_id)

    async def staff_writes(self, person, thread, text):
        return await self._staff.staff_writes(person, thread, text)

    async def command(self, person, text, *, thread=None):
        return await self._driver(person).command(person, self._named(text, self.platform_of(person)), thread=thread)

    async def press(self, person, thread, action):
        return await self._staff.press(person, thread, action)

    async def press_in_dm(self, person, label, *, fill=None):
        return await self._driver(person).press_in_dm(person, label, fill=fill)

    async def later(self, seconds):
        await tick(self.world.runtime, self.world.runtime.concierge.clock, seconds)
        await self.settle()

    async def settle(self):
        await self.world.settle()

    def threads(self):
        return self._staff.threads()

    def thread_texts(self, thread):
        return self._staff.thread_texts(thread)

    def card(self, thread):
        return self._staff.card(thread)

    def card_updates(self, thread):
        return self._staff.card_updates(thread)

    def dms(self, person):
        return self._driver(person).dms(person)
