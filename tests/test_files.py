"""The file store and its policy; files through the core (the local platform), on SQLite and PostgreSQL:
the relayed message carries references, never bytes; the HTML export links and escapes; a held-back
question takes its files to staff once its topic is picked."""

from __future__ import annotations

import hashlib
import io

import pytest

from adapters.local.platform import LocalPlatform
from concierge.files import FilePolicy, FileStore, take_in
from concierge.inbound import MemberMessage
from concierge.records import MessageFile, OutboxItem
from concierge.settings import Settings
from concierge.transcripts import export
from tests.conftest import rows


def test_the_store_keeps_one_copy_per_content_and_refuses_what_is_not_a_hash(tmp_path):
    store = FileStore(tmp_path / "files")
    first, again = store.put(b"one"), store.put(b"one")
    assert first == again == hashlib.sha256(b"one").hexdigest()
    assert store.read(first) == b"one"
    assert [path.name for path in (tmp_path / "files").rglob("*") if path.is_file()] == [first]
    for bad in ("../../etc/passwd", first.upper(), first[:-1], ""):
        with pytest.raises(ValueError):
            store.path(bad)
    assert store.remove(first) and not store.has(first) and not store.remove(first)


def test_allowed_types_match_mime_types_families_and_extensions():
    policy = FilePolicy(100, ("image/*", "application/pdf", ".txt"))
    assert policy.refusal("a.png", "image/png", 10) == ""
    assert policy.refusal("a.bin", "application/pdf", 10) == ""
    assert policy.refusal("notes.TXT", "application/octet-stream", 10) == ""
    assert "not accepted" in policy.refusal("setup.exe", "application/x-msdownload", 10)
    assert "larger than" in policy.refusal("a.png", "image/png", 101)
    assert "larger than the 50 bytes" in policy.refusal("a.png", "image/png", 60, platform_limit=50)


def test_allowed_types_and_the_size_cap_are_settings(monkeypatch):
    monkeypatch.setenv("CONCIERGE_FILES_ALLOWED_TYPES", "image/png, .pdf")
    monkeypatch.setenv("CONCIERGE_FILES_MAX_BYTES", "1234")
    settings = Settings(_env_file=None)
    assert settings.files_allowed_types == ["image/png", ".pdf"]
    assert FilePolicy.from_settings(settings) == FilePolicy(1234, ("image/png", ".pdf"))


async def test_a_failed_or_oversized_download_is_refused_not_kept(tmp_path):
    store, policy = FileStore(tmp_path), FilePolicy(10, ("image/*",))

    async def broken(_limit: int) -> bytes:
        raise ConnectionError("reset")

    async def lies_about_its_size(limit: int) -> bytes:
        return b"x" * (limit + 1)

    failed = await take_in(store, policy, name="a.png", mime="image/png", size=3, download=broken)
    assert (failed.sha256, failed.problem) == ("", "it could not be downloaded")
    large = await take_in(store, policy, name="a.png", mime="image/png", size=3, download=lies_about_its_size)
    assert large.sha256 == "" and "larger than" in large.problem
    assert list(tmp_path.rglob("*")) == []


async def stored_message(runtime, event_id: str, text: str, name: str, data: bytes, mime: str) -> MemberMessage:
    store = FileStore.from_settings(runtime.concierge.settings)

    async def download(_limit: int) -> bytes:
        return data

    attachment = await take_in(store, FilePolicy.from_settings(runtime.concierge.settings), name=name, mime=mime,
                               size=len(data), download=download)
    return MemberMessage(event_id, LocalPlatform.dm_address("alice"), text, attachments=(attachment,))


async def test_the_outbox_keeps_references_and_the_export_links_and_escapes(runtime, desk, platform):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    name = '<img src=x onerror="alert(1)">.png'
    await runtime.concierge.handle(await stored_message(runtime, "f-1", "my photo", name, b"\x89PNG data", "image/png"))
    await desk.settle()
    [opened] = platform.threads_opened()
    digest = hashlib.sha256(b"\x89PNG data").hexdigest()
    assert [ref.sha256 for ref in opened.message.files] == [digest]
    [item] = [item for item in rows(runtime, OutboxItem) if item.kind == "open_thread"]
    assert item.payload["files"] == [{"sha256": digest, "name": name, "mime": "image/png", "size": 9}]
    assert [row.sha256 for row in rows(runtime, MessageFile)] == [digest]
    page = io.StringIO()
    store = FileStore.from_settings(runtime.concierge.settings)
    await runtime.db.run(lambda session: export(session, page, "html", store=store))
    html = page.getvalue()
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.png</a>" in html
    assert f'href="{store.path(digest).resolve().as_uri()}"' in html


