"""Opening DMs: on PostgreSQL the pace is shared by every bot process; on SQLite each keeps its own."""

from __future__ import annotations

import asyncio
import time

from adapters.discord.bot import create_bot
from adapters.discord.settings import DiscordSettings
from tests.conftest import make_settings

INTERVAL_S = 0.2


def bot_on(url: str):
    discord_settings = DiscordSettings(_env_file=None, token="abc.def.ghi", guild_id=1, dm_open_interval_s=INTERVAL_S)
    return create_bot(make_settings(url, staff_channel="100"), discord_settings)


async def test_two_processes_on_postgresql_open_dms_at_one_pace_together(postgres):
    url = postgres.create_database("dm_pace", template="concierge_template")
    bots = [bot_on(url), bot_on(url)]  # two processes: each its own runtime, pool and DM channel cache
    opened: list[float] = []

    async def open_channel(user: str) -> str:
        opened.append(time.monotonic())
        return f"dm-{user}"

    try:
        await asyncio.gather(*(bot.platform.dm_channels.channel_of(f"{number}{index}", open_channel)
                               for number, bot in enumerate(bots) for index in range(4)))
        opened.sort()
        gaps = [later - earlier for earlier, later in zip(opened, opened[1:], strict=False)]
        assert len(opened) == 8 and min(gaps) > INTERVAL_S * 0.75, gaps
    finally:
        for bot in bots:
            await bot.close()
            bot.runtime.close()


async def test_on_sqlite_a_process_keeps_its_own_pace(tmp_path, sqlite_template):
    import shutil

    shutil.copy(sqlite_template, tmp_path / "pace.db")
    bot = bot_on(f"sqlite:///{tmp_path / 'pace.db'}")
    try:
        assert bot.platform.dm_channels.reserve is None
        opened: list[float] = []

        async def open_channel(user: str) -> str:
            opened.append(time.monotonic())
            return f"dm-{user}"

        for user in ("1", "2", "3"):
            await bot.platform.dm_channels.channel_of(user, open_channel)
        assert opened[2] - opened[0] > 2 * INTERVAL_S * 0.9
    finally:
        await bot.close()
        bot.runtime.close()
