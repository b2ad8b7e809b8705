"""One stored file into a Slack channel or thread, tried again when that cannot show it twice.

Slack's upload has three steps: files.getUploadURLExternal announces the file, its bytes are
POSTed to the URL it gives, and files.completeUploadExternal shares it in the channel. Only the
last one shows anything. A failure before it is simply tried again with a new upload (the
unshared one is never seen). When the share's outcome is unknown (a 5xx, a timeout, a dropped
connection), Slack is asked with files.info whether the file is in the channel before anything
is tried again: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.web_errors import neutral_errors
from concierge.platform import PlatformDown, RateLimited
from concierge.retry import backoff_s

UPLOAD_ATTEMPTS = 3
UPLOAD_BACKOFF_S = 0.25  # first pause between attempts; doubling, at most UPLOAD_BACKOFF_CAP_S
UPLOAD_BACKOFF_CAP_S = 2.0
BYTES_TIMEOUT_S = 120.0


async def upload_file(client: AsyncWebClient, channel: str, thread: str, name: str, data: bytes) -> None:
    """Share `data` as file `name` in `channel` (in `thread`), trying up to `UPLOAD_ATTEMPTS` times.

    Raises the core's errors (`concierge.platform`) when it finally could not: `Unreachable` at
    once for what retrying cannot fix (the channel is gone), `PlatformDown` or `RateLimited` after
    the last attempt.
    """
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        file_id = ""
        try:
            file_id = await _announce_and_send(client, name, data)
            async with neutral_errors("files.completeUploadExternal"):
                await client.files_completeUploadExternal(files=[{"id": file_id, "title": name}],
                                                          channel_id=channel, thread_ts=thread or None)
            return
        except PlatformDown as error:
            if error.outcome_unknown and file_id and await _shared_in(client, file_id, channel):
                return
            if attempt == UPLOAD_ATTEMPTS:
                raise
            wait = backoff_s(attempt, UPLOAD_BACKOFF_S, UPLOAD_BACKOFF_CAP_S)
        except RateLimited as error:
            if attempt == UPLOAD_ATTEMPTS:
                raise
            wait = max(error.retry_after, backoff_s(attempt, UPLOAD_BACKOFF_S, UPLOAD_BACKOFF_CAP_S))
        await asyncio.sleep(wait)


async def _announce_and_send(client: AsyncWebClient, name: str, data: bytes) -> str:
    """Steps one and two: the new file's id, its bytes uploaded (nothing is shared yet)."""
    async with neutral_errors("files.getUploadURLExternal"):
        announced = await client.files_getUploadURLExternal(filename=name, length=len(data))
    upload_url, file_id = str(announced["upload_url"]), str(announced["file_id"])
    async with neutral_errors("the file upload"), aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=BYTES_TIMEOUT_S)) as session, \
            session.post(upload_url, data=data) as response:
        if response.status != 200:
            raise PlatformDown(f"the file upload answered HTTP {response.status}", outcome_unknown=False)
    return file_id


async def _shared_in(client: AsyncWebClient, file_id: str, channel: str) -> bool:
    """Whether Slack shows file `file_id` shared in `channel` (False when it cannot say)."""
    try:
        async with neutral_errors("files.info"):
            found = await client.files_info(file=file_id)
    except (PlatformDown, RateLimited):
        return False
    file: dict[str, Any] = found.get("file") or {}
    shares: dict[str, Any] = file.get("shares") or {}
    in_shares = any(channel in (shares.get(kind) or {}) for kind in ("public", "private"))
    listed = any(channel in (file.get(kind) or []) for kind in ("channels", "groups", "ims"))
    return in_shares or listed
