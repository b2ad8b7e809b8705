"""The desk on Slack through signed requests: topic buttons, paging on purpose, rating after close, snippets.

SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import json
import time

from adapters.slack.blocks import action_of, message_fields
from adapters.slack.mrkdwn import escape
from concierge.platform import Button, Card, Outbound
from concierge.records import Conversation
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.slack.fake_slack import Call
from tests.slack.harness import STAFF


async def two_topic_desk(driver: SlackDriver) -> None:
    """alice is a premium member; bob (UBOB, always on duty) answers training and nutrition."""
    assert "premium" in await driver.command("admin", f"member add {driver.mention('alice')} premium alice")
    answer = await driver.command("admin", f"expert add {driver.mention('bob')} training,nutrition bob")
    assert "nutrition" in answer


def buttons(call: Call) -> list[dict]:
    return [element for block in call.args.get("blocks", []) if block["type"] == "actions"
            for element in block["elements"]]


def dm_posts(bot, person: str) -> list[Call]:
    where = {dm_channel(person), user_id(person)}
    return [call for call in bot.fake.calls_to("chat.postMessage") if call.args.get("channel") in where]


def card_titled(bot, person: str, title: str) -> Call:
    found = [call for call in dm_posts(bot, person)
             if any(block["type"] == "header" and block["text"]["text"] == title
                    for block in call.args.get("blocks", []))]
    assert len(found) == 1, [call.args.get("text") for call in dm_posts(bot, person)]
    return found[0]


async def member_posts(bot, person: str, encoded: str) -> None:
    """A DM from `person` as Slack encodes it (`<@U...>` for a picked user, `<!channel>`, entities)."""
    ts = f"{time.time():.6f}"
    await bot.post_event({"type": "message", "channel": dm_channel(person), "user": user_id(person),
                          "text": encoded, "ts": ts, "event_ts": ts, "channel_type": "im"})
    await bot.settle()


async def press_in_dm(bot, person: str, call: Call, label: str) -> str:
    """Press the button `label` of the DM message `call` as `person`; the private answer's text."""
    button = next(b for b in buttons(call) if b["text"]["text"] == label)
    message = {"type": "message", "ts": call.response["ts"], "text": call.args["text"],
               "blocks": call.args["blocks"], "user": "UBOT", "bot_id": "BBOT"}
    key = await bot.post_button(user_id(person), call.response["channel"], message, button)
    await bot.settle()
    answers = bot.fake.responses_to(key)
    assert len(answers) == 1 and answers[0]["response_type"] == "ephemeral", answers
    return answers[0]["text"]


async def question_through_topic_buttons(bot, driver: SlackDriver, question: str) -> str:
    """alice asks (`question` as Slack encodes it) without naming a topic, picks Nutrition; the staff thread."""
    await two_topic_desk(driver)
    await member_posts(bot, "alice", question)
    assert driver.threads() == [], "staff see the question only once a topic is picked"
    picker = card_titled(bot, "alice", "Pick a topic")
    assert sorted(action_of(b["action_id"]) for b in buttons(picker)) == ["topic", "topic"]
    assert sorted(b["text"]["text"] for b in buttons(picker)) == ["Nutrition", "Training"]
    assert "with our nutrition experts" in await press_in_dm(bot, "alice", picker, "Nutrition")
    assert len(driver.threads()) == 1
    return driver.threads()[0]


async def test_topic_buttons_open_the_staff_card_which_pages_the_expert_on_duty(desk_bot):
    bot, driver = desk_bot, SlackDriver(desk_bot)
    # As Slack delivers what alice typed: a user mention and @channel, both must stay inert.
    thread = await question_through_topic_buttons(bot, driver, "<@UBOB> <!channel> can you check my diet plan?")
    card = driver._card(thread)
    assert card.args["channel"] == STAFF
    assert "nutrition" in card.args["blocks"][0]["text"]["text"]
    # bob is paged by the core, on purpose: one real mention, in the text and in a block.
    assert card.args["text"].startswith("<@UBOB> ")
    assert card.args["text"].count("<@") == 1 and "<!" not in card.args["text"]
    assert "@UBOB @channel can you check my diet plan?" in card.args["text"]
    block_texts = [block.get("text", {}).get("text", "") for block in card.args["blocks"]]
    assert block_texts.count("<@UBOB>") == 1
    assert all("<@" not in text and "<!" not in text for text in block_texts if text != "<@UBOB>")
    assert card.args["parse"] == "none" and card.args["link_names"] is False
    # The member's follow-ups go into the same thread, pinging nobody (typed literally, or as mentions).
    await driver.member_writes("alice", "<!here> also <@UBOB>")
    await member_posts(bot, "alice", "<!here|here> and <@UBOB|bob>")
    await driver.settle()
    follow_ups = [c for c in bot.fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == thread]
    assert [c.args["text"] for c in follow_ups] == ["alice: &lt;!here&gt; also &lt;@UBOB&gt;",
                                                    "alice: @here and @bob"]


async def test_after_close_the_member_rates_with_buttons(desk_bot):
    bot, driver = desk_bot, SlackDriver(desk_bot)
    thread = await question_through_topic_buttons(bot, driver, "How many eggs a week?")
    number = int(driver._conversation_number(thread))
    await driver.staff_writes("bob", thread, "Up to ten is fine for most people.")
    await driver.settle()
    assert "closed" in (await driver.command("bob", "close", thread=thread)).lower()
    await driver.settle()
    rating = card_titled(bot, "alice", "Rate this answer")
    assert [b["text"]["text"] for b in buttons(rating)] == ["1", "2", "3", "4", "5"]
    assert {action_of(b["action_id"]) for b in buttons(rating)} == {"rate"}
    assert "Thank you" in await press_in_dm(bot, "alice", rating, "4")

    stored = await bot.runtime.db.run(lambda session: session.get(Conversation, number))
    assert stored.rating == 4
    assert any("Rated 4/5" in text for text in driver.thread_texts(thread))


