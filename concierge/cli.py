"""The `concierge` command line (typer): run, demo, db upgrade, and each adapter's own commands."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging

import typer

from concierge.bootstrap import adapter_names, choose_platform, load_adapter
from concierge.database import upgrade
from concierge.settings import Settings

app = typer.Typer(help="concierge: a loyalty concierge on Slack, Discord and a local playground.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def run(
    platform: str = typer.Option(None, help="local, slack or discord; default: from settings and tokens."),
    http: bool = typer.Option(False, help="Slack only: serve HTTP events instead of Socket Mode."),
) -> None:
    """Start the bot (the local playground when no platform tokens are set)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the alembic migrations to the configured database."""
    upgrade(Settings().database_url.get_secret_value(), revision)
    typer.echo("database is up to date")


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
