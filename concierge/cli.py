"""The `concierge` command line (typer): run, demo, db upgrade, and each adapter's own commands."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import sys
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from concierge.bootstrap import adapter_names, choose_platforms, load_adapter
from concierge.clock import utc_now
from concierge.database import Database, ensure_schema, upgrade
from concierge.digests.audit import consent_violations
from concierge.errors import Refused
from concierge.files import FileStore
from concierge.logs import configure as configure_logging
from concierge.member_data import erase_member, export_member, write_member_zip
from concierge.serve import serve, settings_for
from concierge.settings import Settings
from concierge.transcripts import FORMATS, export, parse_since, purge_older_than

app = typer.Typer(help="concierge: a loyalty concierge on Slack, Discord and a local playground.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
audit_app = typer.Typer(help="Checks of what the bot did.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
member_app = typer.Typer(help="A member's data: export and erasure.", no_args_is_help=True)
app.add_typer(member_app, name="member")
transcripts_app = typer.Typer(help="Conversation transcripts: export and retention purge.", no_args_is_help=True)
app.add_typer(transcripts_app, name="transcripts")


def _database() -> Database:
    return Database.from_url(Settings().database_url.get_secret_value())


@app.command()
def run(
    platform: str = typer.Option(None, help="local, slack or discord; default: every platform with tokens "
                                            "(all from one process), else the local playground."),
    http: bool = typer.Option(False, help="Slack only: serve HTTP events instead of Socket Mode."),
) -> None:
    """Start the bot on every configured platform (the local playground when no platform tokens are set)."""
    settings = Settings()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(settings.log_format)  # text, or JSON lines with the event and conversation ids
    try:
        _run(settings, platform, http)
    finally:  # an in-process caller (the tests' CliRunner) gets its logging back as it was
        root.removeHandler(handler)
        root.setLevel(level)


def _run(settings: Settings, platform: str | None, http: bool) -> None:
    names = [platform] if platform else choose_platforms(settings)
    for name in names:
        if name not in adapter_names():
            raise typer.BadParameter(f"unknown platform {name!r}; choose from {', '.join(adapter_names())}")
    settings_for(settings, names)  # refuse before anything starts when the staff platform is unclear
    # Every platform starts the same way: the schema is brought up to date first (once, under a
    # lock, when several processes share PostgreSQL), so no event is acknowledged into a missing table.
    ensure_schema(settings.database_url.get_secret_value())
    if len(names) == 1:  # one platform: its own entry point (the playground, or `serve` with one name)
        adapter = load_adapter(names[0])
        serving = adapter.run(settings, http=True) if http else adapter.run(settings)
    else:  # several platforms: one process, one runtime (see concierge.serve)
        serving = serve(settings, names, http=http)
    try:
        asyncio.run(_until_signalled(serving))
    except KeyboardInterrupt:
        pass


async def _until_signalled(serving: Coroutine[Any, Any, None]) -> None:
    """Serve; SIGTERM (systemd, containers) stops it like Ctrl-C: its `finally` blocks stop taking
    events, let what was acknowledged finish, record the outcomes, and close."""
    import signal

    task = asyncio.ensure_future(serving)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        logging.getLogger(__name__).info("stopped")


@app.command()
def demo() -> None:
    """Play the scripted concierge story on a throw-away database and print the transcript."""
    importlib.import_module("adapters.local.demo").main()


@app.command()
def doctor() -> None:
    """Check each configured platform's setup (tokens, scopes, channels); exit 1 on a problem."""
    settings = Settings()
    problems: list[str] = []
    checked = []
    for name in adapter_names():
        if importlib.util.find_spec(f"adapters.{name}.cli") is None or not load_adapter(name).is_configured():
            continue
        check = getattr(importlib.import_module(f"adapters.{name}.cli"), "doctor", None)
        if check is not None:
            checked.append(name)
            problems += [f"{name}: {problem}" for problem in check(settings)]
    if len(checked) > 1 and not settings.staff_platform:
        problems.append(f"CONCIERGE_STAFF_PLATFORM is not set: with {' and '.join(checked)} configured, name the "
                        "platform where experts answer (members write from any of them).")
    problems += _inbox_problems(settings)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"all configured platforms look right ({', '.join(checked) or 'none configured'})")


def _inbox_problems(settings: Settings) -> list[str]:
    """Inbound messages the bot gave up on: each needs a person's look."""
    from sqlalchemy.engine import make_url

    from concierge.inbox import failed_items

    url = settings.database_url.get_secret_value()
    path = make_url(url).database if url.startswith("sqlite") else None
    if path is not None and not Path(path).exists():
        return []  # no database yet: nothing has been received
    db = Database.from_url(url)
    try:
        failed = db.run_sync(failed_items)
    except Exception as error:  # no database yet, or not migrated: the platforms' checks still count
        return [f"database: could not be read ({type(error).__name__}); run `concierge db upgrade`"]
    finally:
        db.close()
    return [f"inbox: {platform} {kind} event (inbox item {item_id}) could not be processed: {error}"
            for item_id, platform, kind, error in failed]


