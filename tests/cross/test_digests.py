"""Digests across platforms: staff build them on the staff platform, members get them on theirs."""

from __future__ import annotations

import pytest

from concierge.digests.audit import consent_violations
from tests.contract.scenarios import setup_desk
from tests.cross.driver import CrossDriver
from tests.cross.world import cross_world

HOUR = 3600
BOLD = {"slack": "Eat *oats*", "discord": "Eat **oats**"}  # the item as each platform writes bold


@pytest.mark.parametrize("members_on", ["discord", "slack"], ids=["members-on-discord", "members-on-slack"])
async def test_a_digest_made_by_staff_reaches_a_member_on_the_other_platform(members_on, fake_slack, fake,
                                                                             database_url, clock):
    async with cross_world(members_on, fake_slack, fake, database_url, clock) as world:
        d = CrossDriver(world)
        await setup_desk(d)
        assert "tips" in await d.command(d.admin, "digest create tips Training tips --cadence daily")
        # bob types bold his platform's way; each member reads it bold their platform's way.
        await d.command("bob", f"digest add tips {BOLD[world.staff_on]} two hours before a race.")
        await d.command("bob", "digest test tips")  # to bob's own DM, on the staff platform
        await d.settle()
        staff_side = d.on[world.staff_on]
        assert any(BOLD[world.staff_on] in text for text in staff_side.dms("bob")), staff_side.dms("bob")

        assert "Subscribed to Training tips" in await d.command("alice", "subscribe tips --hour 10")
        await d.command(d.admin, "digest publish tips")
        await d.later(2 * HOUR)  # 11:00 UTC: past alice's delivery hour
        [edition] = [text for text in d.dms("alice") if BOLD[members_on] in text]
        assert "Training tips" in edition
        assert "unsubscribed" in (await d.press_in_dm("alice", "Unsubscribe")).lower()
        assert (await d.command("alice", "subscriptions")).startswith("You have no subscriptions.")
        assert world.runtime.db.run_sync(consent_violations) == []
