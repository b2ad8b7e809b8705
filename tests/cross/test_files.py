"""Files that arrive: a member's file reaches staff on the other platform as an uploaded file with
the same bytes, an expert's file reaches the member likewise; the bytes are kept in the file store,
linked from the HTML export, and removed by `member erase` and the retention purge. A file too
large or of a refused type is not passed on, and the sender and staff are told.

Both directions (members on Discord with staff on Slack, and the reverse), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.slack.manifest import METHOD_SCOPES
from concierge.files import FileStore
from concierge.member_data import erase_member, export_member
from concierge.transcripts import export, purge_older_than
from tests.cross.driver import CrossDriver
from tests.cross.world import cross_world
from tests.slack.driver import dm_channel, user_id
from tests.slack.harness import STAFF

DIRECTIONS = pytest.mark.parametrize("members_on", ["discord", "slack"],
                                     ids=["members-on-discord", "members-on-slack"])
PLAN = b"%PDF-1.4\n" + bytes(range(256)) * 40  # binary, not text: bytes must arrive unchanged
CHART = b"\x89PNG\r\n\x1a\n" + hashlib.sha256(b"chart").digest() * 100


async def member_sends(world, person: str, text: str, name: str, data: bytes, mime: str) -> None:
    """`person` writes the bot a DM with a file, through their platform's real event path."""
    if world.members_on == "discord":
        channel = world.discord.dm_channel(person)
        await world.discord.dm(person, text, attachments=[world.discord.fake.attachment(channel, name, data, mime)])
    else:
        fake = world.slack.fake
        event = fake.write(dm_channel(person), user_id(person), text, subtype="file_share",
                           files=[fake.host_file(name, data, mime)])
        await world.slack.post_event(event)
    await world.settle()


async def expert_sends(world, person: str, thread: str, text: str, name: str, data: bytes, mime: str) -> None:
    """`person` writes in the staff thread with a file attached."""
    if world.staff_on == "discord":
        discord = world.discord
        message = discord.thread_message(person, int(thread), text)
        message["attachments"] = [discord.fake.attachment(int(thread), name, data, mime)]
        discord.gateway("MESSAGE_CREATE", message)
    else:
        fake = world.slack.fake
        await world.slack.post_event(fake.write(STAFF, user_id(person), text, thread_ts=thread, subtype="file_share",
                                                files=[fake.host_file(name, data, mime)]))
    await world.settle()


def discord_uploads(world, channel: int) -> list[tuple[str, bytes]]:
    """(filename, bytes) of every file the bot attached to a message in `channel` (a thread or a DM)."""
    return [(upload.filename, upload.data) for call in world.discord.fake.calls_to("POST", rf"/channels/{channel}/messages")
            for upload in call.files]


def slack_uploads(world, channel: str, thread: str = "") -> list[tuple[str, bytes]]:
    """(filename, bytes) of every file the bot shared in `channel` (in `thread`), uploaded as Slack takes it."""
    return [(upload.filename, upload.data) for shared in world.slack.fake.shared
            if shared.channel == channel and shared.thread_ts == thread for upload in shared.files]


def staff_received(world, thread: str) -> list[tuple[str, bytes]]:
    if world.staff_on == "slack":
        return slack_uploads(world, STAFF, thread)
    # On Discord the first message's files ride on the card, in the staff channel; the rest in the thread.
    return discord_uploads(world, world.discord.fake.staff_channel_id) + discord_uploads(world, int(thread))


def member_received(world, person: str) -> list[tuple[str, bytes]]:
    if world.members_on == "slack":
        return slack_uploads(world, dm_channel(person))
    return discord_uploads(world, world.discord.dm_channel(person))


async def enrol(d: CrossDriver) -> None:
    await d.command(d.admin, f"member add {d.mention('alice')} premium alice")
    await d.command(d.admin, f"expert add {d.mention('bob')} nutrition bob")


def store_of(world) -> FileStore:
    return FileStore.from_settings(world.runtime.concierge.settings)


@DIRECTIONS
async def test_files_arrive_both_ways_and_stay_in_the_transcript(members_on, fake_slack, fake, database_url, clock,
                                                                 tmp_path):
    async with cross_world(members_on, fake_slack, fake, database_url, clock, files_dir=str(tmp_path / "files")) as world:
        d = CrossDriver(world)
        await enrol(d)
        await member_sends(world, "alice", "Here is my meal plan", "plan.pdf", PLAN, "application/pdf")
        [thread] = d.threads()
        assert staff_received(world, thread) == [("plan.pdf", PLAN)]
        assert any("Here is my meal plan" in text and "[file] plan.pdf" in text for text in d.thread_texts(thread))

        await expert_sends(world, "bob", thread, "Your chart", "chart.png", CHART, "image/png")
        assert member_received(world, "alice") == [("chart.png", CHART)]
        assert any("Your chart" in text for text in d.dms("alice"))

        store = store_of(world)
        plan_hash, chart_hash = hashlib.sha256(PLAN).hexdigest(), hashlib.sha256(CHART).hexdigest()
        assert store.read(plan_hash) == PLAN and store.read(chart_hash) == CHART

        page = io.StringIO()
        await world.runtime.db.run(lambda session: export(session, page, "html", store=store))
        html = page.getvalue()
        for digest, name in ((plan_hash, "plan.pdf"), (chart_hash, "chart.png")):
            uri = store.path(digest).resolve().as_uri()
            assert f'<a href="{uri}" type="' in html and f">{name}</a>" in html
            assert Path(store.path(digest)).read_bytes() in (PLAN, CHART)

        lines = io.StringIO()
        await world.runtime.db.run(lambda session: export(session, lines, "jsonl"))
        assert plan_hash in lines.getvalue() and chart_hash in lines.getvalue()

        member_id = await world.runtime.db.run(lambda session: export_member(session, 1)["member"]["id"])
        exported = await world.runtime.db.run(lambda session: export_member(session, member_id))
        assert sorted(item["sha256"] for item in exported["files"]) == sorted([plan_hash, chart_hash])

        # The retention purge takes the files' bytes with the texts.
        later = clock.now() + timedelta(days=400)
        purged = await world.runtime.db.run(lambda session: purge_older_than(
            session, later - timedelta(days=30), actor="test", now=later, store=store))
        assert purged >= 2
        assert not store.has(plan_hash) and not store.has(chart_hash)
    assert all(call.ok for call in fake_slack.calls), [call for call in fake_slack.calls if not call.ok]
    assert fake_slack.methods_called() <= set(METHOD_SCOPES)  # uploads are methods the manifest grants


