"""Slack's message markup in and out: decode what people typed to plain text, escape what we post.

Slack encodes mentions and links as `<...>` and escapes `&`, `<`, `>` in what people type. We
turn inbound text into plain text (`<!channel>` becomes the words "@channel"), and escape all
outbound text, so nothing a member or an expert wrote can ping a channel, a group or a person
on the other side. Posts also go out with `parse="none"` and `link_names=False`.

Formatting: the core keeps text in the markdown Discord (and most chat) uses, `**bold**`,
`*italic*` or `_italic_`, `~~struck~~`; Slack writes `*bold*`, `_italic_`, `~struck~`. What
people type in Slack is translated in (`from_mrkdwn`) and what we post out (`to_mrkdwn`), outside
code spans, so a member on one platform and an expert on the other each see the other's bold as bold.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

_ENTITY = re.compile(r"<([^<>]*)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^<>]*)?>")
_CURLY_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"'})
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)  # code blocks and spans: never reformatted
# Slack's emphasis: the marks hug the words, and no letter or digit touches them outside ("2*3*4" stays).
_SLACK_MARKS = re.compile(r"(?<![\w*])\*(?![\s*])([^*\n]+?)(?<![\s*])\*(?![\w*])"
                          r"|(?<![\w~])~(?![\s~])([^~\n]+?)(?<![\s~])~(?![\w~])")
_MARKDOWN_MARKS = re.compile(r"\*\*(?!\s)([^\n]+?)(?<!\s)\*\*"
                             r"|(?<![\w*])\*(?![\s*])([^*\n]+?)(?<![\s*])\*(?![\w*])"
                             r"|~~(?!\s)([^\n]+?)(?<!\s)~~")


def _outside_code(text: str, convert: Callable[[str], str]) -> str:
    parts = _CODE.split(text)
    return "".join(part if index % 2 else convert(part) for index, part in enumerate(parts))


def from_mrkdwn(text: str) -> str:
    """Slack's `*bold*` and `~struck~` as the core's `**bold**` and `~~struck~~` (`_italic_` is the same)."""

    def mark(match: re.Match[str]) -> str:
        return f"**{match[1]}**" if match[1] is not None else f"~~{match[2]}~~"

    return _outside_code(text, lambda part: _SLACK_MARKS.sub(mark, part))


def to_mrkdwn(text: str) -> str:
    """The core's `**bold**`, `*italic*` and `~~struck~~` as Slack writes them: `*bold*`, `_italic_`, `~struck~`."""

    def mark(match: re.Match[str]) -> str:
        if match[1] is not None:
            return f"*{match[1]}*"
        if match[2] is not None:
            return f"_{match[2]}_"
        return f"~{match[3]}~"

    return _outside_code(text, lambda part: _MARKDOWN_MARKS.sub(mark, part))


def escape(text: str) -> str:
    """Escape text for any Slack text field that is parsed (message text, mrkdwn blocks).

    Slack's rule: replace `&`, `<` and `>` with their HTML entities, and nothing else. After that,
    the text contains no `<...>` control sequence, so no mention, channel ping or link survives.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """The reverse of `escape` (only Slack's three entities; `&amp;` last)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _readable(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.startswith("@"):  # a person: <@U123> or <@U123|bob>
        return "@" + (label or target[1:])
    if target.startswith("#"):  # a channel: <#C123|general>
        return "#" + (label or target[1:])
    if target.startswith("!subteam^"):  # a user group: <!subteam^S123|@nutrition-team>
        return label or "@" + target[len("!subteam^"):]
    if target.startswith("!date^"):  # a formatted date: its fallback text is the label
        return label or target
    if target.startswith("!"):  # <!channel>, <!here>, <!everyone>, <!here|here>
        name = label or target[1:]
        return name if name.startswith("@") else "@" + name
    if target.startswith("mailto:"):
        target = target[len("mailto:"):]
    if label and label != target:
        return f"{label} ({target})"
    return target


def to_plain(text: str) -> str:
    """What a person typed in Slack, as plain text: mentions and links become inert words."""
    return unescape(_ENTITY.sub(_readable, text or ""))


def command_tokens(text: str) -> tuple[str, ...]:
    """Split `/concierge` command text into the registry's tokens.

    With `should_escape` on (see the manifest), Slack sends a picked user as `<@U123|name>`:
    that becomes `U123`, the id the core stores. Quotes group words (`"Ann Lee"`); text with an
    unbalanced quote (an apostrophe in a reason) is split on spaces instead. Options are
    `--name value`; a dash a keyboard made typographic is read as `--`.
    """
    text = _USER.sub(lambda m: m.group(1), text or "")
    text = _CHANNEL.sub(lambda m: m.group(1), text)
    text = from_mrkdwn(to_plain(text)).translate(_CURLY_QUOTES)
    try:
        tokens = shlex.split(text)
    except ValueError:
        tokens = text.split()
    # Some keyboards turn "--hour" into "—hour" (em dash) or "–hour" (en dash).
    return tuple("--" + token[1:] if token[:1] in ("\u2014", "\u2013") and len(token) > 1 else token
                 for token in tokens)
