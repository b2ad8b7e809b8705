"""Messages in: DMs, edits, attachments and staff replies arrive as gateway events and reach the core once."""

from __future__ import annotations

from sqlmodel import select

from concierge.records import InboxItem
from tests.discord.harness import DiscordWorld, custom_ids
from tests.support.discord import open_conversation


async def test_a_dm_opens_a_thread_on_a_card_with_claim_and_close(world):
    thread = await open_conversation(world)
    card = world.card_of(thread)
    assert int(card["channel_id"]) == world.fake.staff_channel_id
    assert card["content"] == f"<@{world.user_id('bob')}>\nIs coffee fine before a run?", "bob is on duty: paged"
    [embed] = card["embeds"]
    assert embed["title"] == "alice, premium, nutrition"
    assert {field["name"]: field["value"] for field in embed["fields"]}["Tier"] == "premium"
    assert custom_ids(card) == ["concierge:claim:1", "concierge:close:1"]
    [opened] = world.fake.calls_to("POST", rf"/channels/{world.fake.staff_channel_id}/messages/{thread}/threads")
    assert opened.json["auto_archive_duration"] == 10080
    assert opened.json["name"] == "alice, premium, nutrition"


async def test_a_redelivered_message_event_is_relayed_once(world):
    thread = await open_conversation(world)
    message = await world.dm("alice", "And after the race?")
    world.gateway("MESSAGE_CREATE", message)  # the gateway sends the same event again
    await world.settle()
    assert [text for text in world.thread_texts(thread) if "after the race" in text] == ["alice: And after the race?"]


async def test_an_edit_is_relayed_as_an_edit_notice_once_per_edit(world):
    thread = await open_conversation(world)
    message = await world.dm("alice", "Is tea fine?")
    await world.settle()
    await world.edit_dm(message, "Is green tea fine?")
    world.gateway("MESSAGE_UPDATE", {**message, "content": "Is green tea fine?",
                                     "edited_timestamp": "2026-11-25T09:05:00.000000+00:00"})
    world.gateway("MESSAGE_UPDATE", {**message, "content": "Is green tea fine?",
                                     "edited_timestamp": "2026-11-25T09:05:00.000000+00:00"})
    world.gateway("MESSAGE_UPDATE", {**message, "content": "Is tea fine? (link preview)"})  # no edit time
    await world.settle()
    edits = [text for text in world.thread_texts(thread) if "(edited)" in text]
    assert edits == ["alice: (edited) Is green tea fine?", "alice: (edited) Is green tea fine?"], (
        "two edits, each relayed once; the redelivery and the unfurl are not")


async def test_an_edit_of_a_message_with_a_file_relays_the_text_not_the_file_again(world):
    """Discord's client cannot add files in an edit: the file went with the message, as on Slack."""
    thread = await open_conversation(world)
    attachment = world.fake.attachment(world.dm_channel("alice"), "plan.pdf", b"%PDF-1.4", "application/pdf")
    message = await world.dm("alice", "My plan", attachments=[attachment])
    await world.settle()
    await world.edit_dm(message, "My new plan")
    await world.settle()
    texts = world.thread_texts(thread)
    assert "alice: My plan\n[file] plan.pdf (8 bytes)" in texts
    assert [text for text in texts if "(edited)" in text] == ["alice: (edited) My new plan"]
    uploads = [upload for call in world.fake.calls_to("POST", rf"/channels/{thread}/messages") for upload in call.files]
    assert [upload.filename for upload in uploads] == ["plan.pdf"]
    assert world.fake.cdn_reads == [int(attachment["id"])]


async def test_attachments_are_read_from_the_cdn_and_attached_in_the_thread(world):
    thread = await open_conversation(world)
    data = b"%PDF-1.4 " + bytes(range(256))
    attachment = world.fake.attachment(world.dm_channel("alice"), "plan.pdf", data, "application/pdf")
    await world.dm("alice", "My plan", attachments=[attachment])
    await world.settle()
    assert "alice: My plan\n[file] plan.pdf (265 bytes)" in world.thread_texts(thread)
    assert world.fake.cdn_reads == [int(attachment["id"])]
    uploads = [upload for call in world.fake.calls_to("POST", rf"/channels/{thread}/messages") for upload in call.files]
    assert [(upload.filename, upload.data) for upload in uploads] == [("plan.pdf", data)]


async def test_an_expert_reply_in_the_thread_reaches_the_member(world):
    thread = await open_conversation(world)
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    assert world.dms("alice") == ["Yes, an hour before."]


async def inbound_events(world: DiscordWorld) -> int:
    return await world.bot.runtime.db.run(lambda session: len(session.exec(select(InboxItem)).all()))


async def test_bots_and_messages_outside_conversation_threads_are_ignored(world):
    thread = await open_conversation(world)
    other_bot = {**world.fake.add_user("otherbot"), "bot": True}
    world.people["otherbot"] = other_bot
    # Even enrolled as experts, bots (this one included) are never relayed.
    await world.slash("admin", f"expert add <@{other_bot['id']}> nutrition otherbot")
    await world.slash("admin", f"expert add <@{world.fake.application_id}> nutrition me")
    before = await inbound_events(world)
    await world.write_in_thread("otherbot", thread, "I am a bot", author=other_bot)
    await world.write_in_thread("me", thread, "my own echo", author=world.fake.bot)
    await world.write_in_thread("bob", world.fake.staff_channel_id, "hello channel")  # not in a thread
    await world.settle()
    assert await inbound_events(world) == before
    assert world.dms("alice") == []
    assert world.fake.calls_to("GET", r"/channels/\d+") == []  # everything was in discord.py's cache


async def test_a_non_expert_in_the_thread_is_told_privately_and_nothing_is_relayed(world):
    thread = await open_conversation(world)
    message = await world.write_in_thread("mallory", thread, "I can answer that!")
    await world.settle()
    assert world.dms("alice") == []
    assert world.bot_posts_after(message) == ["Only experts can answer members; your message was not relayed."]


async def test_after_a_restart_a_thread_missing_from_the_cache_is_looked_up_once(world):
    thread = await open_conversation(world)
    await world.restart()  # the new process has not seen the thread on the gateway
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.write_in_thread("bob", thread, "And drink water.")
    await world.settle()
    assert world.dms("alice") == ["Yes, an hour before.", "And drink water."]
    assert len(world.fake.calls_to("GET", rf"/channels/{thread}")) == 1


async def test_a_member_writing_again_posts_into_an_archived_thread_after_unarchiving_it(world):
    thread = await open_conversation(world)
    world.fake.archive(thread)  # a quiet week later
    await world.dm("alice", "Back again: what about electrolytes?")
    await world.settle()
    assert world.thread_texts(thread)[-1] == "alice: Back again: what about electrolytes?"
    [unarchive] = world.fake.calls_to("PATCH", rf"/channels/{thread}")
    assert unarchive.json == {"archived": False}
