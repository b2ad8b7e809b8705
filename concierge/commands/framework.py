"""The command framework: names, typed parameters, who may run them, help; parsing and dispatch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from concierge.durations import MAX_ID, whole_number
from concierge.errors import Refused
from concierge.outbox.queue import forget_queued
from concierge.people import Context, Role
from concierge.platform import Address
from concierge.replies import Reply

PREFIX = "/concierge"
ROLE_NAMES = {Role.GUEST: "everyone", Role.MEMBER: "members", Role.EXPERT: "experts", Role.ADMIN: "admins"}


@dataclass(frozen=True)
class Param:
    """One parameter of a command.

    kind: "word" (one token), "user" (a platform user; "platform:id" names another platform),
    "int", "list" (comma-separated words), "text" (the rest of the line), "flag" (an option
    without a value, `--name`: True when given, else False).
    """

    name: str
    kind: str = "word"
    optional: bool = False
    help: str = ""
    option: bool = False  # given as `--name value`, anywhere on the line; always optional

    def __post_init__(self) -> None:
        if self.kind == "flag" and not self.option:
            raise ValueError(f"the flag {self.name!r} is an option: Param({self.name!r}, 'flag', option=True)")

    def placeholder(self) -> str:
        if self.kind == "flag":
            return f"[--{self.name}]"
        if self.option:
            return f"[--{self.name} <{self.name}>]"
        return f"[{self.name}]" if self.optional else f"<{self.name}>"


@dataclass
class Invocation:
    """Who runs a command, where, and with what role."""

    ctx: Context
    address: Address
    role: Role
    actor: str
    event_id: str
    via: str = "command"  # or "button", "form"
    names: dict[str, str] = field(default_factory=dict)  # user id -> display name, as the platform shows it


Handler = Callable[[Session, Invocation, dict[str, Any]], "str | Reply"]


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    params: tuple[Param, ...]
    role: Role
    help: str
    handler: Handler

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def usage(self) -> str:
        return " ".join([PREFIX, self.name, *(param.placeholder() for param in self.params)])


class UsageError(Exception):
    """Arguments that do not fit the command's parameters."""


def _flag(name: str, value: str) -> bool:
    """`--name=true` / `--name=false` (as a platform's yes/no option may spell a flag)."""
    if value.lower() in ("true", "yes", "on", "1"):
        return True
    if value.lower() in ("false", "no", "off", "0"):
        return False
    raise UsageError(f"--{name} takes no value")


class CommandRegistry:
    """All commands, looked up by their word path (`member add`)."""

    def __init__(self, commands: list[Command]) -> None:
        self.commands = {command.path: command for command in commands}

    def __iter__(self) -> Iterator[Command]:
        return iter(self.commands.values())

    def find(self, tokens: tuple[str, ...]) -> tuple[Command | None, tuple[str, ...]]:
        """The command with the longest path that prefixes `tokens`, and the remaining tokens."""
        for length in range(min(len(tokens), 3), 0, -1):
            command = self.commands.get(tuple(token.lower() for token in tokens[:length]))
            if command is not None:
                return command, tokens[length:]
        return None, tokens

    def visible_to(self, role: Role) -> list[Command]:
        return [command for command in self.commands.values() if command.role <= role]

    def group_of(self, word: str) -> list[Command]:
        return [command for command in self.commands.values() if command.path[0] == word.lower()]

    @staticmethod
    def parse(command: Command, tokens: tuple[str, ...]) -> dict[str, Any]:
        """Match tokens to parameters; raises UsageError naming the problem."""
        values: dict[str, Any] = {}
        options = {param.name: param for param in command.params if param.option}
        remaining: list[str] = []
        tokens_left = list(tokens)
        while tokens_left:
            token = tokens_left.pop(0)
            if not (token.startswith("--") and len(token) > 2):
                remaining.append(token)
                continue
            name, sep, value = token[2:].partition("=")
            if name not in options:
                known = ", ".join(f"--{option}" for option in options) or "none"
                raise UsageError(f"unknown option --{name} (options: {known})")
            if options[name].kind == "flag":
                values[name] = _flag(name, value) if sep else True
                continue
            if not sep:
                if not tokens_left:
                    raise UsageError(f"--{name} needs a value")
                value = tokens_left.pop(0)
            values[name] = _number(options[name], value) if options[name].kind == "int" else value
        for name, param in options.items():
            values.setdefault(name, False if param.kind == "flag" else None)
        for param in command.params:
            if param.option:
                continue
            if not remaining:
                if not param.optional:
                    raise UsageError(f"missing <{param.name}>")
                values[param.name] = None
                continue
            if param.kind == "text":
                values[param.name] = " ".join(remaining)
                remaining = []
                continue
            token = remaining.pop(0)
            if param.kind == "int":
                values[param.name] = _number(param, token)
            elif param.kind == "list":
                items = [item.strip().lower() for item in token.split(",") if item.strip()]
                if not items:
                    raise UsageError(f"<{param.name}> needs at least one value")
                values[param.name] = items
            else:
                values[param.name] = token
        if remaining:
            raise UsageError(f"unexpected {' '.join(remaining)!r}")
        return values

    def execute(self, session: Session, invocation: Invocation, tokens: tuple[str, ...]) -> Reply:
        """Run the command named by `tokens`; every problem becomes a polite reply."""
        if not tokens:
            tokens = ("help",)
        command, rest = self.find(tokens)
        if command is None:
            return Reply(self._unknown(tokens, invocation.role), ok=False)
        if invocation.role < command.role:
            return Reply(
                f"Sorry, `{command.name}` is for {ROLE_NAMES[command.role]} only. Nothing was changed.",
                ok=False,
            )
        try:
            values = self.parse(command, rest)
        except UsageError as problem:
            text = str(problem)
            return Reply(f"{text[:1].upper()}{text[1:]}. Usage: `{command.usage()}`", ok=False)
        try:
            answer = command.handler(session, invocation, values)
            return answer if isinstance(answer, Reply) else Reply(answer)
        except Refused as refusal:
            session.rollback()
            forget_queued(session)
            return Reply(str(refusal), ok=False)

    def _unknown(self, tokens: tuple[str, ...], role: Role) -> str:
        group = [command for command in self.group_of(tokens[0]) if command.role <= role]
        if group:
            usages = ", ".join(f"`{command.usage()}`" for command in group)
            return f"Unknown command `{' '.join(tokens[:2])}`. Did you mean: {usages}"
        names = ", ".join(command.name for command in self.visible_to(role))
        return f"Unknown command `{tokens[0]}`. Commands you can use: {names}. Try `{PREFIX} help`."

    def help_text(self, role: Role, topic: str | None = None) -> str:
        commands = self.visible_to(role)
        if topic:
            commands = [command for command in commands if command.name.startswith(topic.lower())]
            if not commands:
                return f"No command `{topic}`. Try `{PREFIX} help`."
        lines = [f"`{command.usage()}`: {command.help}" for command in commands]
        return "\n".join(lines)


def _number(param: Param, token: str) -> int:
    number = whole_number(token, 1, MAX_ID)
    if number is None:
        raise UsageError(f"<{param.name}> must be a number from 1 to {MAX_ID}, not {token[:40]!r}")
    return number
