"""The bolt app: each listener acknowledges, translates the Slack payload to an `Inbound`, hands it over.

Slack wants an acknowledgement within 3 seconds and resends unacknowledged events: bolt
acknowledges events before our listener runs, and our command and button listeners call
`ack()` first. The work happens after; a redelivered event (`X-Slack-Retry-Num`, same
envelope `event_id`) reaches the core, which de-duplicates it by (platform, event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from typing import Any, Iterator

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from adapters.slack.blocks import (
    ACTION_PREFIX,
    FORM_BLOCK,
    FORM_CALLBACK,
    action_of,
    form_submission,
    form_view,
    home_view,
    message_fields,
)
from adapters.slack.home import home_sections
from adapters.slack.manifest import COMMAND
from adapters.slack.mrkdwn import command_tokens, to_plain
from adapters.slack.platform import PLATFORM, SlackPlatform
from concierge.bootstrap import Runtime
from concierge.inbound import (
    Attachment,
    ButtonPressed,
    CommandInvoked,
    FormSubmitted,
    Inbound,
    MemberMessage,
    Reply,
    StaffReply,
)
from concierge.platform import Address, Outbound, PlatformError
from concierge.settings import Settings

log = logging.getLogger(__name__)

# Message subtypes that carry something a person wrote; all others (joins, deletions, bot
# posts, channel topic changes...) are ignored.
WRITTEN_SUBTYPES = {None, "file_share", "thread_broadcast"}
HANDOVER_RETRIES = (0.2, 1.0, 3.0)  # seconds between tries when the core fails (database hiccup)
FAILED = "Sorry, that failed on our side and nothing was changed. Please try again in a minute."
NOT_PASSED_ON = "Sorry, your last message could not be passed on to our team. Please send it again in a minute."
# Buttons whose effect shows on the Home tab (the member's digests): it is published again after them.
HOME_ACTIONS = {"subscribe", "unsubscribe"}
NOT_RELAYED = "Sorry, your last reply could not be handled and was not relayed. Please send it again in a minute."
# A reply's file (the stats chart) cannot ride on an ephemeral answer: it goes to the person's DM with the bot.
FILE_IN_DM = "The chart is in your DM with the bot."
FILE_NOT_SENT = "Sorry, the chart could not be sent to your DM with the bot. Please try again in a minute."
FILE_COMMENT = f"From your `{COMMAND}` command; only you see it here."


class InFlight:
    """Counts hand-overs still running after their acknowledgement (tests and shutdown wait for them)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        self._count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def wait(self, timeout: float | None = None) -> None:
        """Return once nothing is in flight; a listener scheduled just now gets to start first."""
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(self._idle.wait(), timeout)


