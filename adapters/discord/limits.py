"""Discord's message size limit, the line-boundary split that respects it, and clipping a label to a limit."""

from __future__ import annotations

MAX_CONTENT = 2000  # characters of message content Discord accepts
MAX_FILE_BYTES = 10 * 1024 * 1024  # a bot's upload limit in a server without boosts, and in DMs


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut (titles, labels, field values)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def split_message(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Cut `text` into parts of at most `limit` characters, on line boundaries, in order.

    A single line longer than `limit` is cut at its last space before the limit (or hard, when
    it has none). Blank text gives no parts.
    """
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            head, line = line[:cut], line[cut:].lstrip(" ")
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        if not current:
            current = line
        elif len(current) + 1 + len(line) <= limit:
            current = f"{current}\n{line}"
        else:
            parts.append(current)
            current = line
    if current:
        parts.append(current)
    return [part for part in parts if part.strip()]
