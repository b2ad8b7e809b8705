"""`concierge slack doctor` and the adapter's settings, against the fake Slack."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

import adapters.slack
from adapters.slack.cli import find_problems
from adapters.slack.manifest import bot_scopes
from adapters.slack.settings import SlackSettings
from concierge.cli import app
from tests.slack.fake_slack import Channel, FakeSlack
from tests.slack.harness import STAFF, core_settings, slack_settings

URL = "sqlite:///unused.db"


@pytest.fixture
def staff_channel(fake_slack) -> Channel:
    fake_slack.channels[STAFF] = Channel(STAFF, "concierge-staff")
    return fake_slack.channels[STAFF]


async def test_a_correct_setup_has_no_problems(fake_slack, staff_channel):
    assert await find_problems(core_settings(URL), slack_settings(fake_slack)) == []
    assert {call.method for call in fake_slack.calls} == {"auth.test", "conversations.info", "apps.connections.open"}


async def test_missing_scopes_are_named():
    fake = await FakeSlack(scopes=[scope for scope in bot_scopes() if scope not in ("im:write", "groups:history")],
                           channels={STAFF: Channel(STAFF, "concierge-staff")}).start()
    try:
        problems = await find_problems(core_settings(URL), slack_settings(fake))
    finally:
        await fake.stop()
    assert len(problems) == 1
    assert "groups:history, im:write" in problems[0] and "reinstall" in problems[0]


async def test_staff_channel_problems(fake_slack, staff_channel):
    staff_channel.is_member = False
    [problem] = await find_problems(core_settings(URL), slack_settings(fake_slack))
    assert "not in the staff channel #concierge-staff" in problem and "/invite @concierge" in problem

    staff_channel.is_member, staff_channel.is_archived = True, True
    assert await find_problems(core_settings(URL), slack_settings(fake_slack)) == [
        "The staff channel #concierge-staff is archived."]

    [problem] = await find_problems(core_settings(URL, staff_channel="C0MISSING"), slack_settings(fake_slack))
    assert "C0MISSING cannot be read: channel_not_found" in problem

    [problem] = await find_problems(core_settings(URL, staff_channel="concierge-staff"), slack_settings(fake_slack))
    assert "is not a channel id" in problem


async def test_token_and_admin_problems(fake_slack, staff_channel):
    problems = await find_problems(core_settings(URL, admins=["local:admin"]),
                                   slack_settings(fake_slack, bot_token="xoxb-revoked"))
    assert problems[0].startswith("CONCIERGE_ADMINS has no slack:U... entry")
    assert "auth.test refused the bot token (invalid_auth)" in problems[1]

    problems = await find_problems(core_settings(URL), slack_settings(fake_slack, app_token="xapp-wrong"))
    assert problems == ["The app token cannot open a Socket Mode connection (invalid_auth): enable Socket Mode "
                        "and give the App-Level Token the connections:write scope."]

    problems = await find_problems(core_settings(URL), slack_settings(fake_slack, app_token=None, signing_secret=None))
    assert problems == ["Neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) is set."]

    assert await find_problems(core_settings(URL), SlackSettings(_env_file=None)) == [
        "SLACK_BOT_TOKEN is not set: install the app to the workspace and copy the Bot User OAuth Token (xoxb-...)."]


async def test_cli_doctor_reads_the_environment_and_exits_1_on_problems(fake_slack, staff_channel, monkeypatch,
                                                                      tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    for name, value in {"SLACK_BOT_TOKEN": fake_slack.bot_token, "SLACK_APP_TOKEN": fake_slack.app_token,
                        "SLACK_API_URL": fake_slack.api_url, "CONCIERGE_STAFF_CHANNEL": STAFF,
                        "CONCIERGE_ADMINS": "slack:UADMIN"}.items():
        monkeypatch.setenv(name, value)
    # The command runs its own event loop; the fake keeps serving on this one.
    result = await asyncio.to_thread(CliRunner().invoke, app, ["slack", "doctor"])
    assert (result.exit_code, result.output) == (0, "slack: tokens, scopes and staff channel look right.\n")

    staff_channel.is_member = False
    result = await asyncio.to_thread(CliRunner().invoke, app, ["slack", "doctor"])
    assert result.exit_code == 1 and "slack: The bot is not in the staff channel" in result.output


def test_settings_hide_secrets_and_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL",
                 "CONCIERGE_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert not adapters.slack.is_configured()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-very-secret")
    monkeypatch.setenv("SLACK_API_URL", "https://slack-gov.com/api")
    monkeypatch.setenv("CONCIERGE_HTTP_PORT", "8080")
    settings = SlackSettings()
    assert adapters.slack.is_configured()
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings.model_dump())
    assert settings.secret("bot_token") == "xoxb-very-secret" and settings.secret("app_token") == ""
    assert settings.api_url == "https://slack-gov.com/api/" and settings.http_port == 8080
    assert settings.missing_for(http=True) == [] and settings.missing_for(http=False) == ["SLACK_APP_TOKEN"]


def test_staff_channels_are_checked_as_slack_ids_only_when_the_staff_works_on_slack():
    from adapters.slack.server import staff_channel_warnings

    named = core_settings(URL, staff_channel="concierge-staff", specialty_channels={"physio": "1234567890"})
    assert [warning.split(":")[0] for warning in staff_channel_warnings(named)] == [
        "CONCIERGE_STAFF_CHANNEL", "CONCIERGE_SPECIALTY_CHANNELS"]
    on_slack = named.model_copy(update={"staff_platform": "slack"})
    assert len(staff_channel_warnings(on_slack)) == 2
    on_discord = named.model_copy(update={"staff_platform": "discord"})
    assert staff_channel_warnings(on_discord) == [], "members on Slack, experts in Discord's channels"
