"""Slack events, commands and buttons through the real bolt app (signed HTTP requests), on SQLite."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import select

from adapters.slack.uploads import UPLOAD_ATTEMPTS
from concierge.app import FAILED
from concierge.commands import Command, CommandRegistry, Param
from concierge.digests.cadence import Cadence
from concierge.digests.catalogue import create_digest
from concierge.digests.subscriptions import subscribe
from concierge.outbox.kinds import OutboxStatus
from concierge.people import Role, member_of
from concierge.platform import Button, Card
from concierge.records import InboxItem, OutboxItem
from concierge.replies import Reply
from tests.contract.scenarios import setup_desk
from tests.slack.driver import SlackDriver, dm_channel, user_id
from tests.slack.harness import STAFF
from tests.support.net import web_server


def dm(person: str, text: str, **extra) -> dict:
    ts = f"{time.time():.6f}"
    return {"type": "message", "channel": dm_channel(person), "user": user_id(person), "text": text,
            "ts": ts, "event_ts": ts, "channel_type": "im", **extra}


def in_staff(person: str, text: str, thread: str | None = None, **extra) -> dict:
    ts = f"{time.time():.6f}"
    event = {"type": "message", "channel": STAFF, "user": user_id(person), "text": text, "ts": ts,
             "event_ts": ts, "channel_type": "channel", **extra}
    if thread:
        event["thread_ts"] = thread
    return event


async def handled_events(bot) -> list[str]:
    rows = await bot.runtime.db.run(lambda session: session.exec(select(InboxItem.event_id)).all())
    return list(rows)


async def desk_with_question(bot, question: str = "How much water per day?") -> tuple[SlackDriver, str]:
    driver = SlackDriver(bot)
    await setup_desk(driver)
    await driver.member_writes("alice", question)
    await driver.settle()
    return driver, driver.threads()[0]


async def test_a_retried_event_has_one_effect(bot):
    driver = SlackDriver(bot)
    await setup_desk(driver)
    event = dm("alice", "Is coffee fine before a run?")
    await bot.post_event(event, event_id="Ev0RETRY")
    await bot.post_event(event, event_id="Ev0RETRY", retry_num=1)
    await bot.post_event(event, event_id="Ev0RETRY", retry_num=2)
    await driver.settle()
    assert len(driver.threads()) == 1
    assert sum("coffee" in text for text in driver.thread_texts(driver.threads()[0])) == 1
    # Recorded once, under the message's own id (channel and ts), not the envelope's.
    assert (await handled_events(bot)).count(f"{event['channel']}:{event['ts']}") == 1
    assert "Ev0RETRY" not in await handled_events(bot)


async def test_member_text_reaches_staff_without_pinging_anyone(bot):
    driver = SlackDriver(bot)
    await setup_desk(driver)
    # As Slack encodes what alice typed: @channel, @here, @everyone, a user group, a user, a literal "<b>".
    typed = ("<!channel> <!here|here> <!everyone> <!subteam^S0NUTRI|@nutrition-team> <@U0OTHER> "
             "&lt;b&gt;urgent&lt;/b&gt; &amp; soon")
    await bot.post_event(dm("alice", typed))
    await driver.settle()
    card = driver._card(driver.threads()[0])
    posted = [card.args["text"], *(block.get("text", {}).get("text", "") for block in card.args["blocks"])]
    # The one real mention is bob, the nutrition expert on duty, paged on purpose by the core.
    assert card.args["text"].startswith("<@UBOB> ")
    for text in posted:
        text = text.replace("<@UBOB>", "")
        for control in ("<!", "<@", "<#", "<b>"):
            assert control not in text
    assert "@channel @here @everyone @nutrition-team @U0OTHER &lt;b&gt;urgent&lt;/b&gt; &amp; soon" in card.args["text"]
    assert card.args["parse"] == "none" and card.args["link_names"] is False


async def test_expert_text_reaches_the_member_without_pinging(bot):
    driver, thread = await desk_with_question(bot)
    await bot.post_event(in_staff("bob", "<!here> ask <@U0OTHER|carl> &lt;!channel&gt;", thread))
    await driver.settle()
    sent = bot.fake.calls_to("chat.postMessage")[-1]
    assert sent.args["channel"] == dm_channel("alice")
    assert sent.args["text"] == "@here ask @carl &lt;!channel&gt;"
    assert sent.args["parse"] == "none" and sent.args["link_names"] is False


async def test_bot_messages_and_channel_chatter_are_ignored(bot):
    driver, thread = await desk_with_question(bot)
    before_calls, before_events = len(bot.fake.calls), await handled_events(bot)
    await bot.post_event(dm("alice", "from another bot", bot_id="B0OTHER", subtype="bot_message"))
    await bot.post_event(dm("alice", "an integration", bot_id="B0OTHER", bot_profile={"id": "B0OTHER"}))
    await bot.post_event(in_staff("helper", "a bot in the thread", thread, bot_id="B0OTHER"))
    await bot.post_event(in_staff("bob", "our own echo", thread, bot_id="BBOT"))
    await bot.post_event({**in_staff("bob", "our own user", thread), "user": "UBOT"})
    await bot.post_event(in_staff("bob", "top-level chatter in the staff channel"))
    await bot.post_event({**in_staff("bob", "a thread elsewhere", thread), "channel": "C0ELSEWHERE"})
    await bot.post_event(dm("alice", "", subtype="channel_join"))
    await driver.settle()
    assert await handled_events(bot) == before_events
    assert bot.fake.calls[before_calls:] == []


async def test_edited_member_message_is_relayed_as_an_edit(bot):
    driver, thread = await desk_with_question(bot, "Is 2 litres enough?")
    edit = {"type": "message", "subtype": "message_changed", "channel": dm_channel("alice"), "channel_type": "im",
            "hidden": True, "ts": f"{time.time():.6f}",
            "message": {"type": "message", "user": user_id("alice"), "text": "Is 3 litres enough?", "ts": "1.0"},
            "previous_message": {"type": "message", "user": user_id("alice"), "text": "Is 2 litres enough?"}}
    unfurl = {**edit, "message": {**edit["message"], "text": "Is 3 litres enough?", "attachments": [{}]},
              "previous_message": {**edit["message"]}}
    await bot.post_event(edit)
    await bot.post_event(unfurl)  # the same text with a link preview added: not an edit
    await driver.settle()
    assert driver.thread_texts(thread)[1:] == ["alice: (edited) Is 3 litres enough?"]


async def test_shared_files_are_downloaded_with_the_bot_token_and_uploaded_in_the_thread(bot):
    driver, thread = await desk_with_question(bot)
    data = b"%PDF-1.4 " + bytes(range(256))
    files = [bot.fake.host_file("meal-plan.pdf", data, "application/pdf"), {"id": "F2", "mode": "hidden_by_limit"}]
    await bot.post_event(dm("alice", "My plan", subtype="file_share", files=files))
    await driver.settle()
    assert driver.thread_texts(thread)[1] == (
        "alice: My plan\n[file] meal-plan.pdf (265 bytes)\n"
        "[file not passed on] file (0 bytes): Slack gave the bot no way to fetch it")
    assert [token for _file, token in bot.fake.downloads] == [bot.fake.bot_token]
    [shared] = bot.fake.shared
    assert (shared.channel, shared.thread_ts, shared.files[0].filename, shared.files[0].data) == (
        STAFF, thread, "meal-plan.pdf", data)
    assert any("could not pass on" in text and "file (0 bytes)" in text for text in driver.dms("alice"))


async def test_a_file_url_on_another_host_is_never_fetched(bot):
    """Only Slack's file host gets the bot token: a `url_private` elsewhere (a forged event, a paste) is refused."""
    from aiohttp import web

    asked: list[str] = []

    async def trap(request: web.Request) -> web.Response:
        asked.append(str(request.url))
        return web.Response(body=b"secret")

    async with web_server(trap) as port:
        driver, thread = await desk_with_question(bot)
        elsewhere = {"id": "F9", "name": "plan.pdf", "mimetype": "application/pdf", "size": 6,
                     "url_private": f"http://localhost:{port}/plan.pdf"}  # not the file host (127.0.0.1 here)
        await bot.post_event(dm("alice", "My plan", subtype="file_share", files=[elsewhere]))
        await driver.settle()
    assert asked == []
    assert bot.fake.shared == []
    assert "[file not passed on] plan.pdf (6 bytes): it is not a file shared on Slack" in driver.thread_texts(thread)[1]


