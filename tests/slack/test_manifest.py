"""The manifest covers exactly what the adapter's code calls and listens to; `concierge slack manifest`."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from typer.testing import CliRunner

from adapters.slack.manifest import (
    APP_TOKEN_METHODS,
    COMMAND,
    EVENT_SCOPES,
    LISTENED_EVENTS,
    METHOD_SCOPES,
    SDK_HELPERS,
    bot_scopes,
    build_manifest,
)
from concierge.cli import app

SOURCES = sorted((Path(__file__).resolve().parents[2] / "adapters" / "slack").glob("*.py"))


def _is_client(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "client") or (
        isinstance(node, ast.Attribute) and node.attr == "client")


def web_api_methods_called() -> set[str]:
    """`client.chat_postMessage(...)` anywhere in adapters/slack -> "chat.postMessage".

    An SDK helper (`client.files_upload_v2(...)`) counts as the Web API methods it calls.
    """
    found = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_client(node.func.value):
                found.update(SDK_HELPERS.get(node.func.attr, (node.func.attr.replace("_", "."),)))
    return found


def registrations(kind: str) -> list[ast.Call]:
    """Calls such as `self.app.event("message")` (kind "event"), `.command(...)`, `.action(...)`."""
    calls = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == kind
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "app"):
                calls.append(node)
    return calls


def test_every_web_api_method_called_is_in_the_scope_table_and_the_table_has_no_stale_entry():
    called = web_api_methods_called()
    assert "chat.postMessage" in called  # the scan sees the calls
    assert called == set(METHOD_SCOPES) | set(APP_TOKEN_METHODS)


def test_every_event_listened_to_is_subscribed_with_its_scope():
    manifest = build_manifest()
    listened = {call.args[0].value for call in registrations("event")}
    assert listened == set(LISTENED_EVENTS) == {"message", "app_home_opened", "user_change"}
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    for event_type in listened:
        for subscription in LISTENED_EVENTS[event_type]:
            assert subscription in subscribed
            assert EVENT_SCOPES[subscription] is None or EVENT_SCOPES[subscription] in scopes
    assert subscribed == {s for subs in LISTENED_EVENTS.values() for s in subs}


def test_scopes_are_exactly_what_the_code_uses():
    manifest = build_manifest()
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    needed = {scope for method in web_api_methods_called() if method in METHOD_SCOPES
              for scope in METHOD_SCOPES[method]}
    needed |= {EVENT_SCOPES[s] for subs in LISTENED_EVENTS.values() for s in subs if EVENT_SCOPES[s]}
    needed.add("commands")
    needed.add("files:read")  # not a Web API method: shared files' url_private, fetched with the bot token
    assert sorted(needed) == scopes == bot_scopes()


def test_the_slash_command_and_interactivity_are_declared():
    manifest = build_manifest()
    assert [ast.unparse(call.args[0]) for call in registrations("command")] == ["COMMAND"]
    assert [command["command"] for command in manifest["features"]["slash_commands"]] == [COMMAND]
    assert manifest["features"]["slash_commands"][0]["should_escape"] is True  # users arrive as <@U..|name>
    assert registrations("action") and manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True


def test_cli_prints_the_socket_mode_manifest():
    result = CliRunner().invoke(app, ["slack", "manifest"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed == build_manifest()
    assert printed["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in printed["settings"]["event_subscriptions"]


def test_cli_prints_the_http_mode_manifest():
    url = "https://bot.example.com/slack/events"
    result = CliRunner().invoke(app, ["slack", "manifest", "--request-url", url, "--name", "Peak Concierge"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["settings"]["socket_mode_enabled"] is False
    assert printed["settings"]["event_subscriptions"]["request_url"] == url
    assert printed["settings"]["interactivity"]["request_url"] == url
    assert printed["features"]["slash_commands"][0]["url"] == url
    assert printed["features"]["bot_user"]["display_name"] == "Peak Concierge"
