"""Two processes on one database, one per platform, members on Discord and staff on Slack.

Each process's outbox sends only through the platform it serves: an item queued for the other
platform is left to the other process at once (not handed to this process's dispatcher to fail
with "not running", spending a try and waiting out a backoff).
"""

from __future__ import annotations

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.inbound import CommandInvoked, MemberMessage, StaffReply
from concierge.platform import Address
from concierge.records import OutboxItem
from tests.conftest import make_settings, rows


async def test_each_process_sends_only_through_its_own_platform(database_url, clock):
    settings = make_settings(database_url, staff_platform="slack", staff_channel="C0STAFF", admins=["slack:UADMIN"])
    slack, discord = LocalPlatform(name="slack"), LocalPlatform(name="discord")
    on_slack = build_runtime(settings, {"slack": slack}, clock=clock)
    on_discord = build_runtime(settings, {"discord": discord}, clock=clock)
    try:
        for number, words in enumerate((("member", "add", "discord:alice", "premium", "alice"),
                                         ("expert", "add", "UBOB", "nutrition", "bob"))):
            await on_slack.concierge.handle(CommandInvoked(f"c{number}", Address("slack", "DADMIN", "UADMIN"), words))
        await on_discord.concierge.handle(MemberMessage("m1", Address("discord", "dm-alice", "alice"),
                                                        "Carbs before a race?", display_name="alice"))
        await on_discord.drain()
        [card] = rows(on_slack, OutboxItem)
        assert (card.platform, card.status, card.attempts) == ("slack", "pending", 0), "left for the Slack process"
        await on_slack.drain()
        [opened] = slack.threads_opened()
        assert "Carbs before a race?" in opened.message.text

        thread = opened.ref.address.thread
        await on_slack.concierge.handle(StaffReply("r1", Address("slack", "C0STAFF", "UBOB", thread),
                                                   "Yes, two hours before."))
        await on_slack.drain()
        assert discord.dms_to("alice") == []
        await on_discord.drain()
        assert discord.dms_to("alice") == ["Yes, two hours before."]
        await on_slack.drain()  # the card's update waited behind the answer: the Slack process's scan finds it
        assert slack.edits, "the card shows the answer"
        items = rows(on_slack, OutboxItem)
        assert {(item.status, item.attempts, item.last_error) for item in items} == {("sent", 0, "")}, \
            "each item went out at its first try, through its own platform's process"
    finally:
        on_slack.close()
        on_discord.close()