async def test_someone_not_an_expert_is_told_privately_in_the_thread(bot):
    driver, thread = await desk_with_question(bot)
    answer = await driver.staff_writes("carol", thread, "I think 2 litres")
    assert answer == "Only experts can answer members; your message was not relayed."
    told = bot.fake.calls_to("chat.postEphemeral")[-1]
    assert (told.args["channel"], told.args["user"], told.args["thread_ts"]) == (STAFF, user_id("carol"), thread)
    await driver.settle()
    assert driver.dms("alice") == []


async def test_command_is_acknowledged_at_once_even_when_the_core_is_slow(bot):
    driver = SlackDriver(bot)
    concierge = bot.listeners.concierge

    class SlowCore:
        def __getattr__(self, name):
            return getattr(concierge, name)

        async def answer(self, event, responder):
            await asyncio.sleep(3.0)
            return await concierge.answer(event, responder)

    bot.listeners.concierge = SlowCore()
    started = time.perf_counter()
    key = await bot.post_command(user_id("admin"), dm_channel("admin"), "member list")
    assert time.perf_counter() - started < 2.0, "acknowledged before the slow core answered (a margin for a loaded machine)"
    assert bot.fake.responses_to(key) == []
    assert "No members yet" in await driver._answer(key)


async def test_command_usage_errors_are_private_and_name_the_usage(bot):
    driver = SlackDriver(bot)
    answer = await driver.command("admin", "member add")
    assert answer == "Missing <user>. Usage: `/concierge member add <user> <tier> [name]`"
    raw = bot.fake.responses[-1][1]["text"]
    assert "&lt;user&gt;" in raw  # escaped, so Slack shows it instead of reading a link


