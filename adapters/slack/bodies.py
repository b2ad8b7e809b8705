"""The shapes of the request bodies Slack sends, checked before bolt parses them.

bolt parses a body before anything else and answers a 500 with a traceback when it cannot:
invalid JSON, a JSON array, a `payload=` field that is not JSON, an `event` that is null or a
string. Slack never sends those; someone with the signing secret (or a broken proxy) might.
Such a body gets a 400 and one log line, and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs


def _object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def body_problem(body: bytes, content_type: str) -> str:
    """Why Slack could not have sent this body ("" when its shape is one Slack sends)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if content_type.startswith("application/json"):
        envelope = _object(text)
        if envelope is None:
            return "the body is not a JSON object"
        if "event" in envelope and not isinstance(envelope["event"], dict):
            return "`event` is not an object"
        return ""
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:  # interactivity: buttons, modals
        payload = _object(form["payload"][0])
        if payload is None:
            return "`payload` is not a JSON object"
        for name in ("user", "team", "channel", "container", "message", "view"):
            if name in payload and payload[name] is not None and not isinstance(payload[name], dict):
                return f"`payload.{name}` is not an object"
        if "actions" in payload and not (isinstance(payload["actions"], list)
                                         and all(isinstance(action, dict) for action in payload["actions"])):
            return "`payload.actions` is not a list of objects"
    return ""
