"""Issue 13: each safeguard of the core pinned by a test of its own.

Each test goes through the real code paths (the local runtime, its commands, the digest tick and
the outbox) and fails when its one safeguard is taken away, even while the others stay in place:

- the consent re-check just before a digest send (`DigestDelivery.may_send`, the digests' delivery
  policy, run by the outbox dispatcher as it confirms the item), without the
  unsubscribe's cancellation behind it;
- the cancellation of queued digest sends in the unsubscribe transaction
  (`subscriptions.cancel_deliveries`), without the re-check behind it;
- the planner's quiet-hours branch, reached when a tick runs late, inside quiet hours;
- the planner's daily cap across planning passes (sends earlier in the 24 hours count);
- the escaping of member and author names in the HTML transcript;
- the `active` filter that keeps a removed member's DM away from staff.
"""

from __future__ import annotations

import io
from datetime import timedelta
from html.parser import HTMLParser

from sqlalchemy import update

from concierge.digests import consent
from concierge.records import ConsentEvent, Expert, Member, Message, OutboxItem
from concierge.transcripts import export
from tests.conftest import START, rows
from tests.support.desk import tick

HOUR = 3600


async def catalogue(desk) -> None:
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    assert "created" in await desk.command("admin", "digest create nutrition-tips Nutrition tips")


async def publish(desk, *tips: str) -> None:
    """Each tip as an edition of its own."""
    for tip in tips:
        await desk.command("bob", f"digest add nutrition-tips {tip}")
        assert "published" in await desk.command("admin", "digest publish nutrition-tips")


def digest_dms(platform, person: str = "alice") -> list[str]:
    return [text for text in platform.dms_to(person) if "Nutrition tips #" in text]


def digest_items(runtime) -> list[OutboxItem]:
    return rows(runtime, OutboxItem, OutboxItem.edition_id.is_not(None))


async def queued_for_alice(desk, runtime, clock, ticker, editions: int = 1) -> list[OutboxItem]:
    """Alice subscribed daily at 10:00; `editions` published; at 10:00 the tick queues them (nothing sent yet)."""
    await catalogue(desk)
    await desk.command("alice", "subscribe nutrition-tips --cadence daily --hour 10")
    await publish(desk, *(f"tip {number}" for number in range(1, editions + 1)))
    clock.advance(HOUR)
    await ticker.tick()  # planned into the outbox; the dispatcher has not run
    queued = digest_items(runtime)
    assert [item.status for item in queued] == ["pending"] * editions
    return queued


# 1. The consent re-check just before a digest send.

async def test_a_revocation_the_queue_never_heard_of_still_stops_the_send(desk, platform, runtime, clock, ticker):
    """Consent revoked in the ledger alone (no cancellation of the queued send): the send is stopped
    by the check just before it, and the item is cancelled."""
    [queued] = await queued_for_alice(desk, runtime, clock, ticker)
    clock.advance(60)

    def revoke_in_the_ledger_only(session):
        consent.record(session, member_id=queued.member_id, digest_id=queued.digest_id, action=consent.REVOKED,
                       how="command", platform="local", actor="alice", policy_version="test", at=clock.now())

    runtime.db.run_sync(revoke_in_the_ledger_only)
    assert [item.status for item in digest_items(runtime)] == ["pending"], "nothing cancelled the queued send"
    await desk.settle()
    assert digest_dms(platform) == []
    [item] = digest_items(runtime)
    assert (item.status, item.last_error, item.sent_at) == ("cancelled", "no consent in force", None)


# 2. The cancellation of queued digest sends in the unsubscribe transaction.

async def test_unsubscribing_cancels_the_queued_digest_sends_at_once(desk, platform, runtime, clock, ticker):
    """Right after the unsubscribe, before any send is attempted, its queued sends are cancelled."""
    await queued_for_alice(desk, runtime, clock, ticker, editions=2)
    assert "Unsubscribed" in await desk.command("alice", "unsubscribe nutrition-tips")
    # No delivery ran in between: this is the unsubscribe's own doing, not the check before a send.
    assert [(item.status, item.last_error) for item in digest_items(runtime)] == [("cancelled", "unsubscribed")] * 2
    await desk.settle()
    assert digest_dms(platform) == []
    assert [e.action for e in rows(runtime, ConsentEvent)] == ["granted", "revoked"]


# 3. The planner's quiet-hours branch.