async def test_a_snippet_is_sent_to_the_member(desk_bot):
    bot, driver = desk_bot, SlackDriver(desk_bot)
    thread = await question_through_topic_buttons(bot, driver, "What should I drink during a long run?")
    number = driver._conversation_number(thread)
    # Slack escapes `&`, `<`, `>` in a slash command's text.
    typed = 'snippet add hydrate "Drink 500 ml every hour & sip <often>."'
    key = await bot.post_command(user_id("bob"), STAFF, escape(typed))
    await bot.settle()
    assert "hydrate" in bot.fake.responses_to(key)[0]["text"]
    key = await bot.post_command(user_id("bob"), STAFF, f"snippet use hydrate {number}")
    await bot.settle()
    assert f"conversation {number}" in bot.fake.responses_to(key)[0]["text"]
    sent = dm_posts(bot, "alice")[-1]
    assert sent.args["text"] == "Drink 500 ml every hour &amp; sip &lt;often&gt;."
    assert driver.dms("alice")[-1] == "Drink 500 ml every hour & sip <often>."


def test_only_the_given_user_ids_become_mentions():
    plain = message_fields(Outbound("<!channel> see <@U0OTHER>", mentions=("UBOB", "UBOB", "U1> <!here", "")))
    assert plain == {"text": "<@UBOB> &lt;!channel&gt; see &lt;@U0OTHER&gt;"}
    assert message_fields(Outbound("hi")) == {"text": "hi"}
    card = Card("New question", (("Member", "<!everyone>"),), (Button("Claim", "claim", "1"),))
    fields = message_fields(Outbound("x" * 200_000, card, mentions=("UBOB", "W0ANN")))
    assert fields["text"].startswith("<@UBOB> <@W0ANN> New question: xxx")
    assert fields["blocks"][1] == {"type": "section", "text": {"type": "mrkdwn", "text": "<@UBOB> <@W0ANN>"}}
    assert len(fields["blocks"]) <= 50 and fields["blocks"][-1]["type"] == "actions"


async def rated(bot, driver: SlackDriver) -> int:
    """alice's question was answered, closed and rated 5 with the button; its number."""
    thread = await question_through_topic_buttons(bot, driver, "How many eggs a week?")
    number = int(driver._conversation_number(thread))
    await driver.staff_writes("bob", thread, "Up to ten.")
    await driver.command("bob", "close", thread=thread)
    await driver.settle()
    assert "Thank you" in await press_in_dm(bot, "alice", card_titled(bot, "alice", "Rate this answer"), "5")
    return number


async def test_the_comment_form_is_a_modal_from_the_slash_command_too(desk_bot):
    bot, driver = desk_bot, SlackDriver(desk_bot)
    number = await rated(bot, driver)
    key = await bot.post_command(user_id("alice"), dm_channel("alice"), f"comment {number}")
    await bot.settle()
    assert bot.fake.responses_to(key) == [], "the modal is the answer"
    modal = bot.fake.modals[f"trigger.{key}"]
    assert modal["callback_id"] == "concierge-form" and modal["title"]["text"] == "Your comment"
    [box] = modal["blocks"]
    assert (box["type"], box["optional"], box["element"]["type"], box["element"]["multiline"]) == \
        ("input", True, "plain_text_input", True)

    posted = await bot.post_view_submission(user_id("alice"), modal, "Clear & kind <!channel>")
    await bot.settle()
    assert (posted.status, posted.text) == (200, ""), "the modal closes"
    [told] = [call for call in bot.fake.calls_to("chat.postEphemeral") if call.args["user"] == user_id("alice")]
    assert told.args["channel"] == dm_channel("alice") and told.args["text"] == "Thank you for your comment!"
    stored = await bot.runtime.db.run(lambda session: session.get(Conversation, number))
    assert stored.rating_comment == "Clear & kind <!channel>"
    comment = [c for c in bot.fake.calls_to("chat.postMessage") if "Comment on the 5/5" in c.args.get("text", "")]
    assert [c.args["text"] for c in comment] == ["Comment on the 5/5 rating: Clear &amp; kind &lt;!channel&gt;"]


async def test_a_comment_refused_when_sent_shows_in_the_modal_and_changes_nothing(desk_bot):
    bot, driver = desk_bot, SlackDriver(desk_bot)
    number = await rated(bot, driver)
    key = await bot.post_command(user_id("alice"), dm_channel("alice"), f"comment {number}")
    await bot.settle()
    modal = bot.fake.modals[f"trigger.{key}"]
    await driver.command("admin", f"member remove {driver.mention('alice')}")  # while the form is open
    posted = await bot.post_view_submission(user_id("alice"), modal, "late comment")
    assert posted.status == 200
    answer = json.loads(posted.text)
    assert answer["response_action"] == "errors" and "for members only" in answer["errors"]["answer"]
    stored = await bot.runtime.db.run(lambda session: session.get(Conversation, number))
    assert stored.rating_comment == ""


async def test_when_slack_will_not_open_the_form_the_answer_says_what_to_type(desk_bot):
    bot, driver = desk_bot, SlackDriver(desk_bot)
    number = await rated(bot, driver)
    bot.fake.modals["trigger.expired"] = {}
    key = await bot.post_command(user_id("alice"), dm_channel("alice"), f"comment {number}", key="expired")
    await bot.settle()
    [answer] = bot.fake.responses_to(key)
    assert answer["text"] == f"Write your comment like this: `/concierge comment {number} &lt;your comment&gt;`."
