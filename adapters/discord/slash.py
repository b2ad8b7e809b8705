"""The `/concierge` app-command group, built from the core's command registry, and its syncing."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands
from discord.http import HTTPClient

from adapters.discord.interactions import address_of, answer, raw_tokens, send_private
from concierge.commands import Command, CommandRegistry, Param
from concierge.commands.registry import REGISTRY
from concierge.inbound import CommandInvoked

if TYPE_CHECKING:
    from adapters.discord.bot import ConciergeBot  # which adds this cog

log = logging.getLogger(__name__)

ROOT = "concierge"
DESCRIPTION_CHARS = 100
MAX_CHOICES = 25

# Param.kind -> the annotation discord.py turns into an option type.
OPTION_TYPES: dict[str, type] = {"user": discord.User, "int": int, "word": str, "list": str, "text": str,
                                 "flag": bool}
SUGGESTED = {"tier", "specialties"}  # options autocompleted with the values the database knows
# A user typed into a text option: Discord writes a picked `@name` as `<@id>` (`<@!id>` for a nickname).
TYPED_MENTION = re.compile(r"<@!?(\d+)>")

Invoke = Callable[[discord.Interaction, tuple[str, ...], tuple[tuple[str, str], ...]], Awaitable[None]]
Suggest = Callable[[discord.Interaction, str, str], Awaitable[list[str]]]


def _describe(text: str) -> str:
    text = text.strip() or "-"
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"


def tokens_for(command: Command, options: dict[str, Any]) -> tuple[str, ...]:
    """The core's tokens for a command run with typed options (a user becomes their id)."""
    tokens = list(command.path)
    for param in command.params:
        value = options.get(param.name)
        if value is None:
            continue
        if param.kind == "flag":  # a yes/no option: `--name` when yes, nothing when no
            if value:
                tokens.append(f"--{param.name}")
            continue
        if isinstance(value, (discord.User, discord.Member)):
            value = value.id
        elif param.kind == "user" and (typed := TYPED_MENTION.fullmatch(str(value).strip())):
            value = typed[1]  # a mention typed as text; `platform:id` goes on as it is
        tokens.append(f"--{param.name}={value}" if param.option else str(value))
    return tuple(tokens)