async def test_a_tick_that_runs_late_inside_quiet_hours_delivers_when_they_end(desk, platform, runtime, clock,
                                                                               ticker):
    """Due at 10:00 with quiet hours 22-7, but no tick runs until 23:00 (the bot was down): the
    edition waits for 07:00, then arrives; not at 23:00, not a day later, not never."""
    await catalogue(desk)
    await desk.command("alice", "subscribe nutrition-tips --cadence daily --hour 10 --quiet 22-7")
    await publish(desk, "Hydrate before you are thirsty.")
    clock.advance(14 * HOUR)  # 23:00: the first tick since 09:00, the delivery of 10:00 overdue
    assert clock.now() == START.replace(hour=23)
    arrivals = []
    for _ in range(12):  # hourly, 23:00 .. 10:00 the next day
        before = len(digest_dms(platform))
        await tick(ticker, desk)
        arrivals += [clock.now()] * (len(digest_dms(platform)) - before)
        clock.advance(HOUR)
    assert arrivals == [START.replace(hour=7) + timedelta(days=1)], (
        "delivered once, at the first tick after the quiet hours")
    assert "Hydrate before you are thirsty." in digest_dms(platform)[0]


# 4. The daily cap across planning passes.

async def test_the_daily_cap_counts_the_sends_of_earlier_passes(desk, platform, runtime, clock, ticker):
    """Cap 3, five editions waiting, a tick every hour: 3 go at 10:00, the other 2 only once the first
    are 24 hours old (the later passes see the earlier sends), none dropped."""
    assert runtime.concierge.settings.digest_max_per_day == 3
    await catalogue(desk)
    await desk.command("alice", "subscribe nutrition-tips --cadence daily --hour 10")
    await publish(desk, *(f"tip {number}" for number in range(1, 6)))
    clock.advance(HOUR)  # 10:00
    arrivals = []
    for _ in range(8):  # 10:00 .. 17:00: several planning passes over 7 hours
        before = len(digest_dms(platform))
        await tick(ticker, desk)
        arrivals += [clock.now()] * (len(digest_dms(platform)) - before)
        clock.advance(HOUR)
    assert len(arrivals) == 3, f"more than 3 digest messages within 7 hours: {len(arrivals)}"
    while clock.now() < START + timedelta(days=2):
        before = len(digest_dms(platform))
        await tick(ticker, desk)
        arrivals += [clock.now()] * (len(digest_dms(platform)) - before)
        clock.advance(HOUR)
    for moment in arrivals:
        in_window = [other for other in arrivals if moment - timedelta(hours=24) < other <= moment]
        assert len(in_window) <= 3, f"{len(in_window)} digest messages in the 24 hours up to {moment}"
    assert [text.splitlines()[0] for text in digest_dms(platform)] == [f"Nutrition tips #{n}" for n in range(1, 6)]
    assert arrivals[3:] == [START.replace(hour=10) + timedelta(days=1)] * 2


# 6. Escaping of member and author names in the HTML transcript.

NAME = "<script>alert(1)</script>"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text += data


async def test_html_transcript_escapes_member_and_expert_names(desk, runtime):
    """Names are cleaned on the way in (`clean_name`), but the export does not rely on it: a name
    with markup in the records (written before cleaning existed, or by an import) stays text."""
    await desk.command("admin", "member add alice premium Alice")
    await desk.command("admin", "expert add bob nutrition Bob")
    await desk.member_writes("alice", "My knee hurts.")
    await desk.settle()
    await desk.staff_writes("bob", desk.threads()[0], "Rest it for a week.")
    await desk.settle()

    def names_with_markup(session):
        session.execute(update(Member).values(display_name=NAME))
        session.execute(update(Expert).values(display_name=NAME))
        session.execute(update(Message).where(Message.author.in_(("Alice", "Bob"))).values(author=NAME))

    runtime.db.run_sync(names_with_markup)
    out = io.StringIO()
    assert runtime.db.run_sync(lambda session: export(session, out, "html")) == 2
    page = out.getvalue()
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    header = next(line for line in page.splitlines() if line.startswith("<p class=\"meta\">member"))
    assert escaped in header, "the member's name, escaped"
    messages = [line for line in page.splitlines() if line.startswith("<div class=\"message")]
    assert len(messages) == 2 and all(f"&middot; {escaped} &middot;" in line for line in messages), (
        "each message's author, escaped")
    parsed = _Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert parsed.text.count(NAME) == 3, "the names read back as the text they are"


# 7. A removed member's DM stays away from staff.

async def test_a_removed_members_dm_gets_the_join_text_and_opens_no_staff_thread(desk, platform, runtime):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    assert "no longer a member" in await desk.command("admin", "member remove alice")
    await desk.member_writes("alice", "Can I still ask about my diet?")
    await desk.settle()
    assert desk.threads() == []
    assert [(sent.address.channel, sent.message.text) for sent in platform.sent] == [
        ("dm-alice", runtime.concierge.settings.join_message())], "the join text to her DM, nothing to staff"
    assert rows(runtime, Message) == []
