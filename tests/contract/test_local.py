"""The shared scenarios on the local platform, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from concierge.bootstrap import build_runtime
from tests.conftest import make_settings
from tests.contract.desk_scenarios import DESK_SCENARIOS
from tests.contract.driver import settings_of
from tests.contract.local_driver import LocalDriver
from tests.contract.scenarios import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS + DESK_SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario_on_local(scenario, database_url, platform, clock):
    runtime = build_runtime(make_settings(database_url, **settings_of(scenario)), {"local": platform}, clock=clock)
    try:
        await scenario(LocalDriver(runtime, platform))
    finally:
        runtime.close()