def names_in(options: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The display names of the people a command names (a member's server nick, else their global name),
    resolved by Discord with the interaction: an admin who enrols @alice gets "Alice", not her id."""
    return tuple((str(value.id), value.display_name) for value in options.values()
                 if isinstance(value, (discord.User, discord.Member)))


def _app_command(command: Command, invoke: Invoke, suggest: Suggest | None,
                 users_as_text: bool = False) -> app_commands.Command:
    async def callback(interaction: discord.Interaction, **options: object) -> None:
        await invoke(interaction, tokens_for(command, options), names_in(options))

    # discord.py reads the options from the callback's signature: build one from the registry.
    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    annotation=discord.Interaction)]
    for param in command.params:
        kind = "text" if users_as_text and param.kind == "user" else param.kind
        parameters.append(inspect.Parameter(
            param.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=OPTION_TYPES.get(kind, str),
            default=None if param.optional or param.option else inspect.Parameter.empty,
        ))
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = {  # type: ignore[attr-defined]
        param.name: _describe(param.help or _default_help(param)) for param in command.params
    }
    app_command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=command.path[-1], description=_describe(command.help), callback=callback)
    for param in command.params:
        if param.name in SUGGESTED:
            app_command.autocomplete(param.name)(_autocomplete(param, suggest))
    return app_command


def _default_help(param: Param) -> str:
    return {"list": f"{param.name}, comma-separated", "int": f"{param.name} (a number)"}.get(param.kind, param.name)


def _autocomplete(param: Param, suggest: Suggest | None
                  ) -> Callable[[discord.Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]:
    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        if suggest is None:
            return []
        head, _, last = current.rpartition(",") if param.kind == "list" else ("", "", current)
        prefix = f"{head}," if head else ""
        known = await suggest(interaction, param.name, last.strip().lower())
        return [app_commands.Choice(name=f"{prefix}{value}", value=f"{prefix}{value}") for value in known][:MAX_CHOICES]

    return complete


def build_group(invoke: Invoke, registry: CommandRegistry = REGISTRY, suggest: Suggest | None = None,
                users_as_text: bool = False) -> app_commands.Group:
    """`/concierge` with one subcommand per registry command; two-word paths become subgroups.

    A `user` parameter is a user option (Discord's picker, with the person's name), or with
    `users_as_text` a text option, where a person on another platform can be named (`slack:U0123`)
    as well as mentioned: a desk that spans platforms needs that.
    """
    root = app_commands.Group(
        name=ROOT,
        description="Concierge: members, experts, conversations and digests",
        # One global registration, usable in the server and in a member's DM with the bot.
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True),
        allowed_installs=app_commands.AppInstallationType(guild=True),
    )
    subgroups: dict[str, app_commands.Group] = {}
    for command in registry:
        if len(command.path) > 2:
            raise ValueError(f"Discord nests commands two deep at most: {command.name!r} cannot be rendered")
        parent = root
        if len(command.path) == 2:
            word = command.path[0]
            if word not in subgroups:
                subgroups[word] = app_commands.Group(name=word, description=_describe(f"{word} commands"))
                root.add_command(subgroups[word])
            parent = subgroups[word]
        parent.add_command(_app_command(command, invoke, suggest, users_as_text))
    return root


class ConciergeTree(app_commands.CommandTree):
    """A command tree that lets the core answer commands it cannot match itself.

    A stale command (synced by an older version) or one missing options reaches the core's parser
    as plain words, so the person gets the core's own "unknown command" or usage answer.
    """

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch,
                              app_commands.TransformerError)):
            registry = getattr(getattr(interaction.client, "runtime", None), "concierge", None)
            tokens = raw_tokens(interaction.data or {}, ROOT, registry.registry if registry else REGISTRY)
            await answer(interaction, CommandInvoked(str(interaction.id), address_of(interaction), tokens))
            return
        log.error("/%s failed", ROOT, exc_info=error)
        if not interaction.response.is_done():
            await send_private(interaction, "Sorry, that command failed on our side. Nothing was changed.")


def _shape(commands_payload: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What matters of a command payload when comparing ours with Discord's."""

    def option(data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "type": data.get("type", 1),
            "name": data["name"],
            "description": data.get("description", ""),
            "required": bool(data.get("required", False)),
            "autocomplete": bool(data.get("autocomplete", False)),
            "options": [option(child) for child in data.get("options") or []],
        }

    def command(data: Mapping[str, Any]) -> dict[str, Any]:
        return {**option(data), "contexts": sorted(data.get("contexts") or []),
                "integration_types": sorted(data.get("integration_types") or [])}

    return sorted((command(data) for data in commands_payload), key=lambda item: item["name"])


def local_payload(tree: app_commands.CommandTree) -> list[dict[str, Any]]:
    """The global commands this tree defines, as Discord receives them."""
    return [command.to_dict(tree) for command in tree.get_commands()]


async def commands_in_sync(tree: app_commands.CommandTree, http: HTTPClient, application_id: int) -> bool:
    """Whether the application's commands on Discord are the ones this tree defines."""
    remote = await http.get_global_commands(application_id)
    return _shape(remote) == _shape(local_payload(tree))


class SlashCog(commands.Cog):
    """Registers `/concierge` and turns each invocation into `CommandInvoked` for the core."""

    def __init__(self, bot: ConciergeBot) -> None:
        self.bot = bot
        self.group = build_group(self.invoke, bot.concierge.registry, suggest=self.suggest,
                                 users_as_text=bot.users_as_text)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.group, override=True)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(ROOT)

    async def invoke(self, interaction: discord.Interaction, tokens: tuple[str, ...],
                     names: tuple[tuple[str, str], ...] = ()) -> None:
        await answer(interaction, CommandInvoked(str(interaction.id), address_of(interaction), tokens, names))

    async def suggest(self, interaction: discord.Interaction, option: str, prefix: str) -> list[str]:
        return await self.bot.concierge.suggestions(option, prefix)

    async def sync_if_changed(self) -> bool:
        """Push the commands to Discord when its copy differs; True when it synced."""
        if self.bot.application_id is None:
            raise RuntimeError("not logged in to Discord")  # `login` sets the application id
        if await commands_in_sync(self.bot.tree, self.bot.http, self.bot.application_id):
            return False
        await self.bot.tree.sync()
        log.info("synced /%s", ROOT)
        return True
