"""`concierge run` on Discord, end to end: the gateway websocket, the REST API, the outbox loop."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from sqlmodel import select

import adapters.discord as adapter
import scheduling
from adapters.discord.bot import intents
from concierge.records import Conversation
from tests.discord.conftest import discord_settings_for
from tests.discord.fake_discord import answer_text, member_payload
from tests.discord.harness import DiscordWorld


async def eventually(check, timeout: float = 10.0) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


@pytest.fixture
def gateway(fake, monkeypatch):
    """discord.py connects to the fake's websocket instead of wss://gateway.discord.gg."""
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))


async def test_concierge_run_relays_a_conversation_over_the_gateway(fake, gateway, database_url, monkeypatch,
                                                                    tmp_path, clock):
    monkeypatch.chdir(tmp_path)  # no .env
    fake.clock = None  # the bot runs on real time here: so do Discord's ids
    monkeypatch.setenv("DISCORD_TOKEN", fake.token)
    monkeypatch.setenv("DISCORD_GUILD_ID", str(fake.guild_id))
    admin, settings = discord_settings_for(fake, database_url)
    people = DiscordWorld(fake, settings, clock)  # builds payloads; the bot itself runs in `run`
    people.people["admin"] = admin
    attached = []  # the digest scheduler the bot's background work starts

    def attach(runtime):  # noqa: ANN001, ANN202
        scheduler = attach.real(runtime)
        attached.append((runtime, scheduler))
        return scheduler

    attach.real = scheduling.attach
    monkeypatch.setattr(scheduling, "attach", attach)
    running = asyncio.create_task(adapter.run(settings))
    try:
        await asyncio.wait_for(fake.connected.wait(), 10)
        await eventually(lambda: attached)
        [(runtime, scheduler)] = attached
        assert "discord" in runtime.dispatcher.limiters, "digest fan-out to Discord is rate limited"
        assert scheduler.scheduler.get_job("digest-tick") is not None, "digests are planned on a tick"
        assert fake.identify["intents"] == intents().value
        assert fake.identify["intents"] & (1 << 15), "asks for the privileged MESSAGE_CONTENT intent"

        for line in (f"member add <@{people.user_id('alice')}> premium alice",
                     f"expert add <@{people.user_id('bob')}> nutrition bob"):
            payload = people.interaction("admin", 2, people.command_data(line.split()), people.channel_payload())
            fake.emit("INTERACTION_CREATE", payload)
            assert answer_text(await fake.answer_to(int(payload["id"]))).endswith(("member.", "questions."))

        alice = people.person("alice")
        fake.emit("MESSAGE_CREATE", fake.message_payload(people.dm_channel("alice"), alice, "Carbs before a race?"))
        await eventually(lambda: fake.staff_threads())  # the outbox loop delivered on its own
        [thread] = fake.staff_threads()
        # Discord opened the thread; an expert can answer in it once the bot recorded that.
        await eventually(lambda: runtime.db.run_sync(
            lambda session: session.exec(select(Conversation.staff_thread)).first()) == str(thread))

        bob = people.person("bob")
        reply = fake.message_payload(thread, bob, "Yes, two hours before.")
        reply["member"] = {key: value for key, value in member_payload(bob).items() if key != "user"}
        fake.emit("MESSAGE_CREATE", reply)
        await eventually(lambda: people.dms("alice"))
        assert people.dms("alice") == ["Yes, two hours before."]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
