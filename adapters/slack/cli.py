"""`concierge slack ...`: print the app manifest, check the Slack setup (`doctor`)."""

from __future__ import annotations

import asyncio

import typer
from slack_sdk.errors import SlackApiError

from adapters.slack.manifest import APP_TOKEN_METHODS, EVENTS_PATH, bot_scopes, manifest_yaml
from adapters.slack.settings import SlackSettings, looks_like_channel_id
from concierge.settings import Settings

cli = typer.Typer(help="Slack: the app manifest and a check of the Slack setup.", no_args_is_help=True)


@cli.command()
def manifest(
    request_url: str | None = typer.Option(
        None, "--request-url",
        help=f"HTTP mode: the public URL of {EVENTS_PATH} (e.g. https://bot.example.com{EVENTS_PATH}); "
             "without it the manifest uses Socket Mode.",
    ),
    name: str = typer.Option("Concierge", help="The app's and the bot user's display name."),
) -> None:
    """Print the app manifest (YAML) to paste at api.slack.com/apps > Create New App > From a manifest."""
    typer.echo(manifest_yaml(name, request_url), nl=False)


@cli.command("doctor")
def doctor_command() -> None:
    """Check the Slack tokens, scopes, staff channel and admins; exit 1 when something is wrong."""
    problems = doctor(Settings())
    for problem in problems:
        typer.echo(f"slack: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo("slack: tokens, scopes and staff channel look right.")


def _code(error: SlackApiError) -> str:
    """Slack's error code of a failed call (or its HTTP status when the answer was not JSON)."""
    data = getattr(error.response, "data", None)
    return str(data.get("error")) if isinstance(data, dict) else f"HTTP {error.response.status_code}"


def doctor(settings: Settings) -> list[str]:
    """The problems of the Slack setup, as sentences saying what to do; empty when all is well."""
    return asyncio.run(find_problems(settings, SlackSettings()))


async def find_problems(settings: Settings, slack: SlackSettings) -> list[str]:
    """What `doctor` checks, callable from running async code (and tests)."""
    import aiohttp
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    problems: list[str] = []
    if not slack.bot_token:
        return ["SLACK_BOT_TOKEN is not set: install the app to the workspace and copy the Bot User OAuth Token "
                "(xoxb-...)."]
    bot_token = slack.secret("bot_token")
    if not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN does not start with xoxb-: use the Bot User OAuth Token, not a user token.")
    if not slack.app_token and not slack.signing_secret:
        problems.append("Neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) is set.")
    if slack.app_token and not slack.secret("app_token").startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN does not start with xapp-: create an App-Level Token with connections:write.")
    if not any(admin.startswith("slack:") for admin in settings.admins):
        problems.append("CONCIERGE_ADMINS has no slack:U... entry: nobody can run admin commands from Slack.")

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        client = AsyncWebClient(token=bot_token, base_url=slack.api_url, session=session)
        try:
            identity = await client.auth_test()
        except SlackApiError as error:
            problems.append(f"auth.test refused the bot token ({_code(error)}): check SLACK_BOT_TOKEN.")
            return problems
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            problems.append(f"Slack is unreachable at {slack.api_url} ({type(error).__name__}).")
            return problems

        granted = {scope.strip() for scope in (identity.headers.get("x-oauth-scopes") or "").split(",") if scope.strip()}
        missing = [scope for scope in bot_scopes() if scope not in granted]
        if missing:
            problems.append(f"The bot token lacks the scopes {', '.join(missing)}: update the app from "
                            "`concierge slack manifest` and reinstall it to the workspace.")

        staff_channels: dict[str, str] = {settings.staff_channel: "CONCIERGE_STAFF_CHANNEL"}
        for specialty, channel in settings.specialty_channels.items():  # each specialty's own channel too
            staff_channels.setdefault(channel, f"CONCIERGE_SPECIALTY_CHANNELS ({specialty})")
        for channel, setting in staff_channels.items():
            if settings.staff_platform not in ("", "slack"):
                break  # the staff channels live on another platform; its adapter checks them
            elif not looks_like_channel_id(channel):
                problems.append(f"{setting}={channel!r} is not a channel id: open the channel's details "
                                "in Slack and copy the id at the bottom (C0123ABCD).")
            else:
                try:
                    info = (await client.conversations_info(channel=channel))["channel"]
                except SlackApiError as error:
                    code = _code(error)
                    hint = " (invite the bot to the private channel first)" if code == "channel_not_found" else ""
                    problems.append(f"The staff channel {channel} cannot be read: {code}{hint}.")
                else:
                    if info.get("is_archived"):
                        problems.append(f"The staff channel #{info.get('name', channel)} is archived.")
                    elif not info.get("is_member"):
                        problems.append(f"The bot is not in the staff channel #{info.get('name', channel)}: "
                                        f"type `/invite @{identity.get('user', 'concierge')}` there.")

        if slack.app_token:
            try:
                await client.apps_connections_open(app_token=slack.secret("app_token"))
            except SlackApiError as error:
                scope = APP_TOKEN_METHODS["apps.connections.open"]
                problems.append(f"The app token cannot open a Socket Mode connection ({_code(error)}): "
                                f"enable Socket Mode and give the App-Level Token the {scope} scope.")
    return problems
