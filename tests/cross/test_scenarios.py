"""The shared scenarios across platforms: members on Discord with staff on Slack, and the reverse,
in one runtime, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from adapters.slack.manifest import METHOD_SCOPES
from tests.contract.desk_scenarios import DESK_SCENARIOS
from tests.contract.driver import settings_of
from tests.contract.scenarios import SCENARIOS
from tests.cross.driver import CrossDriver
from tests.cross.world import cross_world
from tests.support.discord import admins, assert_nobody_pinged, paged_experts

# Scenarios that cannot run across platforms, with the reason. Keep this short: every other one runs.
NOT_ACROSS: dict[str, str] = {}
ACROSS = [scenario for scenario in SCENARIOS + DESK_SCENARIOS if scenario.__name__ not in NOT_ACROSS]


@pytest.mark.parametrize("members_on", ["discord", "slack"], ids=["members-on-discord", "members-on-slack"])
@pytest.mark.parametrize("scenario", ACROSS, ids=lambda s: s.__name__)
async def test_scenario_across_platforms(scenario, members_on, fake_slack, fake, database_url, clock):
    async with cross_world(members_on, fake_slack, fake, database_url, clock, **settings_of(scenario)) as world:
        await scenario(CrossDriver(world))
        if fake.message_bodies():  # some scenarios send Discord's members nothing at all
            assert_nobody_pinged(fake, await paged_experts(world.discord) | await admins(world.discord))
    # Every Slack call is one the manifest grants (the fake refuses others).
    assert all(call.ok for call in fake_slack.calls), [c for c in fake_slack.calls if not c.ok]
    assert fake_slack.methods_called() <= set(METHOD_SCOPES)
