"""Files on Slack: shared files downloaded with the bot token into the file store, and stored
files uploaded into a thread or a DM (files.getUploadURLExternal, the upload, files.completeUploadExternal).

A file is fetched from its `url_private_download` (or `url_private`) only, and only when that URL
is on Slack's own file host (`files.slack.com`): a link a member pastes, or a URL on any other host
in an event, is never fetched, and the bot token never leaves for another host.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import message_fields
from adapters.slack.limits import MAX_FILE_BYTES
from adapters.slack.uploads import upload_file
from concierge.files import FilePolicy, FileStore, clean_file_name, guess_mime, human_size, refused, take_in
from concierge.inbound import Attachment, Inbound, MemberMessage, StaffReply
from concierge.platform import Outbound, PlatformDown, RateLimited, Unreachable
from concierge.settings import Settings

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = MAX_FILE_BYTES  # declared by the package (see its __init__)
FILE_HOSTS = ("files.slack.com",)  # where Slack serves url_private(_download)
DOWNLOAD_TIMEOUT_S = 120.0


def attachment_of(item: dict[str, Any]) -> Attachment:
    """A shared file of an event as an attachment to download, or refused when Slack gives no URL for it."""
    def text(key: str) -> str:
        value = item.get(key)
        return value if isinstance(value, str) else ""

    url = text("url_private_download") or text("url_private")
    size = item.get("size")
    name, size = clean_file_name(text("name") or text("title") or "file"), size if isinstance(size, int) else 0
    if not url:  # hidden by the workspace's plan limits, or not a file: said, not dropped
        return refused(name, max(size, 0), guess_mime(name, text("mimetype")), "Slack gave the bot no way to fetch it")
    return Attachment(name=name, url=url, size=max(size, 0), mime=text("mimetype"))


class SlackFiles:
    """Downloads the files of Slack messages into the store, and uploads stored files to Slack."""

    def __init__(self, client: AsyncWebClient, store: FileStore, policy: FilePolicy,
                 hosts: tuple[str, ...] = FILE_HOSTS) -> None:
        self.client = client
        self.store = store
        self.policy = policy
        self.hosts = hosts

    def on_slack_host(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return parts.scheme in ("https", "http") and host in self.hosts and (parts.scheme == "https"
                                                                           or host in ("127.0.0.1", "localhost"))

    async def take_in(self, event: Inbound) -> Inbound:
        """`event` with its shared files downloaded and stored (or refused, saying why)."""
        if not isinstance(event, (MemberMessage, StaffReply)) or not event.attachments:
            return event
        taken = tuple([await self._take(item) for item in event.attachments])
        return dataclasses.replace(event, attachments=taken)

    async def _take(self, item: Attachment) -> Attachment:
        if item.sha256 or item.problem:
            return item
        if not self.on_slack_host(item.url):
            log.warning("not fetching %s: not on Slack's file host", item.name)
            return refused(item.name, item.size, guess_mime(item.name, item.mime), "it is not a file shared on Slack")
        return await take_in(self.store, self.policy, name=item.name, mime=item.mime, size=item.size,
                             download=lambda limit: self._download(item.url, limit))

    async def _download(self, url: str, limit: int) -> bytes:
        """The bytes at `url` with the bot token; stops past `limit` bytes. Redirects are not followed
        (the token must not travel to another host)."""
        headers = {"Authorization": f"Bearer {self.client.token}"}
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url, headers=headers, allow_redirects=False) as response:
            response.raise_for_status()
            if response.status != 200 or "text/html" in response.headers.get("Content-Type", ""):
                # Slack answers a token without files:read with its sign-in page, not the file.
                raise ValueError(f"Slack answered {response.status} {response.headers.get('Content-Type')}")
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > limit:
                    break
            return bytes(data)

    async def upload(self, channel: str, thread: str, message: Outbound) -> None:
        """Upload `message.files` into `channel` (in `thread`); a file that cannot go is said there.

        Runs after the text was posted (which carries the outbox key). Each file is tried again
        where that cannot show it twice (`adapters.slack.uploads`); one that still fails is told in
        the same place, not retried with the message (the text would be posted again).
        """
        failed = []
        for ref in message.files:
            if ref.size > MAX_UPLOAD_BYTES:
                failed.append((ref, f"it is larger than Slack's {human_size(MAX_UPLOAD_BYTES)} limit"))
                continue
            try:
                await upload_file(self.client, channel, thread, ref.name, self.store.read(ref.sha256))
            except FileNotFoundError:
                failed.append((ref, "it is no longer kept"))
            except (PlatformDown, RateLimited, Unreachable) as error:
                log.warning("could not upload %s to Slack: %s", ref.name, error)
                failed.append((ref, "the upload failed"))
        if failed:
            lines = "\n".join(f"- {ref.name} ({human_size(ref.size)}): {why}" for ref, why in failed)
            try:
                await self.client.chat_postMessage(channel=channel, thread_ts=thread or None, parse="none",
                                                   link_names=False, unfurl_links=False,
                                                   **message_fields(Outbound(f"A file could not be passed on:\n{lines}")))
            except (SlackApiError, aiohttp.ClientError, TimeoutError):
                log.warning("could not say that %d files were not uploaded", len(failed))


def file_hosts_for(api_url: str) -> tuple[str, ...]:
    """Slack's file hosts for a Web API at `api_url`: files.slack.com; GovSlack's files.slack-gov.com;
    a loopback API (the tests' fake) serves its files itself."""
    host = (urlsplit(api_url).hostname or "").lower()
    if host in ("", "slack.com"):
        return FILE_HOSTS
    if host in ("127.0.0.1", "localhost"):
        return (host,)
    return (*FILE_HOSTS, f"files.{host}")


def slack_files(client: AsyncWebClient, settings: Settings) -> SlackFiles:
    """The files side of the Slack platform for these core settings (store, size cap, allowed types)."""
    return SlackFiles(client, FileStore.from_settings(settings), FilePolicy.from_settings(settings),
                      file_hosts_for(client.base_url))


async def with_files(files: SlackFiles | None, event: Inbound) -> Inbound:
    """`event` with its files taken in (`SlackFiles.take_in`); as is without a file side."""
    return event if files is None else await files.take_in(event)
