"""One member, two identities: linked by an admin, one history and quota, answers go where they last wrote."""

from __future__ import annotations

import json

from concierge.inbound import MemberMessage
from concierge.member_data import erase_member, export_member
from concierge.platform import Address
from concierge.records import Conversation, PlatformIdentity
from tests.conftest import rows

OTHER = Address("other", "dm-alice-elsewhere", "A1")  # alice on a second platform


async def test_a_linked_member_writes_from_either_identity_into_one_history(desk, runtime, platform, clock):
    await desk.command("admin", "member add alice premium Alice")
    await desk.command("admin", "expert add bob nutrition Bob")
    answer = await desk.command("admin", "member link alice other:A1")
    assert answer.startswith("Alice can now also write from other:A1")

    await desk.member_writes("alice", "First question?")
    await desk.settle()
    [thread] = desk.threads()
    await runtime.concierge.receive(MemberMessage("o1", OTHER, "Same question, from elsewhere."))
    await desk.settle()
    assert desk.threads() == [thread], "the same open conversation"
    assert platform.thread_posts(thread)[-1] == "Alice: Same question, from elsewhere."
    [conversation] = rows(runtime, Conversation)
    assert (conversation.member_platform, conversation.member_user) == ("other", "A1"), "answers go where she wrote"

    # Quota: both identities count against the one member.
    await desk.command("admin", "tier set premium --quota 1/month")
    await desk.command("bob", "close", thread=thread)
    await desk.settle()
    await runtime.concierge.receive(MemberMessage("o2", OTHER, "A second question this month?"))
    await desk.settle()
    assert desk.threads() == [thread], "the quota counts questions asked from either identity"


async def test_linking_is_refused_politely_when_it_would_merge_two_histories(desk):
    await desk.command("admin", "member add alice premium Alice")
    await desk.command("admin", "member add carol premium Carol")
    refused = await desk.command("admin", "member link alice local:carol")
    assert "is a member of their own (Carol)" in refused
    assert "not a member" in await desk.command("admin", "member link zed other:Z1")
    assert "platform:id" in await desk.command("admin", "member link alice nocolon")
    assert "platform:id" in await desk.command("admin", "member link alice other:<@x>")
    assert "Usage" in await desk.command("admin", "member link alice other:has space")
    assert "already Alice" in (await desk.command("admin", "member link alice local:alice"))


async def test_export_and_erase_cover_both_identities(desk, runtime):
    await desk.command("admin", "member add alice premium Alice")
    await desk.command("admin", "member link alice other:A1")
    member_id = rows(runtime, PlatformIdentity, PlatformIdentity.user_id == "alice")[0].member_id
    exported = runtime.db.run_sync(lambda session: export_member(session, member_id))
    assert {(i["platform"], i["user_id"]) for i in exported["identities"]} == {("local", "alice"), ("other", "A1")}
    json.dumps(exported, default=str)
    runtime.db.run_sync(lambda session: erase_member(session, member_id, actor="test", policy_version="t",
                                                     now=runtime.concierge.clock.now()))
    assert rows(runtime, PlatformIdentity) == []