@app.command()
def stats(
    since: str = typer.Option("7d", help="How far back: 7d, 12h, 30m."),
    chart: Path = typer.Option(None, help="Also draw the figures into this PNG file."),
) -> None:
    """Desk statistics: conversations, first-response times, targets, ratings, busiest hours."""
    from concierge.durations import parse_duration
    from concierge.stats import collect, draw_chart, render_text

    try:
        start = utc_now() - parse_duration(since)
    except ValueError:
        raise typer.BadParameter("--since looks like 7d, 12h or 30m") from None
    db = _database()
    try:
        figures = db.run_sync(lambda session: collect(session, start))
    finally:
        db.close()
    typer.echo(render_text(figures))
    if chart is not None:
        draw_chart(figures, chart)
        typer.echo(f"chart written to {chart}")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the alembic migrations to the configured database."""
    upgrade(Settings().database_url.get_secret_value(), revision)
    typer.echo("database is up to date")


@audit_app.command("consent")
def audit_consent() -> None:
    """Check every digest delivery against the consent ledger; exit 1 naming any violation."""
    db = _database()
    try:
        problems = db.run_sync(consent_violations)
    finally:
        db.close()
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"{len(problems)} deliveries without consent in force", err=True)
        raise typer.Exit(1)
    typer.echo("every digest delivery was backed by a consent in force")


@member_app.command("export")
def member_export(member_id: int, zip_path: Path = typer.Option(
        None, "--zip", help="Write a zip with member.json and the member's files instead of printing the JSON.")
) -> None:
    """Print everything stored about a member as JSON (consent ledger included); `--zip`: with their files."""
    db = _database()
    try:
        data = db.run_sync(lambda session: export_member(session, member_id))
    except Refused as problem:
        typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()
    if zip_path is None:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    missing = write_member_zip(data, FileStore.from_settings(Settings()), zip_path)
    typer.echo(f"member {member_id} exported to {zip_path} ({len(data['files'])} files"
               + (f", {missing} no longer in the file store)" if missing else ")"), err=True)


@member_app.command("erase")
def member_erase(member_id: int, yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Erase a member's personal data and message texts; counts and consent changes are kept."""
    if not yes:
        typer.confirm(f"Erase member {member_id}'s personal data and messages for good?", abort=True)
    settings = Settings()
    db = Database.from_url(settings.database_url.get_secret_value())
    try:
        counts = db.run_sync(lambda session: erase_member(
            session, member_id, actor="cli", policy_version=settings.consent_policy_version, now=utc_now(),
            store=FileStore.from_settings(settings)))
    except Refused as problem:
        typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()
    typer.echo(f"member {member_id} erased: {counts['messages']} message texts, {counts['identities']} identities")


@transcripts_app.command("export")
def transcripts_export(
    since: str = typer.Option(None, help="Conversations active since a date (YYYY-MM-DD, UTC) or a duration back "
                                         "from now (7d, 12h, 2w)."),
    member: int = typer.Option(None, "--member", help="Only this member's conversations (member id)."),
    format: str = typer.Option("jsonl", "--format", help="jsonl, csv or html."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Export every message of the conversations (notes and events included), one record per message."""
    if format not in FORMATS:
        raise typer.BadParameter(f"choose from {', '.join(FORMATS)}", param_hint="--format")
    try:
        start = parse_since(since, utc_now()) if since else None
    except ValueError as problem:
        raise typer.BadParameter(str(problem), param_hint="--since") from None
    store = FileStore.from_settings(Settings())  # HTML links the files kept there
    db = _database()
    try:
        if output is None:
            count = db.run_sync(lambda session: export(session, sys.stdout, format, since=start, member_id=member,
                                                       store=store))
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = db.run_sync(lambda session: export(session, out, format, since=start, member_id=member,
                                                           store=store))
    finally:
        db.close()
    sys.stdout.flush()
    typer.echo(f"{count} messages exported" + (f" to {output}" if output else ""), err=True)


@transcripts_app.command("purge")
def transcripts_purge(
    days: int = typer.Option(None, "--days", min=1, help="Override CONCIERGE_RETENTION_DAYS for this run."),
) -> None:
    """Erase the texts of conversations idle for longer than the retention; rows, authors and times stay."""
    settings = Settings()
    keep = days or settings.retention_days
    if keep is None:
        typer.echo("No retention is set, so nothing was purged. Set CONCIERGE_RETENTION_DAYS "
                   "or pass --days N.", err=True)
        raise typer.Exit(1)
    now = utc_now()
    db = Database.from_url(settings.database_url.get_secret_value())
    try:
        purged = db.run_sync(lambda session: purge_older_than(session, now - timedelta(days=keep), actor="cli", now=now,
                                                              store=FileStore.from_settings(settings)))
    finally:
        db.close()
    typer.echo(f"{purged} messages purged from conversations idle for more than {keep} days")


def _mount_adapter_commands() -> None:
    """An adapter may bring its own sub-commands in `adapters/<name>/cli.py` (a typer app `cli`)."""
    for name in adapter_names():
        if importlib.util.find_spec(f"adapters.{name}.cli") is not None:
            module = importlib.import_module(f"adapters.{name}.cli")
            app.add_typer(module.cli, name=name)


_mount_adapter_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
