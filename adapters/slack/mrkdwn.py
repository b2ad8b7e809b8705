"""Slack's message markup in and out: decode what people typed to plain text, escape what we post.

Slack encodes mentions and links as `<...>` and escapes `&`, `<`, `>` in what people type. We
turn inbound text into plain text (`<!channel>` becomes the words "@channel"), and escape all
outbound text, so nothing a member or an expert wrote can ping a channel, a group or a person
on the other side. Posts also go out with `parse="none"` and `link_names=False`.
"""

from __future__ import annotations

import re
import shlex

_ENTITY = re.compile(r"<([^<>]*)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^<>]*)?>")
_CURLY_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"'})


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
    text = to_plain(text).translate(_CURLY_QUOTES)
    try:
        tokens = shlex.split(text)
    except ValueError:
        tokens = text.split()
    # Some keyboards turn "--hour" into "—hour" (em dash) or "–hour" (en dash).
    return tuple("--" + token[1:] if token[:1] in ("\u2014", "\u2013") and len(token) > 1 else token
                 for token in tokens)
