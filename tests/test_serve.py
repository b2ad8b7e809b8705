"""One process, several platforms (`concierge.serve`): one runtime, a clean stop in the right order,
and no start when the staff channel's platform is unclear."""

from __future__ import annotations

import asyncio

import pytest

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import Runtime, build_runtime, choose_platforms
from concierge.serve import serve_connections, settings_for
from concierge.settings import Settings
from tests.conftest import make_settings
from tests.slack.conftest import sqlite_url  # noqa: F401 - a migrated SQLite database


class Recorded:
    """A connection that notes what is done to it, in one list shared by every connection."""

    def __init__(self, name: str, log: list[tuple[str, ...]], *, fails: Exception | None = None) -> None:
        self.platform = LocalPlatform(name=name)
        self.log = log
        self.fails = fails
        self.runtime: Runtime | None = None

    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.log.append(("start", self.platform.name))

    async def wait(self) -> None:
        if self.fails is not None:
            raise self.fails
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.log.append(("stop", self.platform.name))

    async def close(self) -> None:
        self.log.append(("close", self.platform.name))


@pytest.fixture
def log(monkeypatch) -> list[tuple[str, ...]]:
    """What happened, in order: the connections' steps, the background's stop, the runtime's close."""
    happened: list[tuple[str, ...]] = []
    stop_background, close = Runtime.stop_background, Runtime.close

    async def recorded_stop(self, task, timeout_s=10.0):  # noqa: ANN001, ANN202
        happened.append(("stop background", ",".join(sorted(self.dispatcher.platforms))))
        await stop_background(self, task, timeout_s)

    def recorded_close(self):  # noqa: ANN001, ANN202
        happened.append(("close runtime",))
        close(self)

    monkeypatch.setattr(Runtime, "stop_background", recorded_stop)
    monkeypatch.setattr(Runtime, "close", recorded_close)
    return happened


async def test_one_runtime_serves_every_connection_and_stops_them_in_order(sqlite_url, log):  # noqa: F811 - the fixture imported above
    settings = settings_for(make_settings(sqlite_url, staff_platform="slack"), ["slack", "discord"])
    slack, discord = Recorded("slack", log), Recorded("discord", log)
    serving = asyncio.create_task(serve_connections(settings, [slack, discord]))
    while len(log) < 2:
        await asyncio.sleep(0.01)
    assert slack.runtime is discord.runtime, "one runtime for both platforms"
    serving.cancel()  # Ctrl-C or SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await serving
    # No platform takes events before the outbox stops; the clients close only after it stopped.
    assert log == [("start", "slack"), ("start", "discord"), ("stop", "slack"), ("stop", "discord"),
                   ("stop background", "discord,slack"), ("close", "slack"), ("close", "discord"),
                   ("close runtime",)]


async def test_a_connection_that_fails_stops_the_others_cleanly_and_is_reported(sqlite_url, log):  # noqa: F811 - the fixture imported above
    settings = settings_for(make_settings(sqlite_url, staff_platform="slack"), ["slack", "discord"])
    broken = Recorded("discord", log, fails=RuntimeError("gateway refused the intents"))
    with pytest.raises(RuntimeError, match="gateway refused"):
        await serve_connections(settings, [Recorded("slack", log), broken])
    assert [step[0] for step in log] == ["start", "start", "stop", "stop", "stop background", "close", "close",
                                         "close runtime"]


def test_several_platforms_need_the_staff_platform_named(sqlite_url):  # noqa: F811 - the fixture imported above
    unnamed = make_settings(sqlite_url)
    with pytest.raises(SystemExit, match="set CONCIERGE_STAFF_PLATFORM to the platform where experts answer"):
        settings_for(unnamed, ["discord", "slack"])
    with pytest.raises(SystemExit, match="CONCIERGE_STAFF_PLATFORM"):
        build_runtime(unnamed, {"slack": LocalPlatform(name="slack"), "discord": LocalPlatform(name="discord")})
    assert settings_for(unnamed, ["slack"]).staff_platform == "slack", "one platform: it holds the staff channel"
    named = settings_for(make_settings(sqlite_url, staff_platform="discord"), ["discord", "slack"])
    runtime = build_runtime(named, {"slack": LocalPlatform(name="slack"), "discord": LocalPlatform(name="discord")})
    try:
        assert runtime.concierge.staff.platform == "discord"
    finally:
        runtime.close()
    with pytest.raises(SystemExit, match="'slak'; choose from discord, local, slack"):
        settings_for(make_settings(sqlite_url, staff_platform="slak"), ["slack"])


def test_every_platform_with_tokens_is_served_unless_one_is_chosen(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("SLACK_BOT_TOKEN", "DISCORD_TOKEN", "CONCIERGE_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert choose_platforms(Settings(_env_file=None)) == ["local"]
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert choose_platforms(Settings(_env_file=None)) == ["slack"]
    monkeypatch.setenv("DISCORD_TOKEN", "token")
    assert choose_platforms(Settings(_env_file=None)) == ["discord", "slack"]
    assert choose_platforms(Settings(_env_file=None, platform="slack")) == ["slack"]


def test_doctor_asks_for_the_staff_platform_when_several_are_configured(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import adapters.discord.cli
    import adapters.slack.cli
    from concierge.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCIERGE_DATABASE_URL", f"sqlite:///{tmp_path / 'doctor.db'}")
    for name in ("SLACK_BOT_TOKEN", "DISCORD_TOKEN"):
        monkeypatch.setenv(name, "configured")
    monkeypatch.delenv("CONCIERGE_STAFF_PLATFORM", raising=False)
    for platform_cli in (adapters.slack.cli, adapters.discord.cli):
        monkeypatch.setattr(platform_cli, "doctor", lambda settings: [])  # each platform's own checks pass
    unclear = CliRunner().invoke(app, ["doctor"])
    assert unclear.exit_code == 1 and "CONCIERGE_STAFF_PLATFORM is not set" in unclear.output, unclear.output
    monkeypatch.setenv("CONCIERGE_STAFF_PLATFORM", "slack")
    named = CliRunner().invoke(app, ["doctor"])
    assert named.exit_code == 0 and "(discord, slack)" in named.output, named.output


async def test_what_startup_built_is_frozen_out_of_full_collections_before_serving(sqlite_url, log, monkeypatch):  # noqa: F811 - the fixture imported above
    """A full collection walking startup's objects stalled every waiting message 65 ms (`concierge.collector`)."""
    import gc

    from concierge import collector

    gc.unfreeze()
    monkeypatch.setattr(collector, "_frozen", False)
    assert gc.get_freeze_count() == 0
    settings = settings_for(make_settings(sqlite_url, staff_platform="slack"), ["slack"])
    slack = Recorded("slack", log)
    serving = asyncio.create_task(serve_connections(settings, [slack]))
    while not log:
        await asyncio.sleep(0.01)
    assert gc.get_freeze_count() > 0, "frozen before the first event"
    assert not collector.freeze_startup_objects(), "once per process"
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
