"""`/concierge stats chart:True` on Discord: the private answer carries the chart as a PNG attachment.

Through INTERACTION_CREATE and discord.py's own multipart answer (`payload_json` and `files[0]`).
SQLite and PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

from typing import Any

from tests.discord.conftest import discord_settings_for
from tests.discord.fake_discord import answer_files, answer_text, is_private
from tests.discord.harness import DiscordWorld
from tests.support.discord import assert_nobody_pinged, slash_with_options

PNG = b"\x89PNG\r\n\x1a\n"
CHART = {"type": 5, "name": "chart", "value": True}  # a boolean option, as the client sends it
SINCE_1D = {"type": 3, "name": "since", "value": "1d"}


async def one_question(world: DiscordWorld) -> None:
    """alice (a premium member) asks; bob answers nutrition: one open conversation."""
    await world.slash("admin", f"member add <@{world.user_id('alice')}> premium alice")
    await world.slash("admin", f"expert add <@{world.user_id('bob')}> nutrition bob")
    await world.dm("alice", "Water before a run?")
    await world.settle()


def attachment_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The one attachment an answer's JSON part declares."""
    [declared] = (answer.get("data") or {}).get("attachments") or [None]
    return declared


async def test_the_private_answer_carries_the_chart_as_a_png(world):
    await one_question(world)
    answer = await slash_with_options(world, "admin", ["stats"], [SINCE_1D, CHART])
    assert is_private(answer)
    assert answer_text(answer).startswith("Since 2026-11-24 09:00 UTC: 1 conversations, 1 open.")
    [file] = answer_files(answer)
    assert file.filename == "desk-stats.png" and file.data[:8] == PNG and len(file.data) > 5000
    assert attachment_of(answer)["filename"] == "desk-stats.png"
    assert attachment_of(answer)["description"] == "Desk statistics since 2026-11-24 09:00 UTC"
    assert_nobody_pinged(world.fake, paged=[world.user_id("bob")])  # bob: paged on the new question's card


async def test_no_chart_unless_asked(world):
    for options in ([], [{**CHART, "value": False}]):
        answer = await slash_with_options(world, "admin", ["stats"], options)
        assert is_private(answer) and answer_text(answer) == "No conversations since 2026-11-18 09:00 UTC."
        assert answer_files(answer) == []


async def test_a_non_admin_is_refused_and_gets_no_chart(world):
    answer = await slash_with_options(world, "mallory", ["stats"], [CHART])
    assert is_private(answer) and "admins only" in answer_text(answer)
    assert answer_files(answer) == []


async def test_a_deferred_answer_carries_the_chart_in_its_follow_up(fake, database_url, clock):
    admin, settings = discord_settings_for(fake, database_url)
    world = DiscordWorld(fake, settings, clock, interaction_defer_after_s=1e-6)
    world.people["admin"] = admin
    await world.start()
    try:
        await slash_with_options(world, "admin", ["stats"], [CHART])
        [answers] = [answers for answers in fake.answers.values() if answers[0]["type"] == 5]
        first, follow_up = answers
        assert is_private(first) and answer_files(first) == []
        assert is_private(follow_up) and answer_text(follow_up).startswith("No conversations")
        [file] = answer_files(follow_up)
        assert file.filename == "desk-stats.png" and file.data[:8] == PNG
        assert_nobody_pinged(fake)
    finally:
        await world.stop()


async def test_a_refused_attachment_still_answers_the_text(world):
    world.fake.fail("POST", r"/interactions/\d+/[\w-]+/callback", 413,
                    {"message": "Request entity too large", "code": 40005})
    answer = await slash_with_options(world, "admin", ["stats"], [CHART])
    assert is_private(answer) and answer_text(answer).startswith("No conversations") and answer_files(answer) == []
    [refused] = [call for call in world.fake.calls_to("POST", r"/interactions/\d+/[\w-]+/callback") if call.files]
    assert refused.files[0].filename == "desk-stats.png"
    text, note = world.fake.answers[int(refused.path.split("/")[2])]
    assert text is answer and note["type"] == "followup"
    assert is_private(note) and "could not be attached" in answer_text(note) and answer_files(note) == []
