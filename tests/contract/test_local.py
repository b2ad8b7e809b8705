"""The shared scenarios on the local platform, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.contract.local_driver import LocalDriver
from tests.contract.scenarios import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario_on_local(scenario, runtime, platform):
    await scenario(LocalDriver(runtime, platform))