async def test_claim_by_number_from_the_staff_channel(bot):
    driver, thread = await desk_with_question(bot)
    key = await bot.post_command(user_id("bob"), STAFF, "claim 1")
    assert await driver._answer(key) == "You claimed conversation 1."
    key = await bot.post_command(user_id("bob"), STAFF, "close")
    assert "inside a conversation's thread, or give the conversation number" in await driver._answer(key)
    await driver.settle()
    assert "Claimed by bob." in driver.thread_texts(thread)


async def test_a_button_of_another_app_is_acknowledged_and_ignored(bot):
    driver, thread = await desk_with_question(bot)
    card = driver._card(thread)
    message = {"type": "message", "ts": thread, "text": card.args["text"], "blocks": card.args["blocks"]}
    key = await bot.post_button(user_id("bob"), STAFF, message,
                                {"action_id": "someone-else", "value": "1", "text": {"type": "plain_text", "text": "x"}})
    await bot.settle()
    assert bot.fake.responses_to(key) == []


async def test_app_home_lists_the_members_open_questions_and_digests(bot, clock):
    driver, thread = await desk_with_question(bot, "Is <b>salt</b> bad?")

    def subscribe_alice(session):
        member = member_of(session, "slack", user_id("alice"))
        create_digest(session, slug="race-tips", title="Race tips", cadence="weekly", now=clock.now())
        subscribe(session, member_id=member.id, slug="race-tips", platform="slack", user_id=user_id("alice"),
                  cadence=Cadence(every="weekly", weekday=0, hour=8, time_zone="Europe/Paris"), how="command",
                  actor="alice", policy_version="2026-11", now=clock.now())

    await bot.runtime.db.run(subscribe_alice)
    await bot.post_event({"type": "app_home_opened", "user": user_id("alice"), "channel": dm_channel("alice"),
                          "tab": "home", "event_ts": f"{time.time():.6f}"})
    await bot.post_event({"type": "app_home_opened", "user": user_id("mallory"), "channel": "DMALLORY",
                          "tab": "home", "event_ts": f"{time.time():.6f}"})
    await bot.post_event({"type": "app_home_opened", "user": user_id("bob"), "channel": "DBOB",
                          "tab": "messages", "event_ts": f"{time.time():.6f}"})  # the Messages tab: nothing to do
    await bot.post_event({"type": "app_home_opened", "user": user_id("bob"), "channel": "DBOB",
                          "tab": "home", "event_ts": f"{time.time():.6f}"})
    await bot.listeners.idle(timeout=10)
    published = {call.args["user_id"]: call.args["view"] for call in bot.fake.calls_to("views.publish")}
    assert len(bot.fake.calls_to("views.publish")) == 3
    assert set(published) == {user_id("alice"), user_id("mallory"), user_id("bob")}
    assert published[user_id("bob")]["blocks"][1]["text"]["text"].startswith("*Staff*: 1 open conversation.")
    queue = published[user_id("bob")]["blocks"][2]["text"]["text"]  # who is waiting, as `/concierge queue`
    assert queue.startswith("Open conversations (1), longest waiting first:") and ": waiting 0m; unclaimed" in queue
    alice = " ".join(block["text"]["text"] for block in published[user_id("alice")]["blocks"])
    assert "Your open questions" in alice and "Is &lt;b&gt;salt&lt;/b&gt; bad?" in alice and "waiting" in alice
    assert "*Your digests* (1)" in alice
    [race_tips] = [block for block in published[user_id("alice")]["blocks"] if "accessory" in block]
    assert race_tips["text"]["text"] == "`race-tips` Race tips: every mon at 08:00 Europe/Paris"
    assert (race_tips["accessory"]["text"]["text"], race_tips["accessory"]["value"]) == ("Unsubscribe", "race-tips")
    mallory = " ".join(block["text"]["text"] for block in published[user_id("mallory")]["blocks"])
    assert "members of Peak Club" in mallory


