"""The desk on Discord: picking a topic, closing and rating, snippets; through gateway events and interactions."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from concierge.records import Conversation
from tests.discord.fake_discord import answer_text, is_private
from tests.discord.harness import DiscordWorld, custom_ids
from tests.support.discord import assert_nobody_pinged, slash_with_options


async def enrol_two_topics(world: DiscordWorld) -> None:
    """alice is a member; bob answers nutrition, carol training: a new question needs a topic."""
    await world.slash("admin", f"member add <@{world.user_id('alice')}> premium alice")
    await world.slash("admin", f"expert add <@{world.user_id('bob')}> nutrition bob")
    await world.slash("admin", f"expert add <@{world.user_id('carol')}> training carol")


def dm_posts(world: DiscordWorld, name: str) -> list[dict[str, Any]]:
    return world.fake.posts_in(world.dm_channel(name))


def with_buttons(world: DiscordWorld, name: str, action: str) -> dict[str, Any]:
    """The last message in `name`'s DM carrying buttons for `action`."""
    posts = [post for post in dm_posts(world, name)
             if any(cid.split(":")[1] == action for cid in custom_ids(post))]
    assert posts, f"no {action} buttons in {name}'s DM: {world.dms(name)}"
    return posts[-1]


async def conversation(world: DiscordWorld) -> Conversation:
    def only(session) -> Conversation:  # noqa: ANN001
        [found] = session.exec(select(Conversation)).all()
        session.expunge(found)
        return found

    return await world.bot.runtime.db.run(only)


async def pick_topic(world: DiscordWorld, topic: str = "nutrition") -> int:
    """alice asks without naming a topic, then presses `topic` on the buttons in her DM."""
    await enrol_two_topics(world)
    await world.dm("alice", "Is coffee fine before a long run?")
    await world.settle()
    card = with_buttons(world, "alice", "topic")
    custom_id = next(cid for cid in custom_ids(card) if cid.endswith(f":{topic}"))
    answer = await world.press("alice", int(card["id"]), custom_id)
    assert is_private(answer) and answer_text(answer) == f"Thank you: your question is with our {topic} experts."
    await world.settle()
    [thread] = world.fake.staff_threads()
    return thread


async def test_a_question_naming_no_topic_asks_for_one_and_the_pick_opens_the_thread(world):
    await enrol_two_topics(world)
    await world.dm("alice", "Is coffee fine before a long run?")
    await world.settle()
    assert world.fake.staff_threads() == [], "staff see the question once the topic is picked"
    card = with_buttons(world, "alice", "topic")
    assert card["embeds"][0]["title"] == "Pick a topic"
    labels = [item["label"] for row in card["components"] for item in row["components"]]
    assert sorted(labels) == ["Nutrition", "Training"]
    number = (await conversation(world)).id
    assert sorted(custom_ids(card)) == [f"concierge:topic:{number}:nutrition", f"concierge:topic:{number}:training"]

    custom_id = f"concierge:topic:{number}:nutrition"
    answer = await world.press("alice", int(card["id"]), custom_id)
    assert is_private(answer)
    assert answer_text(answer) == "Thank you: your question is with our nutrition experts."
    await world.settle()
    [thread] = world.fake.staff_threads()
    staff_card = world.card_of(thread)
    assert staff_card["embeds"][0]["title"] == "alice, premium, nutrition"
    assert "Is coffee fine before a long run?" in staff_card["content"]
    bob, carol = world.user_id("bob"), world.user_id("carol")
    assert f"<@{bob}>" in staff_card["content"] and f"<@{carol}>" not in staff_card["content"]
    assert_nobody_pinged(world.fake, paged=[bob])
    found = await conversation(world)
    assert (found.status, found.specialty, found.staff_thread) == ("open", "nutrition", str(thread))

    again = await world.press("alice", int(card["id"]), custom_id)  # a second press opens nothing more
    assert answer_text(again) in ("Your question is already with our experts.", "Already done.")
    await world.settle()
    assert world.fake.staff_threads() == [thread]


