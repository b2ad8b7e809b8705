"""Setting up Discord: intents, invite link, doctor, settings, and the adapter's entry points."""

from __future__ import annotations

import asyncio
import base64
import logging
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import discord
import pytest
from typer.testing import CliRunner

import adapters.discord as adapter
from adapters.discord.bot import intents, required_permissions, spans_platforms, startup_problems
from adapters.discord.cli import application_id_from_token, cli, doctor, find_problems, invite_url
from adapters.discord.settings import DiscordSettings
from adapters.discord.slash import build_group, tokens_for
from concierge.commands.registry import REGISTRY
from tests.conftest import make_settings
from tests.contract.scenarios import question_answer_note_close
from tests.support.discord import DiscordDriver


def test_the_bot_asks_for_exactly_the_intents_it_uses(world):
    wanted = intents()
    assert {name for name, on in wanted if on} == {"guilds", "dm_messages", "guild_messages", "message_content"}
    assert world.bot.intents == wanted
    assert world.bot.http.max_ratelimit_timeout == 30.0, "long rate limits go back to the outbox"
    assert world.bot.allowed_mentions.to_dict() == {"parse": []}


def test_the_invite_link_has_both_scopes_and_exactly_the_permissions_the_code_uses():
    url = urlparse(invite_url(1234, guild_id=99))
    query = parse_qs(url.query)
    assert url.netloc == "discord.com" and url.path == "/oauth2/authorize"
    assert query["client_id"] == ["1234"] and query["guild_id"] == ["99"]
    assert query["scope"] == ["bot applications.commands"]
    granted = discord.Permissions(int(query["permissions"][0]))
    assert {name for name, on in granted if on} == {  # read_messages is "View Channel"
        "read_messages", "send_messages", "embed_links", "create_public_threads", "send_messages_in_threads",
        "read_message_history",
    }
    assert granted == required_permissions()