def failing_first(monkeypatch, owner, name: str, failures: dict[str, int]) -> None:
    """Make `owner.name` (a coroutine function) raise while `failures["left"]` is above zero, counting down."""
    real = getattr(owner, name)

    async def failing(*args):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database unavailable")
        return await real(*args)

    monkeypatch.setattr(owner, name, failing)


async def test_a_command_the_core_keeps_failing_on_is_answered_privately(bot, monkeypatch):
    driver = SlackDriver(bot)
    monkeypatch.setattr("concierge.app.ANSWER_RETRIES", (0.0, 0.0))
    failures = {"left": 3}
    failing_first(monkeypatch, bot.runtime.concierge, "receive", failures)
    assert await driver.command("admin", "member list") == FAILED
    failures["left"] = 2  # fails twice, then works: the core tries again and answers
    assert "No members yet" in await driver.command("admin", "member list")


async def test_a_stats_read_that_fails_is_tried_again_not_answered_already_done(bot, monkeypatch):
    """`stats` is recorded first and its figures read after (`Reply.read`, beside the writer). A
    failing read is tried again on its own: trying the whole command again would find it recorded
    and answer "Already done."."""
    driver = SlackDriver(bot)
    monkeypatch.setattr("concierge.app.ANSWER_RETRIES", (0.0, 0.0))
    failures = {"left": 2}
    failing_first(monkeypatch, bot.runtime.db, "read", failures)
    assert (await driver.command("admin", "stats --since 1d")).startswith("No conversations since ")
    failures["left"] = 3  # fails every time: a polite failure, not "Already done."
    assert await driver.command("admin", "stats --since 2d") == FAILED


