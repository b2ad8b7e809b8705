"""The command registry: parsing, usage errors, roles, and each command's effect."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.local.platform import LocalPlatform
from concierge.commands import Param, UsageError
from concierge.commands.registry import REGISTRY
from concierge.inbound import CommandInvoked
from concierge.records import AuditEvent, Expert, Member, PlatformIdentity
from tests.conftest import rows

TOKENS = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=12),
                  max_size=6).map(tuple)


def test_usage_lines_name_every_parameter():
    command, rest = REGISTRY.find(("member", "add", "alice", "premium"))
    assert command.usage() == "/concierge member add <user> <tier> [name]"
    assert rest == ("alice", "premium")


def test_parse_typed_parameters():
    command, _ = REGISTRY.find(("expert", "add"))
    values = REGISTRY.parse(command, ("bob", "Nutrition, training", "Bob", "Smith"))
    assert values == {"user": "bob", "specialties": ["nutrition", "training"], "name": "Bob Smith"}
    close, _ = REGISTRY.find(("close",))
    assert REGISTRY.parse(close, ("#12",)) == {"conversation": 12, "message": None}
    assert REGISTRY.parse(close, ("--message=Bye", "3")) == {"conversation": 3, "message": "Bye"}
    with pytest.raises(UsageError, match="must be a number"):
        REGISTRY.parse(close, ("twelve",))
    with pytest.raises(UsageError, match="unexpected"):
        REGISTRY.parse(close, ("1", "2"))


def test_a_flag_is_an_option_without_a_value():
    stats, _ = REGISTRY.find(("stats",))
    assert stats.usage() == "/concierge stats [--since <since>] [--chart]"
    assert REGISTRY.parse(stats, ()) == {"since": None, "chart": False}
    assert REGISTRY.parse(stats, ("--chart", "--since", "30d")) == {"since": "30d", "chart": True}
    assert REGISTRY.parse(stats, ("--since=1d", "--chart")) == {"since": "1d", "chart": True}
    # A platform's yes/no option may come back spelled out (Discord's raw options).
    assert REGISTRY.parse(stats, ("--chart=True",))["chart"] is True
    assert REGISTRY.parse(stats, ("--chart=false",))["chart"] is False
    with pytest.raises(UsageError, match="--chart takes no value"):
        REGISTRY.parse(stats, ("--chart=soon",))
    with pytest.raises(UsageError, match="unexpected"):
        REGISTRY.parse(stats, ("--chart", "7d"))
    with pytest.raises(ValueError, match="is an option"):
        Param("chart", "flag")


async def test_stats_with_chart_answers_the_text_and_a_png(desk, runtime):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("alice", "How much water per day?")
    await desk.settle()
    await desk.staff_writes("bob", desk.threads()[0], "Two litres.")
    plain = await runtime.concierge.handle(CommandInvoked("s1", LocalPlatform.dm_address("admin"),
                                                         ("stats", "--since", "1d")))
    assert "1 conversations, 1 open" in plain.text and plain.attachment is None
    charted = await runtime.concierge.handle(CommandInvoked("s2", LocalPlatform.dm_address("admin"),
                                                           ("stats", "--since", "1d", "--chart")))
    assert charted.ok and charted.text == plain.text and charted.finish is None
    chart = charted.attachment
    assert chart.data[:8] == b"\x89PNG\r\n\x1a\n" and len(chart.data) > 5000
    assert (chart.filename, chart.content_type) == ("desk-stats.png", "image/png")
    assert chart.title == "Desk statistics since 2026-11-24 09:00 UTC"


@pytest.mark.parametrize("who", ["alice", "bob", "mallory"])
async def test_stats_with_chart_is_for_admins_only(desk, runtime, who):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    reply = await runtime.concierge.handle(CommandInvoked("s1", LocalPlatform.dm_address(who), ("stats", "--chart")))
    assert not reply.ok and "admins only" in reply.text
    assert reply.attachment is None and reply.finish is None


@given(TOKENS)
def test_parse_never_fails_other_than_with_a_usage_error(tokens):
    for command in REGISTRY:
        try:
            values = REGISTRY.parse(command, tokens)
        except UsageError as problem:
            assert str(problem)
        else:
            assert set(values) == {param.name for param in command.params}


async def test_unknown_command_lists_what_exists(desk):
    answer = await desk.command("admin", "frobnicate")
    assert "Unknown command `frobnicate`" in answer and "member add" in answer
    answer = await desk.command("admin", "member frob")
    assert "Did you mean" in answer and "/concierge member list" in answer


async def test_guest_sees_only_what_they_may_run(desk):
    answer = await desk.command("mallory", "frobnicate")
    assert "help" in answer and "member add" not in answer


async def test_help_depends_on_role(desk):
    await desk.command("admin", "expert add bob nutrition")
    expert_help = await desk.command("bob", "help")
    assert "/concierge close" in expert_help and "member add" not in expert_help
    admin_help = await desk.command("admin", "help member")
    assert "/concierge member add" in admin_help and "/concierge close" not in admin_help


@pytest.mark.parametrize("who", ["alice", "bob", "mallory"])
async def test_non_admins_are_refused_and_nothing_changes(desk, runtime, who):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    before = [len(rows(runtime, model)) for model in (Member, Expert, PlatformIdentity, AuditEvent)]
    for text in ("member add mallory vip", "member remove alice", "member tier alice vip",
                 "expert add mallory training", "expert remove bob", "member list", "member block alice"):
        answer = await desk.command(who, text)
        assert "admins only" in answer and "Nothing was changed" in answer
    after = [len(rows(runtime, model)) for model in (Member, Expert, PlatformIdentity, AuditEvent)]
    assert after == before


def test_a_number_option_is_checked_like_a_number_parameter():
    listing, _ = REGISTRY.find(("member", "list"))
    assert REGISTRY.parse(listing, ("--page", "2")) == {"page": 2}
    assert REGISTRY.parse(listing, ()) == {"page": None}
    for wrong in ("0", "two", "-1", "99999999999"):
        with pytest.raises(UsageError, match="<page> must be a number from 1 to"):
            REGISTRY.parse(listing, (f"--page={wrong}",))


async def test_the_member_list_comes_a_page_at_a_time(desk):
    """Tens of thousands of members in one answer would be hundreds of Discord messages (2,000
    characters each) or cut by Slack; a page is about one message."""
    from concierge.commands.members import MEMBERS_PER_PAGE

    await desk.command("admin", "tier set premium")
    for number in range(MEMBERS_PER_PAGE + 5):
        await desk.command("admin", f"member add m{number:02d} premium Member {number:02d}")
    first = (await desk.command("admin", "member list")).split("\n")
    assert first[0] == f"Members 1-{MEMBERS_PER_PAGE} of {MEMBERS_PER_PAGE + 5} (page 1 of 2):"
    assert first[1:-1] == [f"Member {number:02d} (premium)" for number in range(MEMBERS_PER_PAGE)]
    assert first[-1] == "Next: `/concierge member list --page 2`"
    second = (await desk.command("admin", "member list --page 2")).split("\n")
    assert second == [f"Members {MEMBERS_PER_PAGE + 1}-{MEMBERS_PER_PAGE + 5} of {MEMBERS_PER_PAGE + 5} (page 2 of 2):",
                      *[f"Member {number:02d} (premium)" for number in range(MEMBERS_PER_PAGE, MEMBERS_PER_PAGE + 5)]]
    assert await desk.command("admin", "member list --page 3") == "There are 2 pages of members; ask for one from 1 to 2."
    assert "<page> must be a number" in await desk.command("admin", "member list --page none")


def test_the_queue_shows_the_longest_waits_and_says_how_many_more():
    from datetime import datetime, timedelta, timezone

    from concierge.waiting import Waiting, render_queue

    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    waiting = [Waiting(number, f"member {number}", "premium", "nutrition", None, now - timedelta(minutes=60 - number),
                       None) for number in range(1, 6)]
    assert render_queue(waiting, now, shown=5).split("\n")[0] == "Open conversations (5), longest waiting first:"
    lines = render_queue(waiting, now, shown=2).split("\n")
    assert lines[0] == "Open conversations (5), the 2 waiting longest first:"
    assert [line.split(" ")[0] for line in lines[1:3]] == ["#1", "#2"]
    assert lines[3:] == ["...and 3 more. For one specialty only: `/concierge queue --specialty <name>`."]


async def test_member_lifecycle(desk, runtime):
    assert await desk.command("admin", "member add alice premium Alice Liddell") == \
        "Alice Liddell is now a premium member."
    assert "already a member" in await desk.command("admin", "member add alice vip")
    assert "tier vip" in await desk.command("admin", "member tier alice vip")
    assert await desk.command("admin", "member list") == "Alice Liddell (vip)"
    assert "no longer a member" in await desk.command("admin", "member remove alice")
    assert "not a member" in await desk.command("admin", "member remove alice")
    assert "No members yet" in await desk.command("admin", "member list")
    actions = [event.action for event in rows(runtime, AuditEvent)]
    assert actions == ["member.add", "member.tier", "member.remove"]
    assert all(event.actor == "local:admin" for event in rows(runtime, AuditEvent))


async def test_expert_lifecycle(desk):
    assert "nutrition, training" in await desk.command("admin", "expert add bob nutrition,training")
    assert await desk.command("admin", "expert list") == "bob: nutrition, training"
    assert "no longer an expert" in await desk.command("admin", "expert remove bob")
    assert "not an expert" in await desk.command("admin", "expert remove bob")


async def test_claim_close_reopen_by_number_and_their_errors(desk, platform):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    assert "inside a conversation" in await desk.command("bob", "close")
    assert "no conversation 7" in await desk.command("bob", "close 7")
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    assert await desk.command("bob", "claim 1") == "You claimed conversation 1."
    assert await desk.command("bob", "claim 1") == "You already have conversation 1."
    assert "Only experts" in await desk.command("admin", "claim 1")
    assert await desk.command("admin", "close 1") == "Conversation 1 closed."
    assert "already closed" in await desk.command("bob", "close 1")
    await desk.member_writes("alice", "New question")
    await desk.settle()
    assert "already has conversation 2 open" in await desk.command("bob", "reopen 1")
    await desk.settle()
    thread = desk.threads()[0]
    assert platform.thread_posts(thread)[1:] == ["Claimed by bob.", "Closed by local:admin."]


async def test_buttons_check_roles_like_commands(desk):
    await desk.command("admin", "member add alice premium")
    await desk.command("admin", "expert add bob nutrition")
    await desk.member_writes("alice", "Question?")
    await desk.settle()
    thread = desk.threads()[0]
    assert "experts only" in await desk.press("alice", thread, "close")
    assert "closed" in await desk.press("bob", thread, "close")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=TOKENS)
def test_random_commands_from_a_member_change_nothing(tmp_path_factory, sqlite_template, tokens):
    """Whatever a member types after /concierge, they get an answer and no record changes."""
    import shutil

    from adapters.local.platform import LocalPlatform
    from concierge.bootstrap import build_runtime
    from tests.conftest import make_settings
    from tests.contract.local_driver import LocalDriver

    path = tmp_path_factory.mktemp("fuzz") / "c.db"
    shutil.copy(sqlite_template, path)
    platform = LocalPlatform()
    runtime = build_runtime(make_settings(f"sqlite:///{path}"), {"local": platform})
    try:
        driver = LocalDriver(runtime, platform)

        async def play():
            await driver.command("admin", "member add alice premium")
            before = [len(rows(runtime, model)) for model in (Member, Expert, PlatformIdentity, AuditEvent)]
            from concierge.inbound import CommandInvoked

            reply = await runtime.concierge.handle(
                CommandInvoked("fuzz", LocalPlatform.dm_address("alice"), tokens))
            assert reply is not None and reply.text
            after = [len(rows(runtime, model)) for model in (Member, Expert, PlatformIdentity, AuditEvent)]
            assert after == before

        asyncio.run(play())
    finally:
        runtime.close()
