"""The concierge's commands, one module per concern, each declaring its commands beside their handlers.

`framework` defines commands, parameters and the registry's parsing and dispatch; `registry`
assembles the one `REGISTRY` that adapters render natively (import it from there).
"""

from concierge.commands.framework import (
    PREFIX,
    ROLE_NAMES,
    Command,
    CommandRegistry,
    Handler,
    Invocation,
    Param,
    UsageError,
)

__all__ = ["PREFIX", "ROLE_NAMES", "Command", "CommandRegistry", "Handler", "Invocation", "Param", "UsageError"]
