"""CONCIERGE_LOG_FORMAT=json: one JSON object per line, with the ids of what is handled, and no secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from adapters.local.platform import LocalPlatform
from concierge.bootstrap import build_runtime
from concierge.inbound import MemberMessage
from concierge.logs import configure, handling, secrets_in_environment
from concierge.platform import Address, MessageRef, Outbound
from tests.conftest import make_settings
from tests.contract.local_driver import LocalDriver

TOKEN = "xoxb-1234-5678-SECRETTOKEN"
PASSWORD = "pg-s3cret-pass"


@pytest.fixture
def lines():
    """The root logger's lines as JSON objects (the bot's own handler, as `concierge run` installs it)."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure("json", secrets=[TOKEN, PASSWORD], stream=stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class Leaky(LocalPlatform):
    """A platform whose first send fails with an error that quotes a token (an adapter bug)."""

    def __init__(self) -> None:
        super().__init__()
        self.leaks = 1

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        if self.leaks and address.user == "alice":
            self.leaks -= 1
            raise RuntimeError(f"bad call with token={TOKEN} to postgresql://bot:{PASSWORD}@db/concierge")
        return await super().send(address, message)


async def test_json_lines_carry_the_event_and_conversation_ids_and_no_secret(lines, database_url, clock):
    platform = Leaky()
    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    try:
        concierge = runtime.concierge
        desk = LocalDriver(runtime, platform)
        await desk.command("admin", "member add alice premium")
        await desk.command("admin", "expert add bob nutrition")
        question = MemberMessage("m1", LocalPlatform.dm_address("alice"), "Hello?")
        await concierge.receive(question)
        await concierge.receive(question)  # redelivered: logged, with its id
        await runtime.drain()
        [card] = platform.threads_opened()
        await desk.staff_writes("bob", card.ref.address.thread, "Hi Alice.")  # its send fails once: logged
        await runtime.drain()
    finally:
        runtime.close()
    logged = lines()
    assert logged, "the bot logged"
    for entry in logged:
        assert {"time", "level", "logger", "message"} <= set(entry)
        assert entry["time"].endswith("+00:00")
    [redelivered] = [entry for entry in logged if "redelivered" in entry["message"]]
    assert redelivered["event_id"] == "local:m1" and redelivered["level"] == "INFO"
    [failed_send] = [entry for entry in logged if entry["message"].startswith("unexpected error sending outbox item")]
    [conversation_id] = {entry["conversation_id"] for entry in logged if "conversation_id" in entry}
    assert failed_send["conversation_id"] == conversation_id and failed_send["outbox_item"] > 0
    assert "RuntimeError: bad call with token=[secret]" in failed_send["exception"]
    text = json.dumps(logged)
    assert TOKEN not in text and PASSWORD not in text


def test_text_lines_mask_secrets_and_show_the_ids():
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure("text", secrets=[TOKEN], stream=stream)
    try:
        with handling("slack:Ev1", conversation_id=7):
            logging.getLogger("concierge.test").warning("token %s refused", TOKEN)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    [line] = stream.getvalue().splitlines()
    assert line.endswith("WARNING concierge.test: token [secret] refused [event_id=slack:Ev1 conversation_id=7]")


def test_the_secrets_are_read_from_the_environment():
    environ = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd", "DISCORD_TOKEN": " MTA.x.y-z ",
               "SLACK_APP_TOKEN": "", "CONCIERGE_DATABASE_URL": f"postgresql://bot:{PASSWORD}@db:5432/concierge",
               "CONCIERGE_STAFF_CHANNEL": "C0STAFF"}
    assert sorted(secrets_in_environment(environ)) == sorted([TOKEN, "8f742231b10e8888abcd", "MTA.x.y-z", PASSWORD])


def test_concierge_run_logs_json_lines_and_serves_the_endpoint(tmp_path):
    """`concierge run` on the playground with CONCIERGE_LOG_FORMAT=json and a metrics port: stdin closed, it stops."""
    import os
    import subprocess
    import sys

    from tests.support.net import free_port

    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CONCIERGE_", "SLACK_", "DISCORD_"))}
    env.update(CONCIERGE_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}", CONCIERGE_LOG_FORMAT="json",
               CONCIERGE_METRICS_PORT=str(port), CONCIERGE_PLATFORM="local")
    done = subprocess.run([sys.executable, "-m", "concierge.cli", "run"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    logged = [json.loads(line) for line in done.stderr.splitlines()]
    assert f"serving /metrics, /healthz and /readyz at http://127.0.0.1:{port}" in [entry["message"] for entry in logged]


def test_concierge_run_in_process_leaves_the_callers_logging_as_it_was(tmp_path, monkeypatch):
    """A refused start through typer's runner (tests do this) must not leave a handler on its closed stream."""
    from typer.testing import CliRunner

    from concierge.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCIERGE_PLATFORM", "nowhere")
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code != 0 and "unknown platform 'nowhere'" in result.output
    assert (list(root.handlers), root.level) == before
