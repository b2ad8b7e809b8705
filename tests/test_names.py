"""Staff see people, not ids: names the platform shows, kept inert and bounded, refreshed when they change."""

from __future__ import annotations

from adapters.local.platform import LocalPlatform
from concierge.inbound import CommandInvoked, MemberMessage
from concierge.people import NAME_CHARS, clean_name
from concierge.records import Member
from tests.conftest import rows

ADMIN = LocalPlatform.dm_address("admin")


async def enrol_by_mention(runtime, user: str, shown: str) -> str:
    """`member add <user> premium` with no name, the adapter having resolved the user's display name."""
    reply = await runtime.concierge.handle(CommandInvoked(f"c-{user}", ADMIN, ("member", "add", user, "premium"),
                                                          names=((user, shown),)))
    return reply.text


async def test_a_member_enrolled_without_a_name_gets_the_platform_name(desk, runtime, platform):
    assert await enrol_by_mention(runtime, "U0002MEM", "Alice Martin") == "Alice Martin is now a premium member."
    await desk.command("admin", "expert add bob nutrition")
    await runtime.concierge.handle(MemberMessage("m1", LocalPlatform.dm_address("U0002MEM"), "Question?"))
    await runtime.concierge.handle(MemberMessage("m2", LocalPlatform.dm_address("U0002MEM"), "And another."))
    await desk.settle()
    [card] = platform.threads_opened()
    assert card.message.card.title.startswith("Alice Martin, premium")
    assert platform.thread_posts(card.ref.address.thread)[-1] == "Alice Martin: And another."
    assert "Alice Martin (premium)" in await desk.command("admin", "member list")


async def test_without_a_resolved_name_the_id_stands_in(desk):
    assert await desk.command("admin", "member add U0002MEM premium") == "U0002MEM is now a premium member."


async def test_a_renamed_member_shows_the_new_name_on_their_next_message(desk, runtime, platform):
    await enrol_by_mention(runtime, "carol", "Carol")
    await desk.command("admin", "expert add bob nutrition")
    await runtime.concierge.handle(MemberMessage("m1", LocalPlatform.dm_address("carol"), "Hi", display_name="Carol"))
    await runtime.concierge.handle(MemberMessage("m2", LocalPlatform.dm_address("carol"), "Still me",
                                                 display_name="Carol B."))
    await desk.settle()
    thread = platform.threads_opened()[0].ref.address.thread
    assert platform.thread_posts(thread)[-1] == "Carol B.: Still me"
    assert platform.edits[-1][1].card.title.startswith("Carol B., premium"), "the card shows the new name"
    [member] = rows(runtime, Member)
    assert member.display_name == "Carol B."


async def test_a_name_an_admin_chose_is_kept(desk, runtime):
    await desk.command("admin", "member add dave premium Dave the Runner")
    await runtime.concierge.handle(MemberMessage("m1", LocalPlatform.dm_address("dave"), "Hi", display_name="dd"))
    [member] = rows(runtime, Member)
    assert member.display_name == "Dave the Runner"


async def test_a_hostile_display_name_is_inert_and_bounded(desk, runtime, platform):
    hostile = "@here <!channel> <@U0ADMIN>\x00\u202e\n" + "x" * 500
    reply = await enrol_by_mention(runtime, "eve", hostile)
    await desk.command("admin", "expert add bob nutrition")
    await runtime.concierge.handle(MemberMessage("m1", LocalPlatform.dm_address("eve"), "Question?"))
    await desk.settle()
    [member] = rows(runtime, Member)
    name = member.display_name
    assert "@here" not in name and "<" not in name and ">" not in name
    assert "\x00" not in name and "\u202e" not in name and "\n" not in name
    assert len(name) <= NAME_CHARS
    assert name in reply and "@here" not in platform.threads_opened()[0].message.card.title


def test_clean_name_keeps_an_ordinary_name_and_falls_back_to_the_id():
    assert clean_name("  Zoë   Martin ") == "Zoë Martin"
    assert clean_name("\u200b\x07", "U0001") == "U0001"
    assert clean_name(None, "U0001") == "U0001"
