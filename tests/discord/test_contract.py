"""The shared conversation scenarios on Discord, through discord.py's models, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.contract.desk_scenarios import DESK_SCENARIOS
from tests.contract.driver import settings_of
from tests.contract.scenarios import SCENARIOS
from tests.discord.conftest import running_world
from tests.support.discord import DiscordDriver, admins, assert_nobody_pinged, paged_experts


@pytest.mark.parametrize("scenario", SCENARIOS + DESK_SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario_on_discord(scenario, fake, database_url, clock):
    async with running_world(fake, database_url, clock, **settings_of(scenario)) as world:
        await scenario(DiscordDriver(world))
        assert_nobody_pinged(world.fake, await paged_experts(world) | await admins(world))