async def test_after_close_the_member_rates_with_a_button_and_the_rating_is_kept(world):
    thread = await pick_topic(world)
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    answer = await slash_with_options(world, "bob", ["close"], [
        {"type": 3, "name": "message", "value": "Good luck with the run!"}], thread_id=thread)
    assert is_private(answer)
    assert answer_text(answer).endswith("closed and the member was told.")
    assert world.dms("alice")[-2] == "Good luck with the run!"
    assert any("Closed by bob" in text for text in world.thread_texts(thread))

    card = with_buttons(world, "alice", "rate")
    number = (await conversation(world)).id
    assert card["embeds"][0]["title"] == "Rate this answer"
    assert [item["label"] for row in card["components"] for item in row["components"]] == ["1", "2", "3", "4", "5"]
    assert custom_ids(card) == [f"concierge:rate:{number}:{score}" for score in range(1, 6)]
    rated = await world.press("alice", int(card["id"]), f"concierge:rate:{number}:4")
    assert is_private(rated) and answer_text(rated) == "Thank you for your rating!"
    await world.settle()
    assert (await conversation(world)).rating == 4
    assert any("Rated 4/5" in text for text in world.thread_texts(thread))
    assert len([post for post in dm_posts(world, "alice") if "rate" in " ".join(custom_ids(post))]) == 1, (
        "one rating request")


async def test_a_snippet_saved_once_is_sent_to_the_member_from_the_thread(world):
    thread = await pick_topic(world)
    saved = await world.slash("bob", "snippet add hydration Drink 500 ml of water two hours before.")
    assert is_private(saved) and answer_text(saved).startswith("Snippet `hydration` saved.")
    listed = await world.slash("bob", "snippet list")
    assert "`hydration`: Drink 500 ml" in answer_text(listed)
    used = await world.slash("bob", "snippet use hydration", thread_id=thread)
    assert is_private(used)
    assert answer_text(used) == f"Sent snippet `hydration` to the member of conversation {(await conversation(world)).id}."
    await world.settle()
    assert world.dms("alice")[-1] == "Drink 500 ml of water two hours before."
    assert_nobody_pinged(world.fake, paged=[world.user_id("bob")])


async def test_a_claim_handed_to_another_expert_uses_the_user_option(world):
    thread = await pick_topic(world)
    carol = world.user_id("carol")
    answer = await slash_with_options(world, "bob", ["claim"], [{"type": 6, "name": "to", "value": str(carol)}],
                                      thread_id=thread)
    assert answer_text(answer) == f"Conversation {(await conversation(world)).id} is now carol's."
    assert any("Handed over to carol" in text for text in world.thread_texts(thread))


async def rated(world: DiscordWorld) -> int:
    """alice's question was answered, closed and rated 5 with the button; its number."""
    thread = await pick_topic(world)
    await world.write_in_thread("bob", thread, "Yes, an hour before.")
    await world.settle()
    await world.slash("bob", "close", thread_id=thread)
    await world.settle()
    number = (await conversation(world)).id
    card = with_buttons(world, "alice", "rate")
    assert answer_text(await world.press("alice", int(card["id"]), f"concierge:rate:{number}:5")) == \
        "Thank you for your rating!"
    return number


async def submit(world: DiscordWorld, name: str, modal: dict[str, Any], text: str) -> dict[str, Any]:
    data = {"custom_id": modal["custom_id"], "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "text", "value": text}]}]}
    payload = world.interaction(name, 5, data, world.fake.channels[world.dm_channel(name)])
    world.gateway("INTERACTION_CREATE", payload)
    answer = await world.fake.answer_to(int(payload["id"]))
    await world.settle()
    return answer


async def test_the_comment_form_is_a_modal_from_the_slash_command_too(world):
    number = await rated(world)
    payload = world.interaction("alice", 2, world.command_data(["comment", str(number)]),
                                world.fake.channels[world.dm_channel("alice")])
    world.gateway("INTERACTION_CREATE", payload)
    modal = await world.fake.answer_to(int(payload["id"]))
    assert modal["type"] == 9, modal
    assert modal["data"]["custom_id"] == f"concierge-form:comment:{number}"
    [row] = modal["data"]["components"]
    [text_input] = row["components"]
    assert (text_input["type"], text_input["style"], text_input["required"]) == (4, 2, False)
    assert len(text_input["label"]) <= 45 and text_input["max_length"] == 1000

    answer = await submit(world, "alice", modal["data"], "Very clear, <@everyone> should read it")
    assert is_private(answer) and answer_text(answer) == "Thank you for your comment!"
    assert (await conversation(world)).rating_comment == "Very clear, <@everyone> should read it"
    assert_nobody_pinged(world.fake, {world.user_id("bob")})


async def test_a_comment_refused_when_sent_changes_nothing(world):
    number = await rated(world)
    offer = await world.slash("alice", f"comment {number}")
    assert offer["type"] == 9
    await world.slash("admin", f"member remove <@{world.user_id('alice')}>")  # while the form is open
    answer = await submit(world, "alice", offer["data"], "late comment")
    assert is_private(answer) and "for members only" in answer_text(answer)
    assert (await conversation(world)).rating_comment == ""
