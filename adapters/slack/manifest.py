"""The Slack app manifest, built from the one table of what the adapter calls and listens to.

Each Web API method the adapter calls and each event it subscribes to is listed here with the
bot scope it needs; `concierge slack manifest` prints exactly those, and a test checks the
adapter's source against this table.
"""

from __future__ import annotations

from typing import Any

COMMAND = "/concierge"
EVENTS_PATH = "/slack/events"

# Web API method -> the bot scopes it needs (any one of them, for methods such as
# conversations.info whose scope depends on the channel's kind; the manifest asks for all).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),  # doctor, bolt's authorization on the first request, the catch-up (the bot's user id)
    "chat.postMessage": ("chat:write",),  # DMs to members, staff cards, thread posts
    "chat.update": ("chat:write",),  # Platform.edit
    "chat.postEphemeral": ("chat:write",),  # private answers to staff in a thread
    "conversations.open": ("im:write",),  # Platform.open_dm
    "conversations.info": ("channels:read", "groups:read"),  # doctor: the staff channel (public or private)
    # Catch-up after downtime (DMs, staff threads) and find_sent (did a post whose answer was lost arrive?).
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "conversations.replies": ("channels:history", "groups:history", "im:history"),
    "users.conversations": ("im:read",),  # catch-up: the bot's DM channels (types=im)
    "users.info": ("users:read",),  # people's display names: staff see names, not ids
    "views.publish": (),  # the App Home tab
    "views.open": (),  # a form of the core (the rating comment) as a modal
    "files.getUploadURLExternal": ("files:write",),  # relayed files (adapters.slack.uploads), the stats chart
    "files.completeUploadExternal": ("files:write",),  # ...shared there once uploaded
    "files.info": ("files:read",),  # ...whether a share whose answer was lost arrived
}

# SDK helpers the adapter calls that are no Web API method themselves -> the methods they call.
SDK_HELPERS: dict[str, tuple[str, ...]] = {
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}

# Called with the app-level token (xapp-...), not the bot token: its scope is set when the
# token is created, not in the manifest.
APP_TOKEN_METHODS: dict[str, str] = {"apps.connections.open": "connections:write"}

# Bot event -> the scope it needs (None: no scope).
EVENT_SCOPES: dict[str, str | None] = {
    "message.im": "im:history",  # members' direct messages
    "message.channels": "channels:history",  # staff replies, public staff channel
    "message.groups": "groups:history",  # staff replies, private staff channel
    "app_home_opened": None,  # the App Home tab
    "user_change": "users:read",  # someone renamed themselves: staff see the new name
}

# The event types bolt listeners are registered for -> the subscriptions that deliver them.
LISTENED_EVENTS: dict[str, tuple[str, ...]] = {
    "message": ("message.im", "message.channels", "message.groups"),
    "app_home_opened": ("app_home_opened",),
    "user_change": ("user_change",),
}

COMMAND_SCOPE = "commands"
FILE_DOWNLOAD_SCOPE = "files:read"  # shared files' url_private, fetched with the bot token (adapters.slack.files)


def bot_scopes() -> list[str]:
    """Every bot scope the adapter needs, sorted."""
    scopes = {scope for needed in METHOD_SCOPES.values() for scope in needed}
    scopes.update(scope for scope in EVENT_SCOPES.values() if scope)
    scopes.add(COMMAND_SCOPE)
    scopes.add(FILE_DOWNLOAD_SCOPE)
    return sorted(scopes)


def bot_events() -> list[str]:
    return sorted(EVENT_SCOPES)


def build_manifest(name: str = "Concierge", request_url: str | None = None) -> dict[str, Any]:
    """The app manifest: Socket Mode, or HTTP mode when `request_url` (…/slack/events) is given."""
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": "Ask the concierge: help, digests, subscribe, member, expert, claim, close, reopen",
        "usage_hint": "help",
        # Escaped text carries picked users as <@U123|name>, which the adapter turns into ids.
        "should_escape": True,
    }
    events: dict[str, Any] = {"bot_events": bot_events()}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if request_url:
        command["url"] = request_url
        events["request_url"] = request_url
        interactivity["request_url"] = request_url
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "Members ask in a DM; experts answer in staff-channel threads.",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": bot_scopes()}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": not request_url,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(name: str = "Concierge", request_url: str | None = None) -> str:
    import yaml

    return yaml.safe_dump(build_manifest(name, request_url), sort_keys=False, allow_unicode=True)
