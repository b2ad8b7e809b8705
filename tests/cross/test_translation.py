"""What crosses between platforms is translated to the receiving platform's rules.

A member's text on one platform and an expert's on the other: each side's mention syntax stays
inert on the other (Slack escapes `<` and `>`; Discord sends with `allowed_mentions` that ping
nobody but the paged experts), Discord's 2000 characters are respected by splitting, and bold
reads as bold on both (`*bold*` in Slack, `**bold**` in Discord).
"""

from __future__ import annotations

import json
import re

from tests.contract.scenarios import setup_desk
from tests.cross.driver import CrossDriver
from tests.cross.world import cross_world
from tests.slack.driver import dm_channel
from tests.slack.harness import STAFF
from tests.support.discord import admins, assert_nobody_pinged, paged_experts

SLACK_CONTROL = re.compile(r"<[@!#][^<>]*>")  # what Slack reads as a mention, a channel ping or a link
MAX_CONTENT = 2000  # Discord refuses longer message content
LONG = "Slow carbs keep you going. " * 100  # 2700 characters: more than one Discord message


def slack_controls(call) -> list[str]:  # noqa: ANN001 - a fake Slack call
    """Every mention or ping Slack would act on in a post: in its text and in all its blocks."""
    return SLACK_CONTROL.findall(call.args.get("text", "")) + SLACK_CONTROL.findall(json.dumps(call.args.get("blocks")))


async def test_a_discord_member_and_a_slack_expert(fake_slack, fake, sqlite_url, clock):
    async with cross_world("discord", fake_slack, fake, sqlite_url, clock) as world:
        d = CrossDriver(world)
        await setup_desk(d)
        stranger = world.discord.user_id("carol")
        await d.member_writes("alice", f"@everyone <@{stranger}> <!channel> is **oats** fine before nutrition? {LONG}")
        await d.settle()
        [card] = [call for call in fake_slack.calls_to("chat.postMessage") if call.args["channel"] == STAFF]
        assert slack_controls(card) == ["<@UBOB>", "<@UBOB>"], "only the paged expert, in the text and the blocks"
        assert f"&lt;@{stranger}&gt; &lt;!channel&gt;" in card.args["text"]
        blocks = json.dumps(card.args["blocks"])
        assert "is *oats* fine" in card.args["text"] and "is *oats* fine" in blocks
        assert "**oats**" not in card.args["text"] + blocks
        assert (card.args["parse"], card.args["link_names"]) == ("none", False)

        # The expert answers in Slack: what Slack delivers for a typed @channel and bold.
        thread = d.threads()[0]
        typed = world.slack.fake.write(STAFF, "UBOB", f"<!channel> *Two hours* before, <@UCAROL>. {LONG}",
                                       thread_ts=thread)
        await world.slack.post_event(typed)
        await d.settle()
        parts = d.dms("alice")
        assert len(parts) == 2 and all(len(part) <= MAX_CONTENT for part in parts), [len(p) for p in parts]
        assert "\n".join(parts).replace("\n", " ").split() == \
            f"@channel **Two hours** before, @UCAROL. {LONG}".split()
        assert_nobody_pinged(fake)  # Discord was asked to ping nobody at all


async def test_a_slack_member_and_a_discord_expert(fake_slack, fake, sqlite_url, clock):
    async with cross_world("slack", fake_slack, fake, sqlite_url, clock) as world:
        d = CrossDriver(world)
        await setup_desk(d)
        typed = world.slack.fake.write(dm_channel("alice"), "UALICE",
                                       f"<!channel> <@UBOB> is *oats* fine before nutrition? {LONG}")
        await world.slack.post_event(typed)
        await d.settle()
        [thread] = d.threads()
        texts = d.thread_texts(thread)
        assert all(len(text) <= MAX_CONTENT for text in texts), [len(text) for text in texts]
        question = " ".join(texts).split()
        assert " ".join(question).startswith(f"<@{world.discord.user_id('bob')}> @channel @UBOB is **oats** fine")
        assert question[-5:] == LONG.split()[-5:], "the rest of the question continues in the thread"

        carol = world.discord.user_id("carol")
        await d.staff_writes("bob", thread, f"@everyone <@{carol}> says **Two hours** before.")
        await d.settle()
        [answer] = [call for call in fake_slack.calls_to("chat.postMessage")
                    if call.args["channel"] in (dm_channel("alice"), "UALICE")]
        assert slack_controls(answer) == []
        assert answer.args["text"] == f"@everyone &lt;@{carol}&gt; says *Two hours* before."
        assert_nobody_pinged(fake, await paged_experts(world.discord) | await admins(world.discord))
