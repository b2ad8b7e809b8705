"""The commands a newcomer runs: `concierge demo`, the playground, `concierge db upgrade`."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import concierge

ROOT = Path(__file__).resolve().parent.parent


def test_demo_tells_the_whole_story_and_exits_0(tmp_path):
    result = concierge("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  [staff #concierge-staff] thread 1 (alice, premium, nutrition): What should I eat before a 10k race?" in lines
    assert "  [DM to alice] Oats and a banana two hours before." in lines
    note = lines.index("bob@1> note: check her allergies next time")
    assert lines[note + 1] == "  (internal, not sent)"
    assert not any("allergies" in line for line in lines if line.startswith("  [DM"))
    assert any("admins only" in line for line in lines)


def test_playground_on_a_fresh_sqlite_file(tmp_path):
    script = "\n".join([
        "admin> /concierge member add alice premium",
        "admin> /concierge expert add bob nutrition",
        "alice> What should I eat before a 10k race?",
        "bob@1> Oats and a banana two hours before.",
        "bob@1> note: check her allergies next time",
        "bob@1> /concierge close",
        "quit",
    ]) + "\n"
    env = {"CONCIERGE_DATABASE_URL": f"sqlite:///{tmp_path / 'play.db'}"}
    # No `concierge db upgrade` first: `concierge run` migrates the database itself, on every platform.
    result = concierge("run", "--platform", "local", cwd=tmp_path, stdin=script, env=env)
    assert result.returncode == 0, result.stderr
    assert "[staff #concierge-staff] thread 1 (alice, premium, nutrition)" in result.stdout
    assert "[DM to alice] Oats and a banana two hours before." in result.stdout
    assert "(internal, not sent)" in result.stdout
    assert "Conversation 1 closed." in result.stdout
    assert (tmp_path / "play.db").exists()


def test_no_tokens_means_the_local_playground(tmp_path):
    result = concierge("run", cwd=tmp_path, stdin="quit\n",
                       env={"CONCIERGE_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"})
    assert result.returncode == 0, result.stderr
    assert "local playground" in result.stdout


def test_doctor_checks_each_configured_platform(tmp_path):
    clean = concierge("doctor", cwd=tmp_path)
    assert clean.returncode == 0 and "none configured" in clean.stdout, clean.stderr
    broken = concierge("doctor", cwd=tmp_path, env={
        "SLACK_BOT_TOKEN": "xoxb-not-a-real-token", "SLACK_APP_TOKEN": "xapp-not-real",
        "SLACK_API_URL": "http://127.0.0.1:9/api/"})  # nothing listens on the discard port
    assert broken.returncode == 1
    assert broken.stdout.startswith("slack: ") and "xoxb-not-a-real-token" not in broken.stdout + broken.stderr


def test_doctor_names_inbound_messages_the_bot_gave_up_on(tmp_path):
    from datetime import datetime, timezone

    from concierge.database import Database
    from concierge.records import InboxItem

    url = f"sqlite:///{tmp_path / 'doc.db'}"
    env = {"CONCIERGE_DATABASE_URL": url}
    assert concierge("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert concierge("doctor", cwd=tmp_path, env=env).returncode == 0
    now = datetime.now(timezone.utc)
    db = Database.from_url(url)
    try:
        db.run_sync(lambda session: session.add(InboxItem(
            platform="slack", event_id="D1:1.1", kind="member_message", payload={}, status="failed", attempts=10,
            next_attempt_at=now, received_at=now, last_error="RuntimeError: boom")))
    finally:
        db.close()
    result = concierge("doctor", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "inbox: slack member_message event (inbox item 1) could not be processed: RuntimeError: boom" in result.stdout


async def test_the_playground_writes_a_chart_to_a_file_and_says_where(runtime, platform, tmp_path):
    from adapters.local.playground import LocalDriver

    printed: list[str] = []
    driver = LocalDriver(runtime, platform, "concierge-staff", printed.append, files_dir=tmp_path)
    await driver.line("admin> /concierge stats --chart")
    chart = tmp_path / "desk-stats.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert printed == ["  (only you) No conversations since 2026-11-18 09:00 UTC.",
                       f"  (only you) Desk statistics since 2026-11-18 09:00 UTC: written to {chart}"]


async def test_the_playground_shows_each_button_as_the_command_that_does_the_same(database_url, clock, tmp_path):
    from adapters.local.platform import LocalPlatform
    from adapters.local.playground import LocalDriver
    from concierge.bootstrap import build_runtime
    from tests.conftest import make_settings

    printed: list[str] = []
    platform = LocalPlatform(echo=printed.append)
    runtime = build_runtime(make_settings(database_url), {"local": platform}, clock=clock)
    try:
        driver = LocalDriver(runtime, platform, "concierge-staff", printed.append, files_dir=tmp_path)
        for line in ("admin> /concierge member add alice premium", "admin> /concierge expert add bob nutrition",
                     "admin> /concierge expert add carl training", "alice> Is coffee fine before a run?"):
            await driver.line(line)
        assert printed[-1] == "    [Nutrition] /concierge topic 1:nutrition\n    [Training] /concierge topic 1:training"
        await driver.line("alice> /concierge topic 1:training")
        assert any("[staff #concierge-staff] thread 1 (alice, premium, training)" in line for line in printed)
        for line in ("carl@1> A small cup is fine.", "carl@1> /concierge close", "alice> /concierge rate 1:5"):
            await driver.line(line)
        thanks = printed.index("  (only you) Thank you for your rating!")
        assert printed[thanks + 1] == "    [Add a comment] /concierge comment 1"
        await driver.line("alice> /concierge comment 1")
        assert printed[-1] == "  (only you) Write your comment like this: `/concierge comment 1 <your comment>`."
    finally:
        runtime.close()


def test_the_playground_says_so_when_a_thread_does_not_exist_and_numbers_on_after_a_restart(tmp_path):
    env = {"CONCIERGE_DATABASE_URL": f"sqlite:///{tmp_path / 'play.db'}"}
    first = concierge("run", "--platform", "local", cwd=tmp_path, env=env, stdin="\n".join([
        "admin> /concierge member add alice premium",
        "admin> /concierge expert add bob nutrition",
        "alice> What should I eat before a 10k race?",
        "bob@9> Hello?",
        "quit"]) + "\n")
    assert first.returncode == 0, first.stderr
    assert "Concierge, local playground" in first.stdout and "Concierge concierge" not in first.stdout
    assert "thread 1 (alice, premium, nutrition)" in first.stdout
    assert "There is no conversation in thread 9; nothing was sent." in first.stdout
    second = concierge("run", "--platform", "local", cwd=tmp_path, env=env, stdin="\n".join([
        "bob@1> /concierge close",
        "alice> And what after the race?",
        "bob@2> Stretch and drink.",
        "quit"]) + "\n")
    assert second.returncode == 0, second.stderr
    assert "thread 2 (alice, premium, nutrition): And what after the race?" in second.stdout, second.stdout
    assert "[DM to alice] Stretch and drink." in second.stdout


def test_the_demo_plays_a_member_on_discord_with_staff_on_the_playground(tmp_path):
    result = concierge("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert ("  [staff #concierge-staff] thread 2 (Dana, premium, nutrition; writes from discord:dana): "
            "Hi from Discord! How long should I stretch after a run?") in lines
    assert "  [DM to dana on discord] Ten minutes, gently." in lines


async def test_the_playground_refuses_an_unknown_platform_prefix(runtime, platform):
    from adapters.local.playground import LocalDriver

    printed: list[str] = []
    driver = LocalDriver(runtime, platform, "concierge-staff", printed.append)
    await driver.line("dana@myspace> hi")
    assert printed == ["  (only you) `@myspace` is neither a thread number nor a platform (discord, slack)."]
