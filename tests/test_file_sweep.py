"""Stored bytes nothing refers to (a non-member's file, say) are swept after a grace period; a file a
message, a kept inbound event or an unsent item still names stays, and so does one that just arrived."""

from __future__ import annotations

import os
import time

from adapters.local.platform import LocalPlatform
from concierge.file_sweep import GRACE_S, referenced, sweep_unused
from concierge.files import FilePolicy, FileStore, take_in
from concierge.inbound import MemberMessage
from concierge.inbox import record
from concierge.outbox import POST, enqueue
from concierge.platform import FileRef, Outbound
from concierge.records import MessageFile
from tests.conftest import rows


async def from_someone(runtime, who: str, event_id: str, data: bytes) -> MemberMessage:
    """`who` sends a file: the adapter stores it before the core decides anything."""
    store = FileStore.from_settings(runtime.concierge.settings)

    async def download(_limit: int) -> bytes:
        return data

    attachment = await take_in(store, FilePolicy.from_settings(runtime.concierge.settings), name="photo.png",
                               mime="image/png", size=len(data), download=download)
    return MemberMessage(event_id, LocalPlatform.dm_address(who), "see this", attachments=(attachment,))


def age(store: FileStore, seconds: float) -> None:
    """Every file in the store (temporary ones too) last written `seconds` ago."""
    then = time.time() - seconds
    for path in store.root.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


async def test_only_bytes_no_record_needs_are_swept_and_only_after_the_grace_period(runtime, desk):
    store = FileStore.from_settings(runtime.concierge.settings)
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    kept = await from_someone(runtime, "alice", "f-kept", b"alice's photo")
    await runtime.concierge.handle(kept)  # recorded: a messagefile row
    stranger = await from_someone(runtime, "mallory", "f-orphan", b"a stranger's photo")
    await runtime.concierge.handle(stranger)  # not a member: nothing recorded, the bytes stay behind
    await desk.settle()  # alice's question reached staff: only its messagefile row names her file now
    retried = await from_someone(runtime, "alice", "f-retry", b"kept for a retry")
    now = runtime.concierge.clock.now()
    runtime.db.run_sync(lambda session: record(session, retried, now, status="pending"))
    waiting = store.put(b"in an unsent item")
    runtime.db.run_sync(lambda session: enqueue(
        session, key="with-file", kind=POST, address=LocalPlatform.dm_address("alice"),
        message=Outbound("here", files=(FileRef(waiting, "a.png", "image/png", 17),)), now=now))
    leftover = store.root / "ab" / ".incoming-interrupted"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a download")
    assert [row.sha256 for row in rows(runtime, MessageFile)] == [kept.attachments[0].sha256]

    keep = await runtime.db.run(referenced)
    assert sweep_unused(store, keep) == 0, "everything is younger than the grace period"
    age(store, GRACE_S + 60)
    assert sweep_unused(store, keep) == 2
    assert not store.has(stranger.attachments[0].sha256) and not leftover.exists()
    for still in (kept.attachments[0].sha256, retried.attachments[0].sha256, waiting):
        assert store.has(still)


async def test_bytes_that_arrive_again_are_fresh_again(runtime):
    store = FileStore.from_settings(runtime.concierge.settings)
    digest = store.put(b"sent once by a stranger")
    age(store, GRACE_S + 60)
    assert store.put(b"sent once by a stranger") == digest  # it comes back, its message being recorded now
    assert sweep_unused(store, set()) == 0
    assert store.has(digest)


async def test_the_tick_sweeps(runtime, ticker):
    store = FileStore.from_settings(runtime.concierge.settings)
    digest = store.put(b"nobody's")
    age(store, GRACE_S + 60)
    await ticker.tick()
    assert not store.has(digest)


async def test_bytes_put_while_the_sweep_deletes_them_are_kept(runtime):
    """Another process stores the same bytes for a new message at the very moment the sweep removes them."""
    store = FileStore.from_settings(runtime.concierge.settings)
    data = b"sent again by a member, a day later"
    digest = store.put(data)
    age(store, GRACE_S + 60)
    assert sweep_unused(store, set(), meanwhile=lambda: store.put(data)) == 1  # the old copy went
    assert store.read(digest) == data, "the new message's bytes are there"


async def test_bytes_renewed_at_the_last_moment_are_put_back(runtime):
    store = FileStore.from_settings(runtime.concierge.settings)
    digest = store.put(b"renewed")
    age(store, GRACE_S + 60)
    aside = store.path(digest).with_name(f".sweeping-{digest}")
    assert sweep_unused(store, set(), meanwhile=lambda: os.utime(aside)) == 0
    assert store.read(digest) == b"renewed" and not aside.exists()
