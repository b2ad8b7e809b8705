"""The Discord world of a test: the fake REST API, the bot under test, and gateway events.

Events reach the bot the way the websocket hands them over: through the connection state's
parsers (`MESSAGE_CREATE`, `INTERACTION_CREATE`, ...), so discord.py builds its own models and
runs our listeners, command tree and dynamic buttons for real.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from typing import Any

import discord
from discord import app_commands

from adapters.discord.bot import ConciergeBot, create_bot
from adapters.discord.settings import DiscordSettings
from adapters.discord.slash import ROOT, build_group
from concierge.commands import CommandRegistry
from concierge.commands.registry import REGISTRY
from concierge.settings import Settings
from tests.discord.fake_discord import EVERYTHING, FakeDiscord, member_payload

BOT_TASKS = ("discord.py: ", "CommandTree-invoker", "discord-ui-")
OPTION_TYPES = {
    discord.AppCommandOptionType.user: 6,
    discord.AppCommandOptionType.integer: 4,
    discord.AppCommandOptionType.string: 3,
    discord.AppCommandOptionType.boolean: 5,
}


def split_options(words: list[str]) -> tuple[list[str], dict[str, str]]:
    """`close --message "Glad to help"` as the client's form has it: positional words and named options.

    An option's value is the words up to the next `--name` (a flag with no words is "true").
    """
    positional: list[str] = []
    named: dict[str, str] = {}
    current: str | None = None
    for word in words:
        if word.startswith("--") and len(word) > 2:
            current = word[2:]
            named[current] = ""
        elif current is None:
            positional.append(word)
        else:
            named[current] = f"{named[current]} {word}".strip()
    return positional, {name: value or "true" for name, value in named.items()}


async def _not_invoked(interaction, tokens, names=()) -> None:  # noqa: ANN001
    raise AssertionError("this group only describes the commands")


async def quiesce(timeout: float = 10.0) -> None:
    """Wait until the tasks discord.py started for events (listeners, commands, buttons) are done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet_rounds = 0
    while quiet_rounds < 3:
        await asyncio.sleep(0)
        pending = [task for task in asyncio.all_tasks()
                   if not task.done() and task.get_name().startswith(BOT_TASKS)]
        if not pending:
            quiet_rounds += 1
            continue
        quiet_rounds = 0
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"bot tasks still running: {[task.get_name() for task in pending]}")
        await asyncio.wait(pending, timeout=remaining)


