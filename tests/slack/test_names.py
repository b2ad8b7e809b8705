"""Staff see people, not ids, on Slack: users.info (cached) when enrolling by mention, user_change for renames."""

from __future__ import annotations

from tests.slack.driver import SlackDriver, user_id
from tests.slack.harness import STAFF


async def test_enrolled_by_mention_staff_see_the_slack_name_and_a_rename(desk_bot):
    d = SlackDriver(desk_bot)
    fake = desk_bot.fake
    fake.profiles[user_id("alice")] = {"display_name": "Alice Martin", "real_name": "Alice M. Martin"}
    fake.profiles[user_id("bob")] = {"display_name": "", "real_name": "Bob Stone"}
    assert await d.command("admin", f"member add {d.mention('alice')} premium") == "Alice Martin is now a premium member."
    assert "Bob Stone answers nutrition" in await d.command("admin", f"expert add {d.mention('bob')} nutrition")

    await d.member_writes("alice", "What before a 10k?")
    await d.settle()
    [thread] = d.threads()
    card = d.card(thread)
    assert "Alice Martin, premium" in card and "Id: slack:UALICE" in card
    assert "UALICE," not in card
    await d.member_writes("alice", "And after?")
    await d.settle()
    assert d.thread_texts(thread)[-1] == "Alice Martin: And after?"
    await d.staff_writes("bob", thread, "Rest.")
    await d.settle()
    assert "claimed by Bob Stone" in d.card(thread)

    # She renames herself: Slack tells the app (user_change); her next message shows it.
    await desk_bot.post_event({"type": "user_change", "user": {
        "id": user_id("alice"), "name": "alice", "profile": {"display_name": "Ali", "real_name": "Alice Martin"}}})
    await d.member_writes("alice", "Thanks!")
    await d.settle()
    assert d.thread_texts(thread)[-1] == "Ali: Thanks!"
    # No Web API call per message: one users.info per person.
    looked_up = [call.args.get("user") for call in fake.calls_to("users.info")]
    assert sorted(looked_up) == sorted(set(looked_up)), looked_up
    assert all(call.args.get("channel") != STAFF or "UALICE:" not in call.args.get("text", "")
               for call in fake.calls_to("chat.postMessage"))


async def test_a_hostile_slack_name_is_shown_inert(desk_bot):
    d = SlackDriver(desk_bot)
    desk_bot.fake.profiles[user_id("alice")] = {"display_name": "<!channel> @here", "real_name": ""}
    answer = await d.command("admin", f"member add {d.mention('alice')} premium")
    assert "@here" not in answer and "<!channel>" not in answer
    await d.command("admin", f"expert add {d.mention('bob')} nutrition bob")
    await d.member_writes("alice", "Hi")
    await d.settle()
    [card] = [call for call in desk_bot.fake.calls_to("chat.postMessage") if call.args.get("channel") == STAFF]
    assert "<!channel>" not in str(card.args) and "@here" not in str(card.args)