async def test_an_answer_with_buttons_and_pressing_one(bot):
    def offer(session, invocation, args):
        return Reply("Pick a digest:", card=Card("Digests", buttons=(Button("Subscribe tips", "pick", "tips", "primary"),)))

    def pick(session, invocation, args):
        return f"You picked {args['digest']} with a {invocation.via}."

    bot.runtime.concierge.registry = CommandRegistry([
        Command(("offer",), (), Role.GUEST, "offer digests", offer),
        Command(("pick",), (Param("digest"),), Role.GUEST, "pick a digest", pick),
    ])
    driver = SlackDriver(bot)
    key = await bot.post_command(user_id("alice"), dm_channel("alice"), "offer")
    await bot.listeners.idle(timeout=10)
    [answer] = bot.fake.responses_to(key)
    assert answer["response_type"] == "ephemeral" and answer["text"] == "Digests: Pick a digest:"
    [button] = [element for block in answer["blocks"] if block["type"] == "actions" for element in block["elements"]]
    assert (button["text"]["text"], button["value"]) == ("Subscribe tips", "tips")
    key = await bot.post_button(user_id("alice"), dm_channel("alice"), None, button)
    assert await driver._answer(key) == "You picked tips with a button."


async def test_a_file_host_redirect_is_not_followed_with_the_token(bot):
    """Even on the file host, a redirect elsewhere is not followed: the bot token goes nowhere else."""
    from aiohttp import web

    asked: list[tuple[str, str]] = []

    async def host(request: web.Request) -> web.Response:
        asked.append((request.path, request.headers.get("Authorization", "")))
        if request.path == "/moved.pdf":
            raise web.HTTPFound(f"http://localhost:{request.url.port}/stolen.pdf")
        return web.Response(body=b"stolen")

    async with web_server(host) as port:
        driver, thread = await desk_with_question(bot)
        moved = {"id": "F8", "name": "plan.pdf", "mimetype": "application/pdf", "size": 6,
                 "url_private": f"http://127.0.0.1:{port}/moved.pdf"}
        await bot.post_event(dm("alice", "My plan", subtype="file_share", files=[moved]))
        await driver.settle()
    assert [path for path, _token in asked] == ["/moved.pdf"]
    assert bot.fake.shared == []
    assert "[file not passed on] plan.pdf (6 bytes): it could not be downloaded" in driver.thread_texts(thread)[1]


async def test_an_upload_slack_keeps_refusing_is_said_in_the_thread(bot):
    driver, thread = await desk_with_question(bot)
    bot.fake.fail("files.completeUploadExternal", error="internal_error", times=None)
    files = [bot.fake.host_file("plan.pdf", b"%PDF-1.4", "application/pdf")]
    await bot.post_event(dm("alice", "My plan", subtype="file_share", files=files))
    await driver.settle()
    texts = driver.thread_texts(thread)
    assert texts[1] == "alice: My plan\n[file] plan.pdf (8 bytes)"
    assert texts[2] == "A file could not be passed on:\n- plan.pdf (8 bytes): the upload failed"
    assert len(bot.fake.calls_to("files.completeUploadExternal", ok_only=False)) == UPLOAD_ATTEMPTS
    assert bot.fake.shared == []


