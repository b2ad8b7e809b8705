"""kill -9 between Slack accepting a post and the outbox recording it: after a restart, one post."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from datetime import timedelta

from concierge.clock import FrozenClock, utc_now
from tests.slack.harness import STAFF, start_bot

MEMBER = "U0MEMBER1"

# A bot process: the real Slack wiring against the fake; it enrols a member, receives their DM
# and delivers the card, during which the fake kills it (after storing the post).
BOT = textwrap.dedent("""
    import asyncio, sys
    from adapters.slack.server import web_client, wire
    from concierge.inbound import CommandInvoked, MemberMessage
    from concierge.platform import Address
    from tests.slack.harness import core_settings, slack_settings
    from tests.slack.fake_slack import FakeSlack

    async def main():
        url, api_url = sys.argv[1], sys.argv[2]
        fake = FakeSlack()
        fake.port = int(api_url.rsplit(":", 1)[1].split("/")[0])
        listeners = wire(core_settings(url), web_client(slack_settings(fake)))
        receive = listeners.runtime.concierge.receive
        admin = Address("slack", "D0ADMIN", "UADMIN")
        await receive(CommandInvoked("command:t1", admin, ("member", "add", "U0MEMBER1", "premium", "Alice")))
        await receive(MemberMessage("D0MEMBER1:1700000000.000100", Address("slack", "D0MEMBER1", "U0MEMBER1"),
                                    "Question?"))
        await listeners.runtime.drain()
        print("not killed", flush=True)

    asyncio.run(main())
""")


async def test_a_post_slack_took_before_the_bot_was_killed_is_not_posted_again(database_url, fake_slack):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BOT, database_url, fake_slack.api_url, cwd=root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    def kill_after_the_card(method, args, body) -> None:
        if method == "chat.postMessage" and args.get("channel") == STAFF and body.get("ok"):
            os.kill(process.pid, signal.SIGKILL)  # Slack has the card; the bot never hears so

    fake_slack.after_call = kill_after_the_card
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == -signal.SIGKILL, (out + err).decode()
    fake_slack.after_call = None
    assert len(fake_slack.calls_to("chat.postMessage")) == 1

    # A new process, later than the dead one's lease (PostgreSQL keeps it until it runs out).
    clock = FrozenClock(utc_now() + timedelta(hours=1))
    bot = await start_bot(database_url, fake_slack, clock=clock)
    try:
        await bot.runtime.dispatcher.release_own_leases()
        await bot.settle()
        cards = [call for call in fake_slack.calls_to("chat.postMessage") if call.args.get("channel") == STAFF]
        assert len(cards) == 1, "the card was looked up by its key, not posted again"
        # The conversation knows its thread: a follow-up goes into it.
        await bot.post_event({"type": "message", "channel": "D0MEMBER1", "channel_type": "im", "user": MEMBER,
                              "text": "More.", "ts": "1700000001.000100"})
        await bot.settle()
        thread = cards[0].response["ts"]
        follow_up = [call for call in fake_slack.calls_to("chat.postMessage") if call.args.get("thread_ts") == thread]
        assert len(follow_up) == 1
    finally:
        await bot.close()
