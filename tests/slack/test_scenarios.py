"""The shared conversation scenarios on Slack (signed HTTP requests to the bolt app), SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from adapters.slack.manifest import METHOD_SCOPES
from tests.contract.desk_scenarios import DESK_SCENARIOS
from tests.contract.driver import settings_of
from tests.contract.scenarios import SCENARIOS
from tests.slack.driver import SlackDriver
from tests.slack.harness import start_bot


@pytest.mark.parametrize("scenario", SCENARIOS + DESK_SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario_on_slack(scenario, database_url, fake_slack, clock):
    bot = await start_bot(database_url, fake_slack, clock=clock, **settings_of(scenario))
    try:
        await scenario(SlackDriver(bot))
    finally:
        await bot.close()
    # Every call the scenario made is one the manifest grants (the fake refuses others).
    assert all(call.ok for call in fake_slack.calls), [c for c in fake_slack.calls if not c.ok]
    assert fake_slack.methods_called() <= set(METHOD_SCOPES)