@pytest.mark.parametrize("method", ["files.getUploadURLExternal", "files.completeUploadExternal"])
async def test_an_upload_that_failed_once_is_tried_again_and_shared_once(bot, method):
    driver, thread = await desk_with_question(bot)
    bot.fake.fail(method, error="internal_error", status=500)
    files = [bot.fake.host_file("plan.pdf", b"%PDF-1.4", "application/pdf")]
    await bot.post_event(dm("alice", "My plan", subtype="file_share", files=files))
    await driver.settle()
    [shared] = bot.fake.shared
    assert (shared.channel, shared.thread_ts, shared.files[0].data) == (STAFF, thread, b"%PDF-1.4")
    assert driver.thread_texts(thread)[1:] == ["alice: My plan\n[file] plan.pdf (8 bytes)"]


async def test_a_share_whose_answer_was_lost_is_asked_about_not_shared_again(bot):
    """Slack shared the file but its answer was a 500: files.info shows it in the thread's channel."""
    driver, thread = await desk_with_question(bot)
    bot.fake.fail("files.completeUploadExternal", error="internal_error", status=500, store=True)
    files = [bot.fake.host_file("plan.pdf", b"%PDF-1.4", "application/pdf")]
    await bot.post_event(dm("alice", "My plan", subtype="file_share", files=files))
    await driver.settle()
    [shared] = bot.fake.shared
    assert shared.channel == STAFF
    assert len(bot.fake.calls_to("files.completeUploadExternal", ok_only=False)) == 1
    assert len(bot.fake.calls_to("files.info")) == 1
    assert driver.thread_texts(thread)[1:] == ["alice: My plan\n[file] plan.pdf (8 bytes)"]


async def test_a_post_whose_answer_was_lost_gets_its_files_when_found(bot, clock):
    """Slack took the thread post but answered 500, so the upload after it never ran. The retry finds the
    post by its metadata (not posted again) and uploads the file under it, once."""
    driver, thread = await desk_with_question(bot)
    bot.fake.fail("chat.postMessage", status=500, store=True, when=lambda args: args.get("thread_ts") == thread)
    files = [bot.fake.host_file("plan.pdf", b"%PDF-1.4", "application/pdf")]
    await bot.post_event(dm("alice", "My plan", subtype="file_share", files=files))
    await driver.settle()
    assert bot.fake.shared == []
    clock.advance(10)
    await driver.settle()
    assert [message["text"] for message in bot.fake.history(STAFF)
            if message.get("thread_ts") == thread and "My plan" in message.get("text", "")] == [
        "alice: My plan\n[file] plan.pdf (8 bytes)"]
    [shared] = bot.fake.shared
    assert (shared.channel, shared.thread_ts, shared.files[0].data) == (STAFF, thread, b"%PDF-1.4")
    clock.advance(10)
    await driver.settle()
    assert len(bot.fake.shared) == 1


async def test_files_already_under_a_found_post_are_not_uploaded_again(bot, clock):
    """A crash after the post and its upload, before the outcome was written: the item goes again as
    `maybe_sent`; the post is found and so is its file under it, so nothing is posted or uploaded twice."""
    driver, thread = await desk_with_question(bot)
    files = [bot.fake.host_file("plan.pdf", b"%PDF-1.4", "application/pdf")]
    await bot.post_event(dm("alice", "My plan", subtype="file_share", files=files))
    await driver.settle()
    assert len(bot.fake.shared) == 1
    posts = len(bot.fake.calls_to("chat.postMessage"))

    def as_after_a_crash(session) -> list[int]:
        items = session.exec(select(OutboxItem).where(OutboxItem.status == OutboxStatus.SENT)).all()
        found = [item for item in items if "My plan" in item.payload.get("text", "")]
        for item in found:
            item.status, item.maybe_sent, item.next_attempt_at = OutboxStatus.PENDING, True, clock.now()
        return [item.id for item in found]

    assert len(bot.runtime.db.run_sync(as_after_a_crash)) == 1
    await driver.settle()
    assert len(bot.fake.shared) == 1
    assert len(bot.fake.calls_to("chat.postMessage")) == posts
    assert [call.args.get("ts") for call in bot.fake.calls_to("conversations.replies")][-1:] == [thread]
