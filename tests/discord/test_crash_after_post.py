"""kill -9 between Discord accepting the staff card and the outbox recording it: after a restart, one card."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from datetime import timedelta

from concierge.clock import FrozenClock, utc_now
from tests.discord.conftest import discord_settings_for
from tests.discord.harness import DiscordWorld

# A bot process on the fake's REST API: it enrols a member, receives her DM and delivers the card;
# the fake kills it once the card is stored, before Discord's answer reaches it.
BOT = textwrap.dedent("""
    import asyncio, json, sys
    import discord
    from adapters.discord.bot import create_bot
    from adapters.discord.settings import DiscordSettings
    from concierge.inbound import CommandInvoked, MemberMessage
    from concierge.platform import Address
    from concierge.settings import Settings

    async def main():
        base, token, guild, settings_json = sys.argv[1:5]
        discord.http.Route.BASE = base
        settings = Settings.model_validate_json(settings_json)
        bot = create_bot(settings, DiscordSettings(_env_file=None, token=token, guild_id=int(guild),
                                                   dm_open_interval_s=0.0, sync_commands=False))
        await bot.login(token)
        receive = bot.runtime.concierge.receive
        admin = Address("discord", "1", settings.admins[0].split(":")[1])
        await receive(CommandInvoked("c1", admin, ("member", "add", "discord:77", "premium", "Alice")))
        await receive(MemberMessage("5001", Address("discord", "4242", "77"), "Question?"))
        await bot.runtime.drain()
        print("not killed", flush=True)

    asyncio.run(main())
""")


async def test_a_card_discord_took_before_the_bot_was_killed_is_not_posted_again(fake, database_url):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    admin, settings = discord_settings_for(fake, database_url)
    fake.users[77] = {"id": "77", "username": "alice", "global_name": "Alice", "discriminator": "0", "avatar": None,
                      "bot": False, "public_flags": 0, "flags": 0}
    secrets = settings.model_dump(mode="json")
    secrets["database_url"] = database_url
    import json

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BOT, fake.base, fake.token, str(fake.guild_id), json.dumps(secrets), cwd=root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    staff = f"/channels/{fake.staff_channel_id}/messages"

    def kill_after_the_card(method: str, path: str, payload) -> None:  # noqa: ANN001
        if method == "POST" and path == staff:
            os.kill(process.pid, signal.SIGKILL)  # Discord has the card; the bot never hears so

    fake.after_call = kill_after_the_card
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == -signal.SIGKILL, (out + err).decode()[-3000:]
    fake.after_call = None
    assert len(fake.posts_in(fake.staff_channel_id)) == 1

    # A new process, later than the dead one's lease, outside the nonce's window: it asks Discord first.
    fake.clock.advance(3600)  # Discord's side: the nonce no longer de-duplicates
    world = DiscordWorld(fake, settings, FrozenClock(utc_now() + timedelta(hours=1)))
    world.people["admin"] = admin
    await world.start()
    try:
        await world.bot.runtime.dispatcher.release_own_leases()
        await world.settle()
        assert len(fake.posts_in(fake.staff_channel_id)) == 1, "the card was found, not posted again"
        assert len(fake.staff_threads()) == 1
    finally:
        await world.stop()
