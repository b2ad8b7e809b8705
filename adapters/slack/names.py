"""People's display names on Slack: `users.info`, cached, so staff see names and not ids.

A name is read once and kept for `ttl_s` (an hour); a `user_change` event (someone renamed
themselves) replaces it at once. Messages never wait for the Web API: a member message carries
the cached name, and a missing or stale one is fetched in the background for the next message.
Commands (enrolling `@alice` without a name) wait for it: they are answered after their ack.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.web_errors import neutral_errors
from concierge.platform import PlatformError

log = logging.getLogger(__name__)

TTL_S = 3600.0
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")


def shown_name(user: dict[str, Any]) -> str:
    """What Slack shows of a person: the profile's display name, else the real name, else the handle."""
    profile = user.get("profile") or {}
    for candidate in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return ""


class SlackNames:
    """A cache of display names by user id, filled by `users.info` and `user_change` events."""

    def __init__(self, client: AsyncWebClient, *, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.clock = clock
        self._names: dict[str, tuple[str, float]] = {}
        self._fetching: dict[str, asyncio.Task[str]] = {}

    def remember(self, user: str, name: str) -> None:
        if name:
            self._names[user] = (name, self.clock())

    def cached(self, user: str) -> str:
        """The name known now ("" when none); a missing or stale one is fetched in the background."""
        known = self._names.get(user)
        if known is None or self.clock() - known[1] > self.ttl_s:
            self._fetch(user)
        return known[0] if known else ""

    async def name_of(self, user: str) -> str:
        """The person's name, from the cache or `users.info` ("" when Slack will not say)."""
        known = self._names.get(user)
        if known is not None and self.clock() - known[1] <= self.ttl_s:
            return known[0]
        try:
            return await self._fetch(user)
        except PlatformError as error:
            log.warning("could not read the name of %s: %s", user, error)
            return known[0] if known else ""

    async def names_in(self, text: str) -> tuple[tuple[str, str], ...]:
        """The names of the people a command's text mentions (`<@U123|handle>`)."""
        users = list(dict.fromkeys(MENTION.findall(text or "")))
        names = await asyncio.gather(*(self.name_of(user) for user in users))
        return tuple((user, name) for user, name in zip(users, names, strict=True) if name)

    def _fetch(self, user: str) -> asyncio.Task[str]:
        task = self._fetching.get(user)
        if task is None or task.done():
            task = asyncio.ensure_future(self._users_info(user))
            self._fetching[user] = task
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # errors are logged by callers
        return task

    async def _users_info(self, user: str) -> str:
        try:
            async with neutral_errors("users.info"):
                response = await self.client.users_info(user=user)
        finally:
            self._fetching.pop(user, None)
        name = shown_name(response.get("user") or {})
        self.remember(user, name)
        return name
