"""Discord's and aiohttp's errors, turned into the core's neutral errors (`concierge.platform`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import discord

from concierge.platform import PlatformDown, PlatformError, RateLimited, Unreachable

log = logging.getLogger(__name__)

# Discord JSON error codes that mean the recipient cannot be reached: permanent for this message.
UNREACHABLE = {
    50007: "cannot send messages to this user (DMs closed or no shared server)",
    10003: "the channel no longer exists",
    10013: "the user no longer exists",
    50278: "the bot shares no server with this user",
}
OPENING_DMS_TOO_FAST = 40003
DM_TOO_FAST_BACKOFF_S = 60.0
CLOUDFLARE_BACKOFF_S = 60.0  # a 429 without Discord's body: wait rather than add to the ban count


def neutral_error(error: BaseException) -> PlatformError:
    """The core's error for what discord.py or aiohttp raised."""
    if isinstance(error, discord.RateLimited):
        return RateLimited(error.retry_after, "Discord rate limit")
    if isinstance(error, discord.HTTPException):
        code, status = error.code, error.status
        detail = f"Discord {status} (code {code}): {error.text or 'no detail'}"
        if code in UNREACHABLE:
            return Unreachable(f"{UNREACHABLE[code]} (Discord error {code})")
        if code == OPENING_DMS_TOO_FAST:
            return RateLimited(DM_TOO_FAST_BACKOFF_S, "opening DMs too fast")
        if status == 429:
            retry_after = error.response.headers.get("Retry-After") if error.response is not None else None
            if retry_after is None:
                return RateLimited(CLOUDFLARE_BACKOFF_S, detail)
            try:
                return RateLimited(float(retry_after), detail)
            except (TypeError, ValueError):
                return RateLimited(CLOUDFLARE_BACKOFF_S, detail)
        if status >= 500:
            return PlatformDown(detail)  # Discord may have done it all the same: outcome unknown
        if status in (401, 403):
            # Token revoked or a permission missing in the staff channel: an admin can fix it, so
            # the outbox retries with backoff (bounded), never in a tight loop. Refused: not done.
            log.error("Discord refused a request: %s", detail)
            return PlatformDown(detail, outcome_unknown=False)
        return Unreachable(detail)  # 400/404: this very request can never succeed
    if isinstance(error, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        # No connection was made: the request certainly did not arrive.
        return PlatformDown(f"could not reach Discord: {type(error).__name__}", outcome_unknown=False)
    if isinstance(error, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
        # A timeout or a connection lost mid-request: Discord may have taken it.
        return PlatformDown(f"lost the connection to Discord: {type(error).__name__}")
    raise TypeError(f"not a Discord error: {error!r}")


@contextlib.asynccontextmanager
async def neutral_errors() -> AsyncIterator[None]:
    """Turn discord.py's and aiohttp's errors inside the block into the core's neutral errors."""
    try:
        yield
    except (TimeoutError, discord.RateLimited, discord.HTTPException, aiohttp.ClientError, OSError) as error:
        raise neutral_error(error) from error
