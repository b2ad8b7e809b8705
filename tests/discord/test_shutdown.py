"""Stopping: the bot takes no new events, and what was under way is handed over before the outbox stops."""

from __future__ import annotations

import asyncio

from adapters.discord.interactions import RESTARTING
from tests.contract.scenarios import setup_desk
from tests.discord.fake_discord import answer_text, is_private
from tests.discord.harness import quiesce
from tests.support.discord import DiscordDriver


async def test_a_stopping_bot_finishes_what_is_under_way_and_takes_nothing_new(world, monkeypatch):
    await setup_desk(DiscordDriver(world))
    concierge = world.bot.concierge
    receive = concierge.receive
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_receive(event):  # noqa: ANN001, ANN202 - a database taking its time
        entered.set()
        await release.wait()
        return await receive(event)

    monkeypatch.setattr(concierge, "receive", slow_receive)
    alice, dm = world.person("alice"), world.dm_channel("alice")
    world.gateway("MESSAGE_CREATE", world.fake.message_payload(dm, alice, "A nutrition question, under way"))
    await asyncio.wait_for(entered.wait(), 5)
    stopping = asyncio.create_task(world.bot.stop_taking_events())
    await asyncio.sleep(0.05)
    assert not stopping.done(), "the message under way is waited for"
    release.set()
    await asyncio.wait_for(stopping, 5)

    world.gateway("MESSAGE_CREATE", world.fake.message_payload(dm, alice, "Written while stopping"))
    await quiesce()
    answer = await world.slash("alice", "my-questions")
    assert is_private(answer) and answer_text(answer) == RESTARTING
    await world.settle()
    [thread] = world.fake.staff_threads()
    texts = world.thread_texts(thread)
    assert "A nutrition question, under way" in texts[0]
    assert not any("Written while stopping" in text for text in texts), "left to the next start's catch-up"
