"""SlackPlatform: the core's `Platform` port on Slack's Web API, with Slack errors made neutral."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from slack_sdk.errors import SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.blocks import message_fields
from adapters.slack.files import MAX_UPLOAD_BYTES, SlackFiles
from adapters.slack.web_errors import neutral_errors
from concierge.platform import Address, MessageRef, Outbound, PlatformDown
from concierge.replies import FileAttachment

log = logging.getLogger(__name__)

PLATFORM = "slack"
# Every post carries its outbox key in the message's metadata; `find_sent` reads it back.
SEND_EVENT_TYPE = "concierge_send"
FIND_SENT_LIMIT = 50  # how many of a channel's newest messages `find_sent` looks through
FIND_SENT_PAGES = 20  # at most this many pages are read (Slack may cut pages short)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

def ts_to_datetime(ts: str) -> datetime:
    """A Slack `ts` ("1764061200.000100": seconds and microseconds) as a UTC datetime, exactly."""
    seconds, _, micros = str(ts).partition(".")
    return EPOCH + timedelta(seconds=int(seconds), microseconds=int((micros or "0").ljust(6, "0")[:6]))


def datetime_to_ts(moment: datetime) -> str:
    """The Slack `ts` of a moment (for `oldest` in history calls)."""
    delta = moment - EPOCH
    return f"{delta // timedelta(seconds=1)}.{delta.microseconds:06d}"


def _sent_with_key(message: dict[str, Any], key: str) -> bool:
    """Whether `message` (from history, with metadata) is a post of ours carrying outbox key `key`."""
    metadata = message.get("metadata") or {}
    return (bool(message.get("bot_id")) and metadata.get("event_type") == SEND_EVENT_TYPE
            and (metadata.get("event_payload") or {}).get("key") == key)


def _next_cursor(response: AsyncSlackResponse) -> str:
    return str((response.get("response_metadata") or {}).get("next_cursor") or "")


class SlackPlatform:
    """Sends the core's messages with the Web API.

    A DM is addressed by its channel id, or by the user id alone (then `conversations.open`
    finds the DM). A staff thread is named by the `ts` of the message that opened it. Text is
    escaped and posted with `parse="none"` and `link_names=False`: it never pings anyone.
    """

    name = PLATFORM
    max_file_bytes = MAX_UPLOAD_BYTES

    def __init__(self, client: AsyncWebClient, files: SlackFiles | None = None) -> None:
        self.client = client
        self.files = files  # uploads `Outbound.files` (see adapters.slack.files); None: text only
        self._bot_user_id: str | None = None

    async def bot_user_id(self) -> str:
        """The bot's own user id (auth.test, asked once)."""
        if self._bot_user_id is None:
            async with neutral_errors("auth.test"):
                response = await self.client.auth_test()
            self._bot_user_id = str(response.get("user_id") or "")
        return self._bot_user_id

    async def open_dm(self, user: Address) -> Address:
        async with neutral_errors("conversations.open"):
            response = await self.client.conversations_open(users=user.user)
        return Address(PLATFORM, response["channel"]["id"], user.user, workspace=user.workspace)

    async def _post(self, channel: str, message: Outbound, thread: str = "", *,
                    opens_thread: bool = False) -> AsyncSlackResponse:
        # The outbox key rides along as metadata: after an unknown outcome `find_sent` looks for it.
        metadata = ({"event_type": SEND_EVENT_TYPE, "event_payload": {"key": message.idempotency_key}}
                    if message.idempotency_key else None)
        async with neutral_errors("chat.postMessage"):
            return await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread or None,
                parse="none",
                link_names=False,
                unfurl_links=False,
                unfurl_media=False,
                metadata=metadata,
                **message_fields(message, opens_thread=opens_thread),
            )

    async def send(self, address: Address, message: Outbound) -> MessageRef:
        channel = address.channel or (await self.open_dm(address)).channel
        response = await self._post(channel, message, address.thread)
        if message.files and self.files is not None:
            await self.files.upload(response["channel"], address.thread, message)
        where = Address(PLATFORM, response["channel"], address.user, address.thread, address.workspace)
        return MessageRef(where, response["ts"])

    async def open_thread(self, channel: Address, message: Outbound) -> MessageRef:
        response = await self._post(channel.channel, message, opens_thread=True)
        ts = response["ts"]
        if message.files and self.files is not None:  # in the new thread, under the card
            await self.files.upload(response["channel"], ts, message)
        return MessageRef(Address(PLATFORM, response["channel"], "", ts, channel.workspace), ts)

    async def find_sent(self, address: Address, message: Outbound, *, opens_thread: bool = False
                        ) -> MessageRef | None:
        """The post carrying `message.idempotency_key` in its metadata, if an earlier attempt arrived.

        A top-level post (a new thread's card, a DM) is among the channel's newest messages: the
        newest `FIND_SENT_LIMIT` are looked through. A thread post is among the thread's replies,
        which Slack lists oldest first: they are read to the end (at most `FIND_SENT_PAGES` pages).
        The ref is shaped as `send` (or, with `opens_thread`, `open_thread`) would have returned it.
        """
        key = message.idempotency_key
        if not key:
            return None
        channel = address.channel or (await self.open_dm(address)).channel
        in_thread = bool(address.thread) and not opens_thread
        cursor, seen = "", 0
        for _ in range(FIND_SENT_PAGES):
            if in_thread:
                page, cursor = await self.replies_page(channel, address.thread, cursor=cursor,
                                                       limit=FIND_SENT_LIMIT, metadata=True)
                page = [reply for reply in page if reply.get("ts") != address.thread]  # the parent comes first
            else:
                page, cursor = await self.history_page(channel, cursor=cursor, limit=FIND_SENT_LIMIT - seen,
                                                       metadata=True)
            found = next((posted for posted in page if _sent_with_key(posted, key)), None)
            if found is not None:
                if opens_thread:
                    return MessageRef(Address(PLATFORM, channel, "", found["ts"], address.workspace), found["ts"])
                return MessageRef(Address(PLATFORM, channel, address.user, address.thread, address.workspace),
                                  found["ts"])
            seen += len(page)
            if not cursor or (not in_thread and seen >= FIND_SENT_LIMIT):
                return None
        return None

    async def complete_sent(self, ref: MessageRef, message: Outbound) -> None:
        """After `find_sent` found the post of `message`: upload its files not shown after it yet.

        The earlier attempt posted the text, then stopped before or during its uploads (an answer
        lost, a crash). The files it shared are messages of the bot after the post, in the same
        thread (or, for a top-level post, the channel); only the others are uploaded now.
        """
        if not message.files or self.files is None:
            return
        channel, thread, shown = ref.address.channel, ref.address.thread, Counter[str]()
        cursor = ""
        for _ in range(FIND_SENT_PAGES):
            if thread:
                page, cursor = await self.replies_page(channel, thread, oldest=ref.message_id, cursor=cursor)
            else:
                page, cursor = await self.history_page(channel, oldest=ref.message_id, cursor=cursor)
            shown.update(file.get("name", "") for posted in page if posted.get("bot_id")
                         for file in posted.get("files") or [])
            if not cursor:
                break
        missing = []
        for file in message.files:
            if shown[file.name]:
                shown[file.name] -= 1
            else:
                missing.append(file)
        if missing:
            await self.files.upload(channel, thread, replace(message, files=tuple(missing)))

    # Reading back (catch-up, find_sent): one page per call, with the cursor of the next ("" at the end).

    async def history_page(self, channel: str, *, oldest: str = "", cursor: str = "", limit: int = 200,
                           metadata: bool = False) -> tuple[list[dict[str, Any]], str]:
        """Top-level messages of `channel` after `oldest`, newest first."""
        async with neutral_errors("conversations.history"):
            response = await self.client.conversations_history(
                channel=channel, oldest=oldest or None, cursor=cursor or None, limit=limit,
                include_all_metadata=metadata or None)
        return list(response.get("messages") or []), _next_cursor(response)

    async def replies_page(self, channel: str, thread: str, *, oldest: str = "", cursor: str = "",
                           limit: int = 200, metadata: bool = False) -> tuple[list[dict[str, Any]], str]:
        """The thread's parent and its replies after `oldest`, oldest first."""
        async with neutral_errors("conversations.replies"):
            response = await self.client.conversations_replies(
                channel=channel, ts=thread, oldest=oldest or None, cursor=cursor or None, limit=limit,
                include_all_metadata=metadata or None)
        return list(response.get("messages") or []), _next_cursor(response)

    async def dm_channels_page(self, *, cursor: str = "", limit: int = 200) -> tuple[list[dict[str, Any]], str]:
        """The bot's direct-message channels (each with the other person's `user`)."""
        async with neutral_errors("users.conversations"):
            response = await self.client.users_conversations(types="im", cursor=cursor or None, limit=limit)
        return list(response.get("channels") or []), _next_cursor(response)

    async def edit(self, ref: MessageRef, message: Outbound) -> None:
        """Replace a message the bot posted (a staff card: it opened the thread that shares its ts)."""
        async with neutral_errors("chat.update"):
            await self.client.chat_update(
                channel=ref.address.channel, ts=ref.message_id, parse="none", link_names=False,
                **message_fields(message, opens_thread=ref.address.thread == ref.message_id),
            )

    async def tell(self, address: Address, message: Outbound) -> None:
        """Show `message` only to `address.user`, in the channel (and thread) of `address`."""
        async with neutral_errors("chat.postEphemeral"):
            await self.client.chat_postEphemeral(
                channel=address.channel, user=address.user, thread_ts=address.thread or None,
                parse="none", link_names=False, **message_fields(message),
            )

    async def share_in_dm(self, user: Address, file: FileAttachment, comment: str = "") -> Address:
        """Upload `file` into the DM with `user.user`, the only private place a Slack file can go.

        `files_upload_v2` asks for an upload URL (files.getUploadURLExternal), posts the bytes
        there, then shares the file in the channel (files.completeUploadExternal).
        """
        dm = await self.open_dm(Address(PLATFORM, "", user.user, workspace=user.workspace))
        async with neutral_errors("files.upload"):
            try:
                await self.client.files_upload_v2(channel=dm.channel, file=file.data, filename=file.filename,
                                                  title=file.title or file.filename, initial_comment=comment or None)
            except SlackRequestError as error:  # the bytes were refused at the upload URL
                raise PlatformDown(f"the file upload failed: {error}") from None
        return dm

    async def open_modal(self, trigger_id: str, view: dict) -> None:
        """Open `view` as a modal for the person whose press or command carried `trigger_id` (valid 3 s)."""
        async with neutral_errors("views.open"):
            await self.client.views_open(trigger_id=trigger_id, view=view)

    async def publish_home(self, user: str, view: dict) -> None:
        """Show `view` as `user`'s App Home tab."""
        async with neutral_errors("views.publish"):
            await self.client.views_publish(user_id=user, view=view)
