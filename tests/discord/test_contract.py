"""The shared conversation scenarios on Discord, through discord.py's models, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.contract.scenarios import SCENARIOS
from tests.discord.fake_discord import answer_text, is_private
from tests.discord.harness import DiscordWorld, custom_ids


class DiscordDriver:
    """The contract's driver: people act through gateway events, answers are read off the fake's records."""

    admin = "admin"

    def __init__(self, world: DiscordWorld) -> None:
        self.world = world
        self._message_ids: dict[str, int] = {}

    def mention(self, person: str) -> str:
        return f"<@{self.world.user_id(person)}>"

    async def member_writes(self, person, text, *, event_id=None):
        message_id = None
        if event_id is not None:  # a redelivery carries the same message id (a snowflake)
            message_id = self._message_ids.setdefault(event_id, self.world.fake.new_id())
        await self.world.dm(person, text, message_id=message_id)

    async def staff_writes(self, person, thread, text):
        message = await self.world.write_in_thread(person, int(thread), text)
        replies = self.world.bot_replies_to(message)
        return replies[-1] if replies else None

    async def command(self, person, text, *, thread=None):
        answer = await self.world.slash(person, text, thread_id=int(thread) if thread else None)
        assert is_private(answer), answer
        return answer_text(answer)

    async def press(self, person, thread, action):
        card = self.world.card_of(int(thread))
        custom_id = next(cid for cid in custom_ids(card) if cid.split(":")[1] == action)
        answer = await self.world.press(person, int(thread), custom_id)
        assert is_private(answer), answer
        return answer_text(answer)

    async def settle(self):
        await self.world.settle()

    def threads(self):
        return [str(thread) for thread in self.world.fake.staff_threads()]

    def thread_texts(self, thread):
        return self.world.thread_texts(int(thread))

    def dms(self, person):
        return self.world.dms(person)


def assert_nobody_pinged(fake) -> None:
    """Every message the bot sent (posts, edits, interaction answers) allowed no mentions at all."""
    bodies = fake.message_bodies()
    assert bodies
    for call, body in bodies:
        mentions = body.get("allowed_mentions")
        assert mentions is not None, f"{call.method} {call.path} sent without allowed_mentions"
        assert mentions.get("parse") == [], (call.path, mentions)
        assert not mentions.get("users") and not mentions.get("roles") and not mentions.get("replied_user"), mentions


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario_on_discord(scenario, world):
    await scenario(DiscordDriver(world))
    assert_nobody_pinged(world.fake)