@DIRECTIONS
async def test_erase_removes_the_members_files_but_not_bytes_another_message_has(members_on, fake_slack, fake,
                                                                                 database_url, clock, tmp_path):
    async with cross_world(members_on, fake_slack, fake, database_url, clock, files_dir=str(tmp_path / "files")) as world:
        d = CrossDriver(world)
        await enrol(d)
        await d.command(d.admin, f"member add {d.mention('erin')} premium erin")
        await member_sends(world, "alice", "My plan", "plan.pdf", PLAN, "application/pdf")
        await member_sends(world, "erin", "Same plan as Alice", "plan.pdf", PLAN, "application/pdf")
        await member_sends(world, "alice", "And my chart", "chart.png", CHART, "image/png")
        store = store_of(world)
        plan_hash, chart_hash = hashlib.sha256(PLAN).hexdigest(), hashlib.sha256(CHART).hexdigest()
        assert store.has(plan_hash) and store.has(chart_hash)

        alice = await world.runtime.db.run(lambda session: export_member(session, 1))
        assert alice["member"]["display_name"] == "alice"
        await world.runtime.db.run(lambda session: erase_member(
            session, 1, actor="test", policy_version="1", now=clock.now(), store=store))
        assert not store.has(chart_hash)  # only alice had it
        assert store.has(plan_hash)  # erin sent the same bytes: they stay for erin's transcript
        after = await world.runtime.db.run(lambda session: export_member(session, 1))
        assert after["files"] == []


@DIRECTIONS
async def test_a_file_too_large_or_of_a_refused_type_is_told_to_sender_and_staff(members_on, fake_slack, fake,
                                                                                 database_url, clock, tmp_path):
    async with cross_world(members_on, fake_slack, fake, database_url, clock, files_dir=str(tmp_path / "files"),
                           files_max_bytes=len(PLAN) - 1) as world:
        d = CrossDriver(world)
        await enrol(d)
        await member_sends(world, "alice", "My plan", "plan.pdf", PLAN, "application/pdf")
        [thread] = d.threads()
        assert staff_received(world, thread) == []
        assert any("[file not passed on] plan.pdf" in text and "larger than" in text for text in d.thread_texts(thread))
        [notice] = [text for text in d.dms("alice") if "could not pass on" in text]
        assert "plan.pdf" in notice and "larger than" in notice

        await member_sends(world, "alice", "And a program", "setup.exe", b"MZ" * 10, "application/x-msdownload")
        assert staff_received(world, thread) == []
        assert any("setup.exe" in text and "not accepted" in text for text in d.thread_texts(thread))
        assert any("setup.exe" in text and "not accepted" in text for text in d.dms("alice"))

        before = list(d.dms("alice"))
        await expert_sends(world, "bob", thread, "Here is the big one", "big.pdf", PLAN, "application/pdf")
        assert member_received(world, "alice") == []
        new = d.dms("alice")[len(before):]
        assert any("Here is the big one" in text for text in new)
        assert not any("big.pdf" in text for text in new)  # the member is not shown staff's refusals
        assert any("Not passed on to the member" in text and "big.pdf" in text for text in d.thread_texts(thread))
        assert not store_of(world).has(hashlib.sha256(PLAN).hexdigest())  # refused before download: not kept


async def test_a_file_over_discords_limit_is_not_sent_there_and_staff_are_told(fake_slack, fake, database_url, clock,
                                                                               tmp_path):
    """Slack takes 1 GB, a Discord bot 10 MiB: the core holds the file back for the Discord member, and says so."""
    big = b"%PDF" + b"\x00" * (10 * 1024 * 1024)
    async with cross_world("discord", fake_slack, fake, database_url, clock, files_dir=str(tmp_path / "files")) as world:
        d = CrossDriver(world)
        await enrol(d)
        await member_sends(world, "alice", "Question", "small.pdf", PLAN, "application/pdf")
        [thread] = d.threads()
        await expert_sends(world, "bob", thread, "The full report", "report.pdf", big, "application/pdf")
        assert member_received(world, "alice") == []
        assert any("The full report" in text for text in d.dms("alice"))
        assert any("Not passed on to the member" in text and "report.pdf (10 MB)" in text and "larger than the 10 MB"
                   in text for text in d.thread_texts(thread))
        assert store_of(world).has(hashlib.sha256(big).hexdigest())  # kept for the transcript all the same