class DiscordWorld:
    """One guild with a staff channel on the fake, and the bot connected to it."""

    def __init__(self, fake: FakeDiscord, settings: Settings, clock, registry: CommandRegistry | None = None,  # noqa: ANN001
                 **discord_overrides: Any) -> None:
        self.fake = fake
        self.registry = registry or REGISTRY
        self.settings = settings
        self.clock = clock
        values = dict(token=fake.token, guild_id=fake.guild_id, dm_open_interval_s=0.0, sync_commands=True)
        values.update(discord_overrides)
        self.discord_settings = DiscordSettings(_env_file=None, **values)
        self.bot: ConciergeBot | None = None
        self._owns_runtime = True
        self.people: dict[str, dict[str, Any]] = {}

    # The bot's life.

    async def start(self, bot: ConciergeBot | None = None) -> ConciergeBot:
        """A new bot process: log in over HTTP, then receive the guild as the gateway sends it.

        `bot`: one wired to a runtime it shares with other platforms (its owner closes that runtime).
        """
        self._owns_runtime = bot is None
        if bot is None:
            bot = create_bot(self.settings, self.discord_settings, clock=self.clock)
            bot.runtime.concierge.registry = self.registry  # the commands the core answers (and the bot renders)
        await bot.login(self.fake.token)
        self.bot = bot
        self.gateway("GUILD_CREATE", self.fake.guild_payload())
        await quiesce()
        return bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.close()
            if self._owns_runtime:
                self.bot.runtime.close()
            self.bot = None

    async def restart(self) -> ConciergeBot:
        await self.stop()
        return await self.start()

    async def ready(self) -> None:
        """A gateway session begins (as after a start, or a reconnect that could not resume): READY,
        the guild, `on_ready`; waits for the catch-up it starts, then settles."""
        await self.caught_up(self.connect())

    def connect(self, guild_ready_timeout: float = 0.01) -> Any:
        """READY and the guild, as the gateway sends them; `on_ready` follows after `guild_ready_timeout`
        (discord.py waits that long for more guilds). Returns what `caught_up` waits on."""
        bot = self.bot
        bot._connection.guild_ready_timeout = guild_ready_timeout
        before = bot.catch_up_task
        self.gateway("READY", {
            "v": 10, "user": self.fake.bot, "session_id": "fake-session", "resume_gateway_url": "",
            "guilds": [{"id": str(self.fake.guild_id), "unavailable": True}], "private_channels": [],
            "application": {"id": str(self.fake.application_id), "flags": self.fake.application_flags}})
        self.gateway("GUILD_CREATE", self.fake.guild_payload())
        return before

    async def caught_up(self, before: Any = None, timeout: float = 10.0) -> None:
        """Wait until a catch-up newer than `before` ran to its end, then settle."""
        bot = self.bot
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while bot.catch_up_task is None or bot.catch_up_task is before or not bot.catch_up_task.done():
            if loop.time() > deadline:
                raise AssertionError("the catch-up did not run to its end")
            await asyncio.sleep(0.01)
        bot.catch_up_task.result()
        await self.settle()

    def gateway(self, event: str, data: dict[str, Any]) -> None:
        """Hand one gateway event to discord.py, as its websocket does."""
        self.bot._connection.parsers[event](data)

    async def settle(self) -> None:
        """Run what the events started, deliver the outbox, feed back Discord's events; until quiet."""
        for _ in range(50):
            await quiesce()
            events = self.fake.take_gateway_events()
            for name, data in events:
                self.gateway(name, data)
            sent = await self.bot.runtime.drain()
            if not events and not sent:
                await quiesce()
                return
        raise AssertionError("the bot never settled")

    # People and what they do.

    def person(self, name: str) -> dict[str, Any]:
        if name not in self.people:
            self.people[name] = self.fake.add_user(name)
        return self.people[name]

    def user_id(self, name: str) -> int:
        return int(self.person(name)["id"])

    def dm_channel(self, name: str) -> int:
        return self.fake.dm_channel_of(self.user_id(name))

    def dm_offline(self, name: str, text: str) -> dict[str, Any]:
        """`name` writes the bot a direct message while it is away: in the DM's history, no gateway event."""
        return self.fake.write(self.fake.message_payload(self.dm_channel(name), self.person(name), text))

    async def dm(self, name: str, text: str, *, message_id: int | None = None,
                 attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """`name` sends the bot a direct message (MESSAGE_CREATE without a guild; kept in the DM's history)."""
        message = self.fake.message_payload(self.dm_channel(name), self.person(name), text,
                                            message_id=message_id, attachments=attachments)
        self.fake.write(message)
        self.gateway("MESSAGE_CREATE", message)
        await quiesce()
        return message

    async def edit_dm(self, message: dict[str, Any], text: str) -> None:
        """The author edits a DM (MESSAGE_UPDATE with an edited timestamp, by the test's clock)."""
        edited = {**message, "content": text, "edited_timestamp": self.fake.now().isoformat()}
        self.fake.write(edited)
        self.gateway("MESSAGE_UPDATE", edited)
        await quiesce()

    def thread_message(self, name: str, thread_id: int, text: str, *,
                       author: dict[str, Any] | None = None) -> dict[str, Any]:
        """What `name` writes in a guild thread, kept in its history (the gateway event is the caller's)."""
        user = author or self.person(name)
        message = self.fake.message_payload(thread_id, user, text)
        message["guild_id"] = str(self.fake.guild_id)
        message["member"] = {key: value for key, value in member_payload(user).items() if key != "user"}
        return self.fake.write(message)

    async def write_in_thread(self, name: str, thread_id: int, text: str, *,
                              author: dict[str, Any] | None = None) -> dict[str, Any]:
        """`name` writes in a guild thread (MESSAGE_CREATE with guild and member)."""
        message = self.thread_message(name, thread_id, text, author=author)
        self.gateway("MESSAGE_CREATE", message)
        await quiesce()
        await self.bot.concierge.told()  # its word to the writer, if any, is said off the event's path
        return message

    def bot_posts_after(self, message: dict[str, Any]) -> list[str]:
        """Texts the bot posted in `message`'s channel after it (e.g. its word to a staff member)."""
        return [posted["content"] for posted in self.fake.posts_in(int(message["channel_id"]))
                if int(posted["id"]) > int(message["id"])]

    def channel_payload(self, thread_id: int | None = None) -> dict[str, Any]:
        if thread_id is not None:
            return self.fake.threads[thread_id].payload
        return self.fake.channels[self.fake.staff_channel_id]

    def interaction(self, name: str, kind: int, data: dict[str, Any], channel: dict[str, Any],
                    message: dict[str, Any] | None = None) -> dict[str, Any]:
        """An INTERACTION_CREATE payload from `name` in `channel`."""
        user = self.person(name)
        interaction_id = self.fake.new_id()
        payload = {
            "id": str(interaction_id), "application_id": str(self.fake.application_id), "type": kind,
            "data": data, "token": f"tok{interaction_id}", "version": 1, "channel_id": channel["id"],
            "channel": channel, "locale": "en-US", "app_permissions": EVERYTHING, "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.fake.guild_id)},
            "context": 0 if channel.get("guild_id") else 1,  # in the server, or the DM with the bot
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel.get("guild_id"):
            payload["guild_id"] = str(self.fake.guild_id)
            payload["guild_locale"] = "en-US"
            payload["member"] = member_payload(user, permissions=EVERYTHING)
        else:
            payload["user"] = user
        if message is not None:
            payload["message"] = message
        return payload

    def command_data(self, words: list[str]) -> dict[str, Any]:
        """What Discord sends for `/concierge <words>` filled in the client's form.

        Words that name no command of the bot's tree go out as a subcommand the bot does not
        know (as for commands synced by an older version); missing options stay missing.
        """
        if self.bot is not None:
            root = self.bot.tree.get_command(ROOT)
        else:  # the bot runs elsewhere (a test of `concierge run`): the same group, built here
            root = build_group(_not_invoked, self.registry)
        node: Any = root
        names: list[str] = []
        while isinstance(node, app_commands.Group) and len(names) < len(words):
            names.append(words[len(names)].lower())
            node = node.get_command(names[-1])
        rest = words[len(names):]
        leaf: list[dict[str, Any]] = []
        resolved: dict[str, dict[str, Any]] = {"users": {}, "members": {}}
        registry_command, _ = self.registry.find(tuple(names))
        if isinstance(node, app_commands.Command) and registry_command is not None:
            rest, named = split_options(rest)
            for param in registry_command.params:
                if param.option:
                    if param.name not in named:
                        continue
                    value = named[param.name]
                elif not rest:
                    continue
                else:
                    value = " ".join(rest) if param.kind == "text" else rest[0]
                    rest = [] if param.kind == "text" else rest[1:]
                option_type = OPTION_TYPES[node.get_parameter(param.name).type]
                if option_type == 6:
                    user_id = re.fullmatch(r"<@!?(\d+)>", value)[1]
                    user = self.fake.users[int(user_id)]
                    resolved["users"][user_id] = user
                    resolved["members"][user_id] = {k: v for k, v in member_payload(user).items() if k != "user"}
                    leaf.append({"type": 6, "name": param.name, "value": user_id})
                elif option_type == 4:
                    leaf.append({"type": 4, "name": param.name, "value": int(value)})
                elif option_type == 5:
                    leaf.append({"type": 5, "name": param.name, "value": value.lower() not in ("false", "no", "0")})
                else:
                    leaf.append({"type": 3, "name": param.name, "value": value})
        options: list[dict[str, Any]] = leaf
        for depth, name in reversed(list(enumerate(names))):
            options = [{"type": 2 if depth < len(names) - 1 else 1, "name": name, "options": options}]
        return {"id": str(self.fake.new_id()), "name": ROOT, "type": 1, "options": options, "resolved": resolved}

    async def slash(self, name: str, text: str, *, thread_id: int | None = None) -> dict[str, Any]:
        """`name` runs `/concierge <text>` in the staff channel or a thread; returns the bot's answer."""
        payload = self.interaction(name, 2, self.command_data(shlex.split(text)), self.channel_payload(thread_id))
        self.gateway("INTERACTION_CREATE", payload)
        answer = await self.fake.answer_to(int(payload["id"]))
        await quiesce()
        return answer

    async def press(self, name: str, message_id: int, custom_id: str) -> dict[str, Any]:
        """`name` presses the button `custom_id` on a message the bot posted."""
        message = self.fake.messages[message_id]
        channel = self.fake.channels[int(message["channel_id"])]
        payload = self.interaction(name, 3, {"custom_id": custom_id, "component_type": 2}, channel, message)
        self.gateway("INTERACTION_CREATE", payload)
        answer = await self.fake.answer_to(int(payload["id"]))
        await quiesce()
        return answer

    # What the bot sent.

    def card_of(self, thread_id: int) -> dict[str, Any]:
        """The staff card a thread was opened on (it shares the thread's id)."""
        return self.fake.messages[thread_id]

    def thread_texts(self, thread_id: int) -> list[str]:
        return [self.card_of(thread_id)["content"]] + [post["content"] for post in self.fake.posts_in(thread_id)]

    def dms(self, name: str) -> list[str]:
        return [post["content"] for post in self.fake.posts_in(self.dm_channel(name))]


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [component["custom_id"] for row in message.get("components", []) for component in row["components"]]