def test_concierge_discord_invite_reads_the_application_id_from_the_token(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    token = base64.b64encode(b"987654321").decode().rstrip("=") + ".GhIjKl.secret-part"
    assert application_id_from_token(token) == 987654321
    monkeypatch.setenv("DISCORD_TOKEN", token)
    monkeypatch.setenv("DISCORD_GUILD_ID", "42")
    result = CliRunner().invoke(cli, ["invite"])
    assert result.exit_code == 0, result.output
    assert "client_id=987654321" in result.output and "guild_id=42" in result.output
    assert "secret-part" not in result.output


def test_settings_keep_the_token_secret_and_check_the_archive_duration():
    settings = DiscordSettings(_env_file=None, token="abc.def.ghi", guild_id=1)
    assert "abc.def.ghi" not in repr(settings) and "abc.def.ghi" not in str(settings.model_dump())
    with pytest.raises(ValueError):
        DiscordSettings(_env_file=None, thread_archive_minutes=120)


def test_startup_needs_a_token_a_guild_and_a_staff_channel_id():
    problems = startup_problems(make_settings("sqlite://", staff_channel="concierge-staff"),
                                DiscordSettings(_env_file=None))
    assert [problem.split(" ")[0] for problem in problems] == [
        "DISCORD_TOKEN", "DISCORD_GUILD_ID", "CONCIERGE_STAFF_CHANNEL"]
    assert startup_problems(make_settings("sqlite://", staff_channel="123"),
                            DiscordSettings(_env_file=None, token="t", guild_id=1)) == []


def test_the_staff_channels_must_be_discord_ids_only_when_the_staff_works_on_discord():
    ready = DiscordSettings(_env_file=None, token="t", guild_id=1)
    on_slack = make_settings("sqlite://", staff_platform="slack", staff_channel="C0STAFF",
                             specialty_channels={"physio": "C0PHYSIO"})
    assert startup_problems(on_slack, ready) == [], "members on Discord, experts in Slack's channels"
    on_discord = on_slack.model_copy(update={"staff_platform": "discord"})
    assert [problem.split(" ")[0] for problem in startup_problems(on_discord, ready)] == [
        "CONCIERGE_STAFF_CHANNEL", "CONCIERGE_SPECIALTY_CHANNELS"]


def test_a_desk_spanning_platforms_names_people_as_text(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    alone = make_settings("sqlite://", staff_channel="123")
    assert not spans_platforms(alone), "Discord alone: the user picker, with names"
    assert spans_platforms(alone.model_copy(update={"staff_platform": "slack"})), "staff on Slack"
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert spans_platforms(alone), "Slack served too, by this process or a second one"

    async def not_run(interaction, tokens, names=()):  # noqa: ANN001, ANN202
        raise AssertionError

    def user_option(group):  # noqa: ANN001, ANN202
        return group.get_command("member").get_command("add").get_parameter("user").type

    assert user_option(build_group(not_run)) is discord.AppCommandOptionType.user
    assert user_option(build_group(not_run, users_as_text=True)) is discord.AppCommandOptionType.string
    add, _ = REGISTRY.find(("member", "add"))
    assert tokens_for(add, {"user": "<@!80351110224678912>", "tier": "premium"})[2] == "80351110224678912"
    assert tokens_for(add, {"user": "slack:U0123ABC", "tier": "premium"})[2] == "slack:U0123ABC"


def test_is_configured_reads_the_environment_without_importing_discord(tmp_path):
    code = ("import sys, adapters.discord as a; ok = a.is_configured(); "
            "assert 'discord' not in sys.modules, 'imported the SDK'; print(ok)")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(__import__("pathlib").Path.cwd())}
    without = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    with_token = subprocess.run([sys.executable, "-c", code], env={**env, "DISCORD_TOKEN": "t"}, cwd=tmp_path,
                                capture_output=True, text=True)
    assert (without.stdout.strip(), with_token.stdout.strip()) == ("False", "True"), without.stderr + with_token.stderr


async def test_run_refuses_http_mode():
    with pytest.raises(SystemExit):
        await adapter.run(make_settings("sqlite://"), http=True)


async def test_the_token_never_reaches_the_logs(world, caplog):
    caplog.set_level(logging.DEBUG)
    await world.restart()
    await question_answer_note_close(DiscordDriver(world))
    assert caplog.records and world.fake.token not in caplog.text


# Doctor.

async def test_doctor_finds_nothing_wrong_with_a_working_setup(world):
    assert await find_problems(world.settings, world.discord_settings) == []


async def test_doctor_names_each_problem_and_its_fix(world):
    fake = world.fake
    fake.application_flags = 0
    fake.bot_role_permissions &= ~(1 << 35)  # no create_public_threads
    fake.commands.clear()
    problems = await find_problems(world.settings, world.discord_settings)
    assert len(problems) == 3, problems
    assert "Message Content Intent is off" in problems[0]
    assert "lacks create_public_threads" in problems[1]
    assert "concierge discord sync" in problems[2]


async def test_doctor_on_a_wrong_token_a_wrong_guild_and_a_channel_name(world):
    wrong_token = DiscordSettings(_env_file=None, token="not-the-token", guild_id=world.fake.guild_id)
    assert "refused the token" in (await find_problems(world.settings, wrong_token))[0]
    elsewhere = DiscordSettings(_env_file=None, token=world.fake.token, guild_id=world.fake.new_id())
    assert "not in server" in (await find_problems(world.settings, elsewhere))[0]
    named = world.settings.model_copy(update={"staff_channel": "concierge-staff", "admins": ["local:admin"]})
    problems = await find_problems(named, world.discord_settings)
    assert "CONCIERGE_ADMINS has no discord:" in problems[0]
    assert "it must be the channel's id" in problems[1]


async def test_concierge_discord_doctor_and_sync_run_from_the_environment(fake, database_url, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", fake.token)
    monkeypatch.setenv("DISCORD_GUILD_ID", str(fake.guild_id))
    monkeypatch.setenv("CONCIERGE_STAFF_CHANNEL", str(fake.staff_channel_id))
    monkeypatch.setenv("CONCIERGE_ADMINS", "discord:1")
    settings = make_settings(database_url, staff_channel=str(fake.staff_channel_id), admins=["discord:1"])
    # The commands run their own event loop, so they run in a thread while the fake serves here.
    assert await asyncio.to_thread(doctor, settings) == [
        "The /concierge commands on Discord differ from this version: run `concierge discord sync` "
        "(starting the bot syncs them too)."]
    synced = await asyncio.to_thread(CliRunner().invoke, cli, ["sync"])
    assert synced.exit_code == 0 and "synced" in synced.output, synced.output
    checked = await asyncio.to_thread(CliRunner().invoke, cli, ["doctor"])
    assert checked.exit_code == 0, checked.output
    assert "look right" in checked.output
