"""Staff see people, not ids, on Discord: names resolved with the interaction, refreshed by each message."""

from __future__ import annotations

from tests.discord.fake_discord import answer_text
from tests.discord.harness import DiscordWorld


async def enrol_by_mention(world: DiscordWorld, shown: str) -> str:
    world.person("alice")["global_name"] = shown  # what Discord shows of her
    answer = await world.slash("admin", f"member add <@{world.user_id('alice')}> premium")
    await world.slash("admin", f"expert add <@{world.user_id('bob')}> nutrition bob")
    return answer_text(answer)


async def test_enrolled_by_mention_without_a_name_staff_see_her_name(world):
    assert await enrol_by_mention(world, "Alice Martin") == "Alice Martin is now a premium member."
    await world.dm("alice", "What should I eat before a race?")
    await world.settle()
    await world.dm("alice", "And after?")
    await world.settle()
    [thread] = world.fake.staff_threads()
    assert world.fake.threads[thread].payload["name"].startswith("Alice Martin, premium")
    assert world.thread_texts(thread)[-1] == "Alice Martin: And after?"
    assert str(world.user_id("alice")) not in world.fake.threads[thread].payload["name"]


async def test_a_renamed_member_shows_the_new_name_on_their_next_message(world):
    await enrol_by_mention(world, "Alice")
    await world.dm("alice", "Hello")
    await world.settle()
    world.person("alice")["global_name"] = "Alice B."
    await world.dm("alice", "Renamed")
    await world.settle()
    [thread] = world.fake.staff_threads()
    assert world.thread_texts(thread)[-1] == "Alice B.: Renamed"


async def test_a_hostile_display_name_pings_nobody_and_stays_inert(world):
    answer = await enrol_by_mention(world, "@everyone <@&123> " + "x" * 300)
    assert "@everyone" not in answer
    await world.dm("alice", "Question?")
    await world.settle()
    [thread] = world.fake.staff_threads()
    name = world.fake.threads[thread].payload["name"]
    assert "@everyone" not in name and "<@&" not in name and len(name) <= 100
    card = world.card_of(thread)
    assert "@everyone" not in str(card.get("embeds"))
