"""The one registry of the concierge's commands, assembled from the groups that declare them; `help` reads it."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from concierge.commands.desk import DESK_COMMANDS
from concierge.commands.experts import EXPERT_COMMANDS
from concierge.commands.framework import Command, CommandRegistry, Invocation, Param
from concierge.commands.members import MEMBER_COMMANDS
from concierge.commands.snippets import SNIPPET_COMMANDS
from concierge.commands.stats import STATS_COMMANDS
from concierge.digests.commands import DIGEST_COMMANDS
from concierge.people import Role


def _help(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    return REGISTRY.help_text(inv.role, args["command"])


HELP = Command(("help",), (Param("command", "text", optional=True),), Role.GUEST,
               "show the commands you can use", _help)

# The order is the order of `help`: everyone's, the admin's people, the desk, then digests.
REGISTRY = CommandRegistry([HELP, *MEMBER_COMMANDS, *EXPERT_COMMANDS, *DESK_COMMANDS, *STATS_COMMANDS,
                            *SNIPPET_COMMANDS, *DIGEST_COMMANDS])
