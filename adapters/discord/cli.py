"""`concierge discord ...`: the invite link, the health check (doctor), and syncing the slash commands."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import discord
import typer

from adapters.discord.bot import intents, required_permissions
from adapters.discord.settings import DiscordSettings
from adapters.discord.slash import ConciergeTree, build_group, commands_in_sync
from concierge.settings import Settings

SCOPES = ("bot", "applications.commands")

cli = typer.Typer(help="Discord: invite link, health check, slash commands.", no_args_is_help=True)


def application_id_from_token(token: str) -> int | None:
    """A bot token starts with its bot user's id in base64, which is the application's id."""
    head = token.split(".", 1)[0]
    try:
        decoded = base64.b64decode(head + "=" * (-len(head) % 4), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(decoded) if decoded.isdigit() else None


def invite_url(application_id: int, guild_id: int = 0) -> str:
    """The OAuth2 link that adds the bot with its slash commands and exactly the permissions it uses."""
    return discord.utils.oauth_url(
        application_id,
        permissions=required_permissions(),
        scopes=SCOPES,
        guild=discord.Object(id=guild_id) if guild_id else discord.utils.MISSING,
    )


@cli.command()
def invite(client_id: int = typer.Option(0, help="Application id; default: DISCORD_APPLICATION_ID or the token.")) -> None:
    """Print the link a server admin opens to add the bot."""
    settings = DiscordSettings()
    application_id = client_id or settings.application_id or application_id_from_token(
        settings.token.get_secret_value()
    )
    if not application_id:
        raise typer.BadParameter("set DISCORD_APPLICATION_ID (Developer Portal > General Information) or --client-id")
    typer.echo(invite_url(application_id, settings.guild_id))


@contextlib.asynccontextmanager
async def _logged_in(discord_settings: DiscordSettings) -> AsyncIterator[tuple[discord.Client, ConciergeTree]]:
    """A client logged in over HTTP only (no gateway), with the concierge command tree built."""
    client = discord.Client(intents=intents())
    tree = ConciergeTree(client)

    async def not_run(interaction: discord.Interaction, tokens: tuple[str, ...],
                      names: tuple[tuple[str, str], ...]) -> None:
        raise RuntimeError("this tree only describes the commands")

    tree.add_command(build_group(not_run))
    try:
        await client.login(discord_settings.token.get_secret_value())
        yield client, tree
    finally:
        await client.close()


def _application_id(client: discord.Client) -> int:
    """The application's id: `login` sets it (from the token's application), so None means not logged in."""
    if client.application_id is None:
        raise RuntimeError("not logged in to Discord")
    return client.application_id


async def find_problems(settings: Settings, discord_settings: DiscordSettings) -> list[str]:
    """The problems of the Discord setup, as sentences saying what to do; empty when all is well."""
    if not discord_settings.configured():
        return ["DISCORD_TOKEN is not set (Developer Portal > your application > Bot > Reset Token)."]
    problems: list[str] = []
    if not any(admin.startswith("discord:") for admin in settings.admins):
        problems.append("CONCIERGE_ADMINS has no discord:<user id> entry: nobody can run admin commands from Discord.")
    try:
        async with _logged_in(discord_settings) as (client, tree):
            flags = client.application_flags
            if not (flags.gateway_message_content or flags.gateway_message_content_limited):
                problems.append("The Message Content Intent is off, so expert replies would arrive empty: Developer "
                                "Portal > Bot > Privileged Gateway Intents > Message Content Intent.")
            problems.extend(await _guild_problems(client, tree, settings, discord_settings))
    except discord.LoginFailure:
        problems.append("Discord refused the token: reset it in the Developer Portal and set DISCORD_TOKEN.")
    except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
        problems.append(f"Could not talk to Discord ({type(error).__name__}: {error}).")
    return problems


async def _guild_problems(client: discord.Client, tree: ConciergeTree, settings: Settings,
                          discord_settings: DiscordSettings) -> list[str]:
    if not discord_settings.guild_id:
        return ["DISCORD_GUILD_ID is not set (Developer Mode on, right-click the server > Copy Server ID)."]
    try:
        guild = await client.fetch_guild(discord_settings.guild_id)
    except (discord.Forbidden, discord.NotFound):
        return [f"The bot is not in server {discord_settings.guild_id}: open the link `concierge discord invite` prints."]
    problems = []
    staff = await _staff_channel_problem(client, guild, settings)
    if staff:
        problems.append(staff)
    for specialty, channel in settings.specialty_channels.items():
        if channel != settings.staff_channel:
            own = await _staff_channel_problem(client, guild, settings, channel,
                                               f"CONCIERGE_SPECIALTY_CHANNELS ({specialty})")
            if own:
                problems.append(own)
    if not await commands_in_sync(tree, client.http, _application_id(client)):
        problems.append("The /concierge commands on Discord differ from this version: run `concierge discord sync` "
                        "(starting the bot syncs them too).")
    return problems


async def _staff_channel_problem(client: discord.Client, guild: discord.Guild, settings: Settings,
                                 channel_id: str | None = None, setting: str = "CONCIERGE_STAFF_CHANNEL") -> str | None:
    channel_id = settings.staff_channel if channel_id is None else channel_id
    if not channel_id.isdigit():
        return (f"{setting} is {channel_id!r}; it must be the channel's id "
                "(right-click the channel > Copy Channel ID).")
    channels = await guild.fetch_channels()
    channel = discord.utils.get(channels, id=int(channel_id))
    if channel is None:
        return f"Channel {channel_id} is not in server {guild.name!r}, or the bot cannot see it."
    if not isinstance(channel, discord.TextChannel):
        return f"#{channel.name} is not a text channel; conversation threads need one."
    if client.user is None:
        raise RuntimeError("not logged in to Discord")  # `login` sets the bot's user
    member = await guild.fetch_member(client.user.id)
    granted = channel.permissions_for(member)
    missing = [name for name, wanted in required_permissions() if wanted and not getattr(granted, name)]
    if missing:
        return f"In #{channel.name} the bot lacks {', '.join(missing)}: grant them to its role or the channel."
    return None


def doctor(settings: Settings) -> list[str]:
    """The Discord part of `concierge doctor`: problems as sentences saying what to do; empty when all is well."""
    return asyncio.run(find_problems(settings, DiscordSettings()))


@cli.command("doctor")
def doctor_command() -> None:
    """Check the token, the intents, the server, the staff channel, the admins and the slash commands."""
    problems = doctor(Settings())
    for problem in problems:
        typer.echo(f"discord: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo("discord: token, intents, server, staff channel and commands look right.")


async def sync_commands(discord_settings: DiscordSettings) -> bool:
    """Push /concierge to Discord when its copy differs; True when it synced."""
    async with _logged_in(discord_settings) as (client, tree):
        if await commands_in_sync(tree, client.http, _application_id(client)):
            return False
        await tree.sync()
        return True


@cli.command("sync")
def sync_command() -> None:
    """Register the /concierge slash commands with Discord now."""
    discord_settings = DiscordSettings()
    if not discord_settings.configured():
        raise typer.BadParameter("set DISCORD_TOKEN first")
    synced = asyncio.run(sync_commands(discord_settings))
    typer.echo("/concierge commands synced" if synced else "/concierge commands were already up to date")