class _DropTokenWarning(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN itself and warns that our client wins; that is intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("adapters.slack.bolt")
    if not any(isinstance(f, _DropTokenWarning) for f in logger.filters):
        logger.addFilter(_DropTokenWarning())
    return logger


def _from_a_bot(message: dict[str, Any], bot_user_id: str | None) -> bool:
    return bool(
        message.get("bot_id")
        or message.get("bot_profile")
        or message.get("subtype") == "bot_message"
        or (bot_user_id and message.get("user") == bot_user_id)
    )


def _attachments(files: list[dict[str, Any]] | None) -> tuple[Attachment, ...]:
    """Shared files as links with names (files hidden by plan limits carry no link and are left out)."""
    found = []
    for item in files or ():
        url = item.get("permalink") or item.get("url_private") or ""
        if url:
            found.append(Attachment(name=item.get("name") or item.get("title") or "file", url=url,
                                    size=int(item.get("size") or 0)))
    return tuple(found)


def _pressed_on_home(body: dict[str, Any]) -> bool:
    """Whether a block_actions payload comes from the App Home tab (a view, not a message)."""
    return (body.get("container") or {}).get("type") == "view" and (body.get("view") or {}).get("type") == "home"


class SlackListeners:
    """Owns the bolt `AsyncApp` and its listeners for one running bot.

    Args:
        runtime: the wired core (its `concierge` takes the inbound events, its `db` feeds App Home).
        settings: the core's settings (staff channel id, program name).
        platform: the Web API side, also used for private answers to staff.
        signing_secret: checks HTTP requests; "" in Socket Mode, where requests are not signed.
    """

    def __init__(self, runtime: Runtime, settings: Settings, platform: SlackPlatform, *,
                 signing_secret: str = "") -> None:
        self.runtime = runtime
        self.concierge = runtime.concierge
        self.settings = settings
        self.platform = platform
        self.inflight = InFlight()
        self.handover_retries = HANDOVER_RETRIES
        self.app = AsyncApp(
            name="concierge",
            client=platform.client,
            signing_secret=signing_secret,
            logger=_bolt_logger(),
            process_before_response=False,
        )
        self.app.middleware(self._note_app_rate_limited)
        self.app.event("message")(self._on_message)
        self.app.event("app_home_opened")(self._on_home_opened)
        self.app.command(COMMAND)(self._on_command)
        self.app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))(self._on_button)
        self.app.view(FORM_CALLBACK)(self._on_form)
        # Buttons of old layouts and other apps' elements: acknowledge, so Slack shows no error.
        self.app.action(re.compile(".*"))(self._on_other_action)

    @property
    def staff_channel(self) -> str:
        return self.settings.staff_channel

    @property
    def staff_channels(self) -> frozenset[str]:
        """The staff channel and every specialty's own (CONCIERGE_SPECIALTY_CHANNELS)."""
        return frozenset(self.settings.staff_channels())

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until every acknowledged payload has been handed to the core and answered."""
        await self.inflight.wait(timeout)

    # Translation: Slack payloads to the core's neutral events.

    def message_inbound(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> Inbound | None:
        """A `message` event as MemberMessage (a DM), StaffReply (a staff thread) or None (not ours)."""
        channel = event.get("channel", "")
        team = body.get("team_id") or event.get("team") or ""
        event_id = body.get("event_id") or f"{channel}:{event.get('event_ts') or event.get('ts')}"
        subtype = event.get("subtype")
        if subtype == "message_changed":
            message = event.get("message") or {}
            previous = event.get("previous_message") or {}
            if (event.get("channel_type") != "im" or message.get("subtype") not in WRITTEN_SUBTYPES
                    or _from_a_bot(message, bot_user_id) or not message.get("user")):
                return None
            if message.get("text", "") == previous.get("text", ""):
                return None  # a link preview or another change that is not an edit of the text
            return MemberMessage(event_id, Address(PLATFORM, channel, message["user"], workspace=team),
                                 to_plain(message.get("text", "")), _attachments(message.get("files")), edited=True)
        if subtype not in WRITTEN_SUBTYPES or _from_a_bot(event, bot_user_id) or not event.get("user"):
            return None
        text = to_plain(event.get("text", ""))
        attachments = _attachments(event.get("files"))
        if event.get("channel_type") == "im":
            return MemberMessage(event_id, Address(PLATFORM, channel, event["user"], workspace=team), text, attachments)
        thread = event.get("thread_ts")
        if channel in self.staff_channels and thread and thread != event.get("ts"):
            return StaffReply(event_id, Address(PLATFORM, channel, event["user"], thread, team), text, attachments)
        return None  # top-level chatter, other channels, group DMs

    @staticmethod
    def command_inbound(command: dict[str, Any]) -> CommandInvoked:
        # Slash commands are not retried by Slack; the trigger id names one invocation.
        event_id = f"command:{command.get('trigger_id') or uuid.uuid4().hex}"
        where = Address(PLATFORM, command.get("channel_id", ""), command.get("user_id", ""),
                        workspace=command.get("team_id", ""))
        return CommandInvoked(event_id, where, command_tokens(command.get("text", "")))

    @staticmethod
    def button_inbound(body: dict[str, Any], action: dict[str, Any]) -> ButtonPressed:
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        # A card opens its thread: the thread is the card's own ts.
        thread = message.get("thread_ts") or message.get("ts") or container.get("message_ts", "")
        user = body.get("user") or {}
        team = (body.get("team") or {}).get("id") or user.get("team_id", "")
        event_id = f"action:{body.get('trigger_id') or action.get('action_ts') or uuid.uuid4().hex}"
        return ButtonPressed(event_id, Address(PLATFORM, channel, user.get("id", ""), thread, team),
                             action_of(action.get("action_id", "")), action.get("value", ""))

    # Hand-over.

    async def _handle(self, event: Inbound, *, retries: tuple[float, ...] = ()) -> Reply | None:
        """Give `event` to the core; a failure (a database hiccup) is retried, then reported."""
        for delay in (*retries, None):
            try:
                return await self.concierge.handle(event)
            except Exception as error:
                if delay is None:
                    log.exception("the core failed on Slack event %s", event.event_id)
                    raise
                log.warning("the core failed on Slack event %s (%s); trying again in %g s",
                            event.event_id, error, delay)
                await asyncio.sleep(delay)
        return None  # not reached

    async def _respond(self, respond, reply: Reply) -> None:  # noqa: ANN001
        """A private answer through the payload's response_url (works in any channel, even unjoined).

        A reply's card (e.g. the digest catalogue's Subscribe buttons) is rendered with it; its
        buttons come back as `ButtonPressed` like a staff card's.
        """
        try:
            result = await respond(**message_fields(Outbound(reply.text, reply.card)),
                                   response_type="ephemeral", replace_original=False)
            if getattr(result, "status_code", 200) != 200:
                log.warning("Slack refused a private answer: HTTP %s", result.status_code)
        except Exception as error:  # the answer is a courtesy; the change itself is committed
            log.warning("could not send a private answer: %s", error)

    async def _tell(self, address: Address, reply: Reply) -> None:
        try:
            await self.platform.tell(address, Outbound(reply.text, reply.card))
        except PlatformError as error:
            log.warning("could not send a private answer in %s: %s", address.channel, error)

    # Listeners.

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any], context) -> None:  # noqa: ANN001
        with self.inflight.track():  # bolt acknowledged the event before calling us
            inbound = self.message_inbound(body, event, context.bot_user_id)
            if inbound is None:
                return
            try:
                reply = await self._handle(inbound, retries=self.handover_retries)
            except Exception:
                if isinstance(inbound, MemberMessage):
                    with contextlib.suppress(PlatformError):
                        await self.platform.send(inbound.address, Outbound(NOT_PASSED_ON))
                else:
                    await self._tell(inbound.address, Reply(NOT_RELAYED, ok=False))
                return
            # A member's answers (join text, limits) come through the outbox; staff get theirs here.
            if isinstance(inbound, StaffReply) and reply is not None and reply.text:
                await self._tell(inbound.address, reply)

    async def _run_privately(self, ack, respond, event: Inbound, trigger_id: str = "") -> None:  # noqa: ANN001
        """Acknowledge (Slack shows nothing yet), run the command, answer only the person who asked.

        A reply that asks for text (`Reply.form`) opens a modal with the press's or command's
        `trigger_id`; if Slack will not open it (the trigger expired), the reply's text says
        which command to type instead.
        """
        with self.inflight.track():
            await ack()
            try:
                reply = await self._handle(event)
            except Exception:
                reply = Reply(FAILED, ok=False)
            if reply is not None and reply.form is not None and trigger_id:
                try:
                    await self.platform.open_modal(trigger_id, form_view(reply.form, event.address.channel))
                    return
                except PlatformError as error:
                    log.warning("could not open a form for %s: %s", event.address.user, error)
            if reply is not None and reply.attachment is not None:
                reply = await self._share_file(event.address, reply)
            if reply is not None and (reply.text or reply.card):
                await self._respond(respond, reply)

    async def _share_file(self, address: Address, reply: Reply) -> Reply:
        """Upload the reply's file into the person's DM; the answer says where it went (or that it failed)."""
        file = reply.attachment
        try:
            await self.platform.share_in_dm(address, file, comment=FILE_COMMENT)
            note = FILE_IN_DM
        except PlatformError as error:
            log.warning("could not share %s in the DM with %s: %s", file.filename, address.user, error)
            note = FILE_NOT_SENT
        except Exception:  # the answer itself must still go out
            log.exception("could not share %s in the DM with %s", file.filename, address.user)
            note = FILE_NOT_SENT
        return dataclasses.replace(reply, text=f"{reply.text}\n\n{note}", attachment=None)

    async def _on_command(self, ack, command: dict[str, Any], respond) -> None:  # noqa: ANN001
        await self._run_privately(ack, respond, self.command_inbound(command), command.get("trigger_id", ""))

    async def _on_form(self, ack, body: dict[str, Any], view: dict[str, Any]) -> None:  # noqa: ANN001
        """A modal opened for a `Form` was sent. A refusal is shown in the modal, by the text box;
        otherwise it closes and the answer is shown privately where the form was asked for."""
        with self.inflight.track():
            action, value, channel, text = form_submission(view)
            user = body.get("user") or {}
            team = (body.get("team") or {}).get("id") or user.get("team_id", "")
            where = Address(PLATFORM, channel, user.get("id", ""), workspace=team)
            event = FormSubmitted(f"view:{view.get('id', '')}:{view.get('hash', '')}", where, action, value, text)
            try:
                reply = await self._handle(event)
            except Exception:
                reply = Reply(FAILED, ok=False)
            if reply is not None and not reply.ok:
                await ack(response_action="errors", errors={FORM_BLOCK: reply.text[:150]})
                return
            await ack()
            if reply is not None and reply.text and channel:
                await self._tell(where, reply)

    async def _on_button(self, ack, body: dict[str, Any], action: dict[str, Any], respond) -> None:  # noqa: ANN001
        """A card's button, in a message or on the Home tab.

        Slack gives a Home tab press no response_url: the answer is shown at the top of the tab,
        published again. Subscribing or unsubscribing by any button refreshes the tab as well.
        """
        event = self.button_inbound(body, action)
        with self.inflight.track():
            if not _pressed_on_home(body):
                await self._run_privately(ack, respond, event, body.get("trigger_id", ""))
                if event.action in HOME_ACTIONS:
                    await self.publish_home(event.address.user)
                return
            await ack()
            try:
                reply = await self._handle(event)
            except Exception:
                reply = Reply(FAILED, ok=False)
            await self.publish_home(event.address.user, notice=reply.text if reply is not None else "")

    @staticmethod
    async def _note_app_rate_limited(body: dict[str, Any], next) -> BoltResponse | None:  # noqa: A002, ANN001
        """Slack's notice that it drops this workspace's events for a minute (over 30,000 an hour)."""
        if body.get("type") == "app_rate_limited":
            log.warning("Slack is dropping events of workspace %s for a minute (more than 30,000 events in an "
                        "hour); messages sent meanwhile do not reach the concierge", body.get("team_id"))
            return BoltResponse(status=200, body="")
        return await next()

    @staticmethod
    async def _on_other_action(ack) -> None:  # noqa: ANN001
        await ack()

    async def _on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return
        with self.inflight.track():
            await self.publish_home(event["user"])

    async def publish_home(self, user: str, *, notice: str = "") -> None:
        """Publish `user`'s Home tab from the records, `notice` (an answer to a button) at the top."""
        try:
            sections = await self.runtime.db.run(lambda session: home_sections(session, self.settings, PLATFORM, user,
                                                                                  self.runtime.concierge.clock.now()))
        except Exception:
            log.exception("could not read the App Home of %s", user)
            return
        title = f"{self.settings.program_name} concierge"
        try:
            await self.platform.publish_home(user, home_view(sections, title=title, notice=notice))
        except PlatformError as error:
            log.warning("could not publish the App Home of %s: %s", user, error)
