"""The `concierge` command line (typer): run, demo, db upgrade, and each adapter's own commands."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging

import typer

from concierge.bootstrap import adapter_names, choose_platform, load_adapter
from concierge.clock import utc_now
from concierge.database import Database, upgrade
from concierge.digests.audit import consent_violations
from concierge.errors import Refused
from concierge.member_data import erase_member, export_member
from concierge.settings import Settings

app = typer.Typer(help="concierge: a loyalty concierge on Slack, Discord and a local playground.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
audit_app = typer.Typer(help="Checks of what the bot did.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
member_app = typer.Typer(help="A member's data: export and erasure.", no_args_is_help=True)
app.add_typer(member_app, name="member")


def _database() -> Database:
    return Database.from_url(Settings().database_url.get_secret_value())


@app.command()
def run(
    platform: str = typer.Option(None, help="local, slack or discord; default: from settings and tokens."),
    http: bool = typer.Option(False, help="Slack only: serve HTTP events instead of Socket Mode."),
) -> None:
    """Start the bot (the local playground when no platform tokens are set)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per 30 s tick is noise
    settings = Settings()
    name = platform or choose_platform(settings)
    if name not in adapter_names():
        raise typer.BadParameter(f"unknown platform {name!r}; choose from {', '.join(adapter_names())}")
    adapter = load_adapter(name)
    if http:
        asyncio.run(adapter.run(settings, http=True))
    else:
        asyncio.run(adapter.run(settings))


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
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"all configured platforms look right ({', '.join(checked) or 'none configured'})")


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
def member_export(member_id: int) -> None:
    """Print everything stored about a member as JSON (consent ledger included)."""
    db = _database()
    try:
        data = db.run_sync(lambda session: export_member(session, member_id))
    except Refused as problem:
        typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()
    typer.echo(json.dumps(data, indent=2, default=str))


@member_app.command("erase")
def member_erase(member_id: int, yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Erase a member's personal data and message texts; counts and consent changes are kept."""
    if not yes:
        typer.confirm(f"Erase member {member_id}'s personal data and messages for good?", abort=True)
    settings = Settings()
    db = Database.from_url(settings.database_url.get_secret_value())
    try:
        counts = db.run_sync(lambda session: erase_member(
            session, member_id, actor="cli", policy_version=settings.consent_policy_version, now=utc_now()))
    except Refused as problem:
        typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()
    typer.echo(f"member {member_id} erased: {counts['messages']} message texts, {counts['identities']} identities")


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