async def test_a_question_held_for_its_topic_takes_its_files_to_staff(runtime, desk, platform):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await desk.command("admin", "expert add carol training")
    await runtime.concierge.handle(await stored_message(runtime, "f-2", "my plan", "plan.pdf", b"%PDF", "application/pdf"))
    await desk.settle()
    assert platform.threads_opened() == []  # the member picks a topic first
    await desk.press_in_dm("alice", "Nutrition")
    await desk.settle()
    [opened] = platform.threads_opened()
    assert [ref.name for ref in opened.message.files] == ["plan.pdf"]


async def test_cli_exports_the_members_files_and_erase_removes_them(runtime, desk, tmp_path, database_url):
    import json
    import os
    import zipfile

    from tests.support.cli import concierge

    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    data = b"%PDF-1.4 plan"
    await runtime.concierge.handle(await stored_message(runtime, "f-3", "my plan", "plan.pdf", data, "application/pdf"))
    await desk.settle()
    store = FileStore.from_settings(runtime.concierge.settings)
    digest = hashlib.sha256(data).hexdigest()
    env = {"CONCIERGE_DATABASE_URL": database_url, "CONCIERGE_FILES_DIR": os.environ["CONCIERGE_FILES_DIR"]}

    archive = tmp_path / "alice.zip"
    exported = concierge("member", "export", "1", "--zip", str(archive), cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(archive) as opened:
        listed = json.loads(opened.read("member.json"))["files"]
        assert [item["sha256"] for item in listed] == [digest]
        assert opened.read(f"files/{listed[0]['id']}-plan.pdf") == data

    page = concierge("transcripts", "export", "--format", "html", cwd=tmp_path, env=env)
    assert page.returncode == 0, page.stderr
    assert f'href="{store.path(digest).resolve().as_uri()}"' in page.stdout

    erased = concierge("member", "erase", "1", "--yes", cwd=tmp_path, env=env)
    assert erased.returncode == 0, erased.stderr
    assert not store.has(digest)
    assert rows(runtime, MessageFile) == []


async def test_bytes_go_only_once_the_erase_commits(runtime, desk):
    from concierge.file_data import forget_files

    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await runtime.concierge.handle(await stored_message(runtime, "f-4", "my plan", "plan.pdf", b"%PDF 4", "application/pdf"))
    await desk.settle()
    store = FileStore.from_settings(runtime.concierge.settings)
    digest = hashlib.sha256(b"%PDF 4").hexdigest()
    [row] = rows(runtime, MessageFile)

    def forget_then_fail(session):
        forget_files(session, [row.conversation_id], store)
        raise RuntimeError("the transaction fails after the files were forgotten")

    with pytest.raises(RuntimeError):
        await runtime.db.run(forget_then_fail)
    assert store.has(digest) and len(rows(runtime, MessageFile)) == 1  # rolled back: the bytes stay
    assert await runtime.db.run(lambda session: forget_files(session, [row.conversation_id], store)) == 1
    assert not store.has(digest) and rows(runtime, MessageFile) == []


async def test_a_file_bound_for_a_platform_another_process_serves_is_checked_against_its_limit(runtime, desk, platform):
    """This process serves only `local`; the member writes from Discord (served by another process).

    The expert's 11 MB file is over Discord's upload limit (declared by `adapters.discord`, known to every
    process): held back when relayed, and the staff thread says so at once (not dropped at send time).
    """
    from concierge.inbound import StaffReply
    from concierge.platform import Address

    assert set(runtime.concierge.platforms) == {"local"}
    await desk.command("admin", "member add alice premium Alice")
    await desk.command("admin", "expert add bob nutrition Bob")
    await desk.command("admin", "member link alice discord:D1")
    await runtime.concierge.receive(MemberMessage("d-1", Address("discord", "dm-D1", "D1"), "A question from Discord"))
    await desk.settle()
    [thread] = desk.threads()
    big = b"%PDF" + b"\x00" * (11 * 1024 * 1024)
    store = FileStore.from_settings(runtime.concierge.settings)

    async def download(_limit: int) -> bytes:
        return big

    attachment = await take_in(store, FilePolicy.from_settings(runtime.concierge.settings), name="report.pdf",
                               mime="application/pdf", size=len(big), download=download)
    assert not attachment.problem, "within the file cap: only Discord's own limit refuses it"
    await runtime.concierge.receive(StaffReply("s-1", Address("local", "concierge-staff", "bob", thread),
                                               "The full report", attachments=(attachment,)))
    await desk.settle()
    assert runtime.concierge.upload_limits.get("discord") == 10 * 1024 * 1024
    # Queued for the staff thread in the relay's own transaction (it goes out once the Discord process has sent
    # the answer before it: a conversation's messages go in order).
    notices = [item for item in rows(runtime, OutboxItem) if item.platform == "local" and item.kind == "thread_post"]
    assert any("Not passed on to the member" in item.payload["text"] and "report.pdf" in item.payload["text"]
               for item in notices), [item.payload["text"] for item in notices]
    [answer] = [item for item in rows(runtime, OutboxItem) if item.platform == "discord" and "full report" in str(item.payload)]
    assert answer.payload.get("files", []) == []
