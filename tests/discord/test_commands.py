"""`/concierge` app commands and card buttons, dispatched as INTERACTION_CREATE through discord.py."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from adapters.discord.slash import ROOT, _describe, build_group, local_payload
from concierge.app import FAILED
from concierge.commands import Command, CommandRegistry, Param
from concierge.commands.registry import REGISTRY
from concierge.people import Role
from concierge.platform import Button, Card
from concierge.replies import Reply
from tests.discord.conftest import discord_settings_for
from tests.discord.fake_discord import answer_text, is_private
from tests.discord.harness import DiscordWorld, custom_ids
from tests.support.discord import assert_nobody_pinged, open_conversation

OPTION_TYPE = {"user": discord.AppCommandOptionType.user, "int": discord.AppCommandOptionType.integer,
               "flag": discord.AppCommandOptionType.boolean}


async def _ignore(interaction, tokens):  # noqa: ANN001
    raise AssertionError("not invoked in these tests")


def assert_matches_registry(group: app_commands.Group, registry: CommandRegistry) -> None:
    """Every registry command has its Discord subcommand with the same options, and nothing more."""
    for command in registry:
        node = group
        for word in command.path:
            node = node.get_command(word) if isinstance(node, app_commands.Group) else None
            assert node is not None, f"`{command.name}` has no Discord counterpart"
        assert isinstance(node, app_commands.Command), command.name
        assert node.description == _describe(command.help)
        # Discord lists required options first; within each kind the registry's order holds.
        optional = [param for param in command.params if param.optional or param.option]
        expected = [param.name for param in command.params if param not in optional] + [p.name for p in optional]
        assert [param.name for param in node.parameters] == expected, command.name
        for param in command.params:
            option = node.get_parameter(param.name)
            assert option.type == OPTION_TYPE.get(param.kind, discord.AppCommandOptionType.string), param
            assert option.required == (param not in optional), param
            assert option.description
    rendered = {tuple(command.qualified_name.split()[1:]) for command in group.walk_commands()
                if isinstance(command, app_commands.Command)}
    assert rendered == {command.path for command in registry}


def test_the_command_group_renders_every_registry_command():
    assert_matches_registry(build_group(_ignore), REGISTRY)


def test_stats_offers_the_chart_as_a_yes_no_option():
    chart = build_group(_ignore).get_command("stats").get_parameter("chart")
    assert chart.type == discord.AppCommandOptionType.boolean and not chart.required


def test_a_new_registry_command_gets_its_discord_counterpart():
    extra = Command(("tips", "send"), (Param("cadence", option=True), Param("topic", help="what about"),
                                       Param("hour", "int", optional=True), Param("loud", "flag", option=True)),
                    Role.MEMBER, "receive tips " + "and more " * 20, lambda session, inv, args: "ok")
    registry = CommandRegistry([*REGISTRY, extra])
    assert_matches_registry(build_group(_ignore, registry), registry)


def test_a_command_discord_cannot_nest_fails_loudly():
    deep = Command(("member", "tier", "set"), (), Role.ADMIN, "too deep", lambda session, inv, args: "")
    with pytest.raises(ValueError, match="two deep"):
        build_group(_ignore, CommandRegistry([*REGISTRY, deep]))


async def test_the_bot_registers_the_group_for_the_server_and_dms_and_syncs_it(world):
    group = world.bot.tree.get_command(ROOT)
    assert_matches_registry(group, REGISTRY)
    assert group.allowed_contexts.guild and group.allowed_contexts.dm_channel
    [pushed] = world.fake.commands
    assert pushed["name"] == ROOT and sorted(pushed["contexts"]) == [0, 1]
    assert pushed["options"] == local_payload(world.bot.tree)[0]["options"]


async def test_a_restart_syncs_only_when_the_commands_changed(world):
    puts = r"/applications/\d+/commands"
    await world.restart()
    assert len(world.fake.calls_to("PUT", puts)) == 1, "unchanged commands are not pushed again"
    world.fake.commands[0]["options"].pop()  # as synced by an older version
    await world.restart()
    assert len(world.fake.calls_to("PUT", puts)) == 2


async def test_a_member_runs_commands_in_their_dm_with_the_bot(world):
    await world.slash("admin", f"member add <@{world.user_id('alice')}> premium alice")
    dm = world.fake.channels[world.dm_channel("alice")]
    payload = world.interaction("alice", 2, world.command_data(["help"]), dm)
    world.gateway("INTERACTION_CREATE", payload)
    answer = await world.fake.answer_to(int(payload["id"]))
    assert is_private(answer) and "`/concierge help [command]`" in answer_text(answer)
    assert "member add" not in answer_text(answer), "a member sees the member commands only"


async def test_an_option_given_by_name_reaches_the_core_as_such(fake, database_url, clock):
    seen: list[dict] = []

    def record(session, invocation, args) -> str:  # noqa: ANN001
        seen.append(args)
        return "noted"

    extra = Command(("note",), (Param("text", "text"), Param("tag", option=True)), Role.GUEST, "take a note", record)
    world = await started_world(fake, database_url, clock, CommandRegistry([*REGISTRY, extra]))
    try:
        data = world.command_data(["note", "drink", "more", "water"])
        data["options"][0]["options"].insert(0, {"type": 3, "name": "tag", "value": "hydration"})
        payload = world.interaction("admin", 2, data, world.channel_payload())
        world.gateway("INTERACTION_CREATE", payload)
        assert answer_text(await fake.answer_to(int(payload["id"]))) == "noted"
        assert seen == [{"text": "drink more water", "tag": "hydration"}]
    finally:
        await world.stop()


async def test_an_answer_with_a_card_shows_its_buttons_privately_and_they_work(fake, database_url, clock):
    menu = Command(("menu",), (), Role.GUEST, "what you can do",
                   lambda session, inv, args: Reply("Pick one", card=Card("Menu", buttons=(
                       Button("Help", "help", "", "primary"),))))
    world = await started_world(fake, database_url, clock, CommandRegistry([*REGISTRY, menu]))
    try:
        answer = await world.slash("admin", "menu")
        assert is_private(answer) and answer_text(answer) == "Pick one"
        assert answer["data"]["embeds"][0]["title"] == "Menu"
        [row] = answer["data"]["components"]
        [button] = row["components"]
        assert button["custom_id"] == "concierge:help:"
        # The private message's button reaches the core like a card's.
        message = fake.message_payload(fake.staff_channel_id, fake.bot, "Pick one", components=[row])
        message["flags"] = 64
        payload = world.interaction("admin", 3, {"custom_id": button["custom_id"], "component_type": 2},
                                    world.channel_payload(), message)
        world.gateway("INTERACTION_CREATE", payload)
        assert answer_text(await fake.answer_to(int(payload["id"]))).startswith("`/concierge help [command]`")
    finally:
        await world.stop()


async def started_world(fake, database_url, clock, registry: CommandRegistry, **overrides) -> DiscordWorld:  # noqa: ANN001
    admin, settings = discord_settings_for(fake, database_url)
    world = DiscordWorld(fake, settings, clock, registry=registry, **overrides)
    world.people["admin"] = admin
    await world.start()
    return world


async def test_a_user_option_reaches_the_core_as_the_users_id(world):
    carol = world.user_id("carol")
    answer = await world.slash("admin", f"member add <@{carol}> premium Carol Smith")
    assert is_private(answer) and answer_text(answer) == "Carol Smith is now a premium member."
    await world.dm("carol", "hello")
    await world.settle()
    assert len(world.fake.staff_threads()) == 1, "carol, enrolled by her Discord id, reached the staff"


async def test_a_stale_subcommand_is_answered_by_the_core(world):
    answer = await world.slash("admin", "member promote")
    assert is_private(answer)
    assert answer_text(answer).startswith("Unknown command `member promote`. Did you mean:")


async def test_close_inside_a_thread_closes_that_conversation(world):
    thread = await open_conversation(world)
    answer = await world.slash("bob", "close", thread_id=thread)
    assert answer_text(answer) == "Conversation 1 closed."
    outside = await world.slash("bob", "reopen")
    assert "Run this inside a conversation's thread" in answer_text(outside)


async def test_options_are_autocompleted_from_known_tiers(world):
    await world.slash("admin", f"member add <@{world.user_id('alice')}> premium")
    await world.slash("admin", f"member add <@{world.user_id('carol')}> basic")
    data = world.command_data(["member", "tier", f"<@{world.user_id('alice')}>", "p"])
    data["options"][0]["options"][0]["options"][1]["focused"] = True
    payload = world.interaction("admin", 4, data, world.channel_payload())
    world.gateway("INTERACTION_CREATE", payload)
    answer = await world.fake.answer_to(int(payload["id"]))
    assert answer["type"] == 8
    assert answer["data"]["choices"] == [{"name": "premium", "value": "premium"}]


async def test_a_slow_answer_is_deferred_then_sent_as_a_private_follow_up(fake, database_url, clock):
    world = await started_world(fake, database_url, clock, REGISTRY, interaction_defer_after_s=1e-6)
    try:
        payload = world.interaction("admin", 2, world.command_data(["member", "list"]), world.channel_payload())
        world.gateway("INTERACTION_CREATE", payload)
        await world.settle()
        first, follow_up = fake.answers[int(payload["id"])]
        assert first["type"] == 5 and is_private(first), "deferred, privately"
        assert is_private(follow_up) and answer_text(follow_up).startswith("No members yet.")
        assert_nobody_pinged(fake)
    finally:
        await world.stop()


# Buttons.

async def test_card_buttons_work_after_a_restart(world):
    thread = await open_conversation(world)
    claim, close = custom_ids(world.card_of(thread))
    await world.restart()  # a new process that never sent this card
    answer = await world.press("bob", thread, claim)
    assert is_private(answer) and answer_text(answer) == "You claimed conversation 1."
    answer = await world.press("bob", thread, close)
    assert answer_text(answer) == "Conversation 1 closed."
    await world.settle()
    assert world.thread_texts(thread)[-2:] == ["Claimed by bob.", "Closed by bob."]


async def test_a_button_refuses_someone_without_the_role(world):
    thread = await open_conversation(world)
    claim, _ = custom_ids(world.card_of(thread))
    answer = await world.press("alice", thread, claim)
    assert is_private(answer) and "experts only" in answer_text(answer)


async def test_a_redelivered_button_press_is_applied_once(world):
    thread = await open_conversation(world)
    claim, _ = custom_ids(world.card_of(thread))
    message = world.fake.messages[thread]
    payload = world.interaction("bob", 3, {"custom_id": claim, "component_type": 2},
                                world.channel_payload(), message)
    world.gateway("INTERACTION_CREATE", payload)
    world.gateway("INTERACTION_CREATE", payload)
    await world.settle()
    texts = sorted(answer_text(answer) for answer in world.fake.answers[int(payload["id"])])
    assert texts == ["Already done.", "You claimed conversation 1."]
    assert world.thread_texts(thread).count("Claimed by bob.") == 1


async def test_a_command_the_core_cannot_apply_is_answered_privately_that_nothing_changed(world):
    db = world.bot.runtime.db
    tries = []

    async def down(work):  # noqa: ANN001, ANN202
        tries.append(work)
        raise ConnectionError("the database is unreachable")

    db.run = down
    try:
        answer = await world.slash("admin", f"member add <@{world.user_id('carol')}> premium carol")
    finally:
        del db.run
    assert is_private(answer) and answer_text(answer) == FAILED
    assert len(tries) == 3, "the core tried again before giving up"
    assert (await world.slash("admin", "member list")).get("data", {}).get("content", "").startswith("No members")
