"""Log lines: text (default) or one JSON object per line (CONCIERGE_LOG_FORMAT=json), never with a secret.

The ids of what is being handled ride along in context variables: the inbound event's id while
the core handles it, the conversation's once known, the outbox item's while it is sent. Both
formats read them; JSON puts them in fields (`event_id`, `conversation_id`, `outbox_item`).

Our own ~30-line formatter rather than python-json-logger: the fields are few and fixed, and the
secret masking must run on the final line whatever the format.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, TextIO

EVENT_ID: ContextVar[str | None] = ContextVar("concierge_event_id", default=None)
CONVERSATION_ID: ContextVar[int | None] = ContextVar("concierge_conversation_id", default=None)
OUTBOX_ITEM: ContextVar[int | None] = ContextVar("concierge_outbox_item", default=None)
FIELDS: dict[str, ContextVar[Any]] = {"event_id": EVENT_ID, "conversation_id": CONVERSATION_ID,
                                      "outbox_item": OUTBOX_ITEM}
HANDLER_NAME = "concierge"  # our root handler: replaced, not doubled, when configured again
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Environment variables whose values are secrets (tokens, signing secrets, passwords, keys).
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|_KEY)$", re.IGNORECASE)
MASK = "[secret]"


@contextlib.contextmanager
def handling(event_id: str | None = None, *, conversation_id: int | None = None,
             outbox_item: int | None = None) -> Iterator[None]:
    """Within the block, log lines carry these ids (those given)."""
    given: tuple[tuple[ContextVar[Any], object], ...] = (
        (EVENT_ID, event_id), (CONVERSATION_ID, conversation_id), (OUTBOX_ITEM, outbox_item))
    tokens = [(var, var.set(value)) for var, value in given if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def in_conversation(conversation_id: int | None) -> None:
    """The conversation is known from now on (in this task or thread): its id goes on the log lines."""
    if conversation_id is not None:
        CONVERSATION_ID.set(conversation_id)


class ContextIds(logging.Filter):
    """Puts the context's ids on each record (`record.event_id`, ...; None when not known)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in FIELDS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class Masked(logging.Formatter):
    """A formatter that replaces every secret value in the finished line."""

    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.secrets = sorted({secret for secret in secrets if len(secret) >= 6}, key=len, reverse=True)

    def mask(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, MASK)
        return line

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None) is not None)
        return self.mask(f"{text} [{ids}]" if ids else text)


class JsonLines(Masked):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the known ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update({name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(entry, ensure_ascii=False, default=str))


def secrets_in_environment(environ: dict[str, str] | None = None) -> list[str]:
    """Values never to print: secret-named variables, and the password in CONCIERGE_DATABASE_URL."""
    environ = dict(os.environ if environ is None else environ)
    found = [value.strip() for name, value in environ.items() if SECRET_NAME.search(name) and value.strip()]
    password = re.match(r"^[^:]+://[^:/@]*:([^@]+)@", environ.get("CONCIERGE_DATABASE_URL", ""))
    if password:
        found.append(password.group(1))
    return found


def configure(log_format: str = "text", *, level: int = logging.INFO, secrets: Iterable[str] | None = None,
              stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger's lines to `stream` in `log_format` (text or json), secrets masked."""
    secrets = secrets_in_environment() if secrets is None else secrets
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines(secrets) if log_format == "json" else Masked(secrets, TEXT_FORMAT))
    handler.addFilter(ContextIds())
    root = logging.getLogger()
    for old in [old for old in root.handlers if old.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    handler.set_name(HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per 30 s tick is noise
    return handler
