"""`/concierge stats --chart` on Slack: the text privately, the PNG uploaded into the admin's DM with the bot.

Through signed slash command requests to the bolt app; the upload goes Slack's external way on the
fake (files.getUploadURLExternal, the bytes POSTed to the upload URL, files.completeUploadExternal).
SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import time

from adapters.slack.manifest import METHOD_SCOPES
from adapters.slack.responder import FILE_IN_DM
from concierge.app import FILE_NOT_SENT
from tests.slack.harness import ADMIN, STAFF

PNG = b"\x89PNG\r\n\x1a\n"


async def command(bot, user: str, text: str) -> str:
    """`/concierge text` as `user` in the staff channel; the text of the one private answer."""
    key = await bot.post_command(user, STAFF, text)
    await bot.settle()
    answers = bot.fake.responses_to(key)
    assert len(answers) == 1 and answers[0]["response_type"] == "ephemeral", answers
    return answers[0]["text"]


async def one_question(bot) -> None:
    """alice (a premium member) asks; bob answers nutrition: one open conversation."""
    assert "premium" in await command(bot, ADMIN, "member add <@UALICE|alice> premium alice")
    assert "nutrition" in await command(bot, ADMIN, "expert add <@UBOB|bob> nutrition bob")
    ts = f"{time.time():.6f}"
    await bot.post_event({"type": "message", "channel": "DALICE", "user": "UALICE", "text": "Water before a run?",
                          "ts": ts, "event_ts": ts, "channel_type": "im"})
    await bot.settle()


async def test_the_chart_is_uploaded_into_the_admins_dm_and_the_answer_says_so(desk_bot):
    bot = desk_bot
    await one_question(bot)
    answer = await command(bot, ADMIN, "stats --since 1d --chart")
    assert answer.startswith("Since 2026-11-24 09:00 UTC: 1 conversations, 1 open.")
    assert answer.endswith(FILE_IN_DM)
    [opened] = [call for call in bot.fake.calls_to("conversations.open") if call.args["users"] == ADMIN]
    [shared] = bot.fake.shared
    assert shared.channel == opened.response["channel"]["id"] == "DADMIN"
    [upload] = shared.files
    assert upload.filename == "desk-stats.png" and upload.data[:8] == PNG and len(upload.data) > 5000
    assert shared.titles == ["Desk statistics since 2026-11-24 09:00 UTC"]
    assert "/concierge" in shared.initial_comment
    assert {"files.getUploadURLExternal", "files.completeUploadExternal"} <= bot.fake.methods_called()
    assert bot.fake.methods_called() <= set(METHOD_SCOPES)  # the fake refuses a method outside the scopes


async def test_without_the_flag_nothing_is_uploaded(desk_bot):
    answer = await command(desk_bot, ADMIN, "stats")
    assert answer == "No conversations since 2026-11-18 09:00 UTC."
    assert desk_bot.fake.uploads == {} and desk_bot.fake.shared == []


async def test_a_non_admin_is_refused_and_nothing_is_uploaded(desk_bot):
    answer = await command(desk_bot, "UMALLORY", "stats --chart")
    assert "admins only" in answer
    assert desk_bot.fake.uploads == {} and desk_bot.fake.shared == []


async def test_a_failed_upload_keeps_the_text_answer(desk_bot):
    bot = desk_bot
    await one_question(bot)
    bot.fake.fail("files.completeUploadExternal", error="internal_error")
    answer = await command(bot, ADMIN, "stats --since 1d --chart")
    assert answer.startswith("Since 2026-11-24 09:00 UTC: 1 conversations, 1 open.")
    assert answer.endswith(FILE_NOT_SENT)
    assert bot.fake.shared == []
