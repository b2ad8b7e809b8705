"""The bolt app: each listener translates a Slack payload to an `Inbound` and hands it to the core.

Recorded before acknowledged: the app runs with `process_before_response=True`, so bolt answers
Slack (the HTTP response, the Socket Mode ack) only once our listener has returned, and answers
an exception with HTTP 500 (Socket Mode: no ack), which makes Slack send the event again. The
`message` listener therefore records the message (`Concierge.receive`) before it returns and
raises when it could not (`NotRecorded`). A message is named by its channel and `ts`, not by
the envelope it came in, so a retry, a reconnect or the catch-up after downtime has one effect.

Slow work stays out of the listeners: commands and button presses are acknowledged first and
answered by a tracked background task (`Concierge.answer`); the App Home is published the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

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
from adapters.slack.catch_up import CatchUpCounts, SlackCatchUp
from adapters.slack.home import render_home
from adapters.slack.manifest import COMMAND
from adapters.slack.mrkdwn import command_tokens, from_mrkdwn, to_plain
from adapters.slack.names import SlackNames, shown_name
from adapters.slack.platform import PLATFORM, SlackPlatform, ts_to_datetime
from concierge.app import FAILED
from concierge.bootstrap import Runtime
from concierge.inbound import (
    Attachment,
    ButtonPressed,
    CommandInvoked,
    FileAttachment,
    Form,
    FormSubmitted,
    Inbound,
    MemberMessage,
    Reply,
    StaffReply,
)
from concierge.platform import Address, Outbound, PlatformDown, PlatformError
from concierge.settings import Settings

log = logging.getLogger(__name__)

# Message subtypes that carry something a person wrote; all others (joins, deletions, bot
# posts, channel topic changes...) are ignored.
WRITTEN_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}  # /me text is written text
# Buttons whose effect shows on the Home tab (the member's digests): it is published again after them.
HOME_ACTIONS = {"subscribe", "unsubscribe"}
# A reply's file (the stats chart) cannot ride on an ephemeral answer: it goes to the person's DM with the bot.
FILE_IN_DM = "The chart is in your DM with the bot."
FILE_COMMENT = f"From your `{COMMAND}` command; only you see it here."


class InFlight:
    """Counts work still running after its acknowledgement (tests and shutdown wait for it)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task] = set()

    async def wait(self, timeout: float | None = None) -> None:
        """Return once nothing is in flight; a listener scheduled just now gets to start first."""
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(self._idle.wait(), timeout)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        """Run `work` after the acknowledgement, counted until it ends (its errors are logged)."""

        async def tracked() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)
            finally:
                self._done()

        self._count += 1
        self._idle.clear()
        task = asyncio.create_task(tracked(), name=name)
        self._tasks.add(task)  # keep a reference until it ends
        task.add_done_callback(self._tasks.discard)
        return task

    def _done(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()


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


def _text(value: Any) -> str:
    """A field that should be text; anything else (a number, a list: never from Slack) reads as none."""
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _attachments(files: Any) -> tuple[Attachment, ...]:
    """Shared files as links with names (files hidden by plan limits carry no link and are left out).

    Fields of the wrong type are passed over: what can be read is relayed, the rest is not.
    """
    found = []
    for item in files if isinstance(files, list) else ():
        item = _object(item)
        url = _text(item.get("permalink")) or _text(item.get("url_private"))
        if url:
            size = item.get("size")
            found.append(Attachment(name=_text(item.get("name")) or _text(item.get("title")) or "file", url=url,
                                    size=size if isinstance(size, int) and size >= 0 else 0))
    return tuple(found)


def _pressed_on_home(body: dict[str, Any]) -> bool:
    """Whether a block_actions payload comes from the App Home tab (a view, not a message)."""
    return (body.get("container") or {}).get("type") == "view" and (body.get("view") or {}).get("type") == "home"


def _written_at(ts: str | None) -> datetime | None:
    try:
        return ts_to_datetime(ts) if ts else None
    except ValueError:
        return None


class SlackResponder:
    """Answers the person behind a command or a button press (`concierge.app.Responder`).

    In a channel or DM the answer is ephemeral, through the payload's response_url; a press on
    the App Home tab has none, so its answer is shown at the top of the tab, published again.
    """

    def __init__(self, listeners: SlackListeners, respond, address: Address, *,  # noqa: ANN001
                 trigger_id: str = "", on_home: bool = False) -> None:
        self.listeners = listeners
        self.respond = respond
        self.address = address
        self.trigger_id = trigger_id
        self.on_home = on_home
        self.shown = False

    async def show(self, reply: Reply) -> None:
        self.shown = True
        if self.on_home:
            await self.listeners.publish_home(self.address.user, notice=reply.text)
            return
        try:
            result = await self.respond(**message_fields(Outbound(reply.text, reply.card)),
                                        response_type="ephemeral", replace_original=False)
            if getattr(result, "status_code", 200) != 200:
                log.warning("Slack refused a private answer: HTTP %s", result.status_code)
        except Exception as error:  # the answer is a courtesy; the change itself is committed
            log.warning("could not send a private answer: %s", error)

    async def open_form(self, form: Form) -> bool:
        """A modal, opened with the press's or command's trigger id (valid 3 s; used once)."""
        if not self.trigger_id:
            return False
        await self.listeners.platform.open_modal(self.trigger_id, form_view(form, self.address.channel))
        return True

    async def attach(self, file: FileAttachment) -> str:
        """An ephemeral answer cannot carry a file: it is uploaded into the person's DM with the bot."""
        try:
            await self.listeners.platform.share_in_dm(self.address, file, comment=FILE_COMMENT)
        except PlatformError:
            raise
        except Exception as error:  # the answer itself must still go out, saying the file did not
            log.exception("could not share %s in the DM with %s", file.filename, self.address.user)
            raise PlatformDown(f"could not share {file.filename}: {error}") from None
        return FILE_IN_DM


class SlackListeners:
    """Owns the bolt `AsyncApp` and its listeners for one running bot.

    Args:
        runtime: the wired core (its `concierge` takes the inbound events, its `db` feeds App Home).
        settings: the core's settings (staff channel id, program name).
        platform: the Web API side, also used for private answers to staff.
        signing_secret: checks HTTP requests; "" in Socket Mode, where requests are not signed.
        catch_up_per_min: history calls a minute of the catch-up after downtime (SLACK_CATCH_UP_PER_MIN).
    """

    def __init__(self, runtime: Runtime, settings: Settings, platform: SlackPlatform, *,
                 signing_secret: str = "", catch_up_per_min: float = 50) -> None:
        self.runtime = runtime
        self.concierge = runtime.concierge
        self.settings = settings
        self.platform = platform
        self.signing_secret = signing_secret
        self.inflight = InFlight()
        self.catch_up = SlackCatchUp(self, per_minute=catch_up_per_min)
        self.names = SlackNames(platform.client)
        self._catching_up: asyncio.Task | None = None
        self._catch_up_again = False
        self.app = AsyncApp(
            name="concierge",
            client=platform.client,
            signing_secret=signing_secret,
            logger=_bolt_logger(),
            # Answer Slack only once the listener returned: a message is recorded before its ack.
            process_before_response=True,
        )
        self.app.middleware(self._note_app_rate_limited)
        self.app.event("message")(self._on_message)
        self.app.event("app_home_opened")(self._on_home_opened)
        self.app.event("user_change")(self._on_user_change)
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

    # Catch-up after downtime (see `adapters.slack.catch_up`).

    def start_catch_up(self) -> asyncio.Task:
        """Read back what was written while we were away, in the background (on start, after a reconnect).

        Asked again while one runs (a reconnect during the catch-up), it runs once more afterwards.
        """
        if self._catching_up is not None and not self._catching_up.done():
            self._catch_up_again = True
            return self._catching_up
        self._catching_up = asyncio.create_task(self._catch_up_until_done(), name="slack-catch-up")
        return self._catching_up

    async def _catch_up_until_done(self) -> CatchUpCounts:
        counts = CatchUpCounts()
        while True:
            self._catch_up_again = False
            try:
                counts = await self.catch_up.run()
            except Exception:  # the bot keeps serving live events; the next start or reconnect tries again
                log.exception("catch-up failed")
            if not self._catch_up_again:
                return counts

    async def stop_catch_up(self) -> None:
        if self._catching_up is not None:
            self._catching_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catching_up

    # Translation: Slack payloads to the core's neutral events.

    def message_inbound(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> Inbound | None:
        """A `message` event as MemberMessage (a DM), StaffReply (a staff thread) or None (not ours).

        The event id names the message itself, `<channel>:<ts>` (an edit: `<channel>:<ts>:edit:<edit ts>`),
        whatever envelope it came in: the catch-up reads the same message back from history under the
        same id. `written_at` is the message's `ts` (the edit's time for an edit).
        """
        # Fields of a type Slack never sends read as absent: a message is relayed as far as it can be
        # read (one with no readable text gets the member a polite "please write it out").
        channel = _text(event.get("channel"))
        team = _text(body.get("team_id")) or _text(event.get("team"))
        subtype = event.get("subtype")
        if subtype == "message_changed":
            message = _object(event.get("message"))
            previous = _object(event.get("previous_message"))
            if (event.get("channel_type") != "im" or message.get("subtype") not in WRITTEN_SUBTYPES
                    or _from_a_bot(message, bot_user_id) or not _text(message.get("user"))):
                return None
            if _text(message.get("text")) == _text(previous.get("text")):
                return None  # a link preview or another change that is not an edit of the text
            edited_ts = (_text(_object(message.get("edited")).get("ts")) or _text(event.get("event_ts"))
                         or _text(event.get("ts")))
            event_id = f"{channel}:{_text(message.get('ts'))}:edit:{edited_ts}"
            return MemberMessage(event_id, Address(PLATFORM, channel, message["user"], workspace=team),
                                 from_mrkdwn(to_plain(_text(message.get("text")))), _attachments(message.get("files")),
                                 edited=True, display_name=self.names.cached(message["user"]),
                                 written_at=_written_at(edited_ts))
        if subtype not in WRITTEN_SUBTYPES or _from_a_bot(event, bot_user_id) or not _text(event.get("user")):
            return None
        ts = _text(event.get("ts")) or _text(event.get("event_ts"))
        if not channel or not ts:
            return None  # no message without a place and a time
        event_id = f"{channel}:{ts}"
        text = from_mrkdwn(to_plain(_text(event.get("text"))))
        attachments = _attachments(event.get("files"))
        if event.get("channel_type") == "im":
            return MemberMessage(event_id, Address(PLATFORM, channel, event["user"], workspace=team), text, attachments,
                                 display_name=self.names.cached(event["user"]), written_at=_written_at(ts))
        thread = _text(event.get("thread_ts"))
        if channel in self.staff_channels and thread and thread != ts:
            return StaffReply(event_id, Address(PLATFORM, channel, event["user"], thread, team), text, attachments,
                              written_at=_written_at(ts))
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

    # Listeners.

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any], context) -> None:  # noqa: ANN001
        """Record (and, mostly, apply) the message before bolt acknowledges it.

        `receive` raises `NotRecorded` when the database could not take it: the exception makes
        bolt answer 500 (Socket Mode: no ack), and Slack sends the event again. A staff member's
        private answer ("only experts can answer") is sent by the core itself (`Concierge.tell`).
        """
        inbound = self.message_inbound(body, event, context.bot_user_id)
        if inbound is not None:
            await self.concierge.receive(inbound)

    async def _answer(self, event: Inbound, responder: SlackResponder) -> None:
        await self.concierge.answer(event, responder)
        if isinstance(event, ButtonPressed) and not responder.on_home and event.action in HOME_ACTIONS:
            await self.publish_home(event.address.user)  # the member's digests changed
        if responder.on_home and not responder.shown:
            await self.publish_home(event.address.user)

    async def _on_command(self, ack, command: dict[str, Any], respond) -> None:  # noqa: ANN001
        """Acknowledge (Slack shows nothing yet), then run the command and answer only the person who asked."""
        await ack()
        event = self.command_inbound(command)
        responder = SlackResponder(self, respond, event.address, trigger_id=command.get("trigger_id", ""))
        self.inflight.spawn(self._answer_command(event, command.get("text", ""), responder),
                            f"slack command {event.event_id}")

    async def _answer_command(self, event: CommandInvoked, text: str, responder: SlackResponder) -> None:
        """The people the command names come with their Slack names (`member add @alice premium`)."""
        names = await self.names.names_in(text)
        await self._answer(dataclasses.replace(event, names=names) if names else event, responder)

    async def _on_user_change(self, event: dict[str, Any]) -> None:
        """Someone changed their profile: the next message of theirs shows the new name to staff."""
        user = event.get("user") or {}
        if isinstance(user, dict) and user.get("id"):
            self.names.remember(user["id"], shown_name(user))

    async def _on_button(self, ack, body: dict[str, Any], action: dict[str, Any], respond) -> None:  # noqa: ANN001
        """A card's button, in a message or on the Home tab.

        Slack gives a Home tab press no response_url: the answer is shown at the top of the tab,
        published again. Subscribing or unsubscribing by any button refreshes the tab as well.
        """
        await ack()
        event = self.button_inbound(body, action)
        responder = SlackResponder(self, respond, event.address, trigger_id=body.get("trigger_id", ""),
                                   on_home=_pressed_on_home(body))
        self.inflight.spawn(self._answer(event, responder), f"slack button {event.event_id}")

    async def _on_form(self, ack, body: dict[str, Any], view: dict[str, Any]) -> None:  # noqa: ANN001
        """A modal opened for a `Form` was sent. A refusal is shown in the modal, by the text box;
        otherwise it closes and the answer is shown privately where the form was asked for.

        The refusal must be in the acknowledgement itself, so the form is applied before `ack`.
        """
        action, value, channel, text = form_submission(view)
        user = body.get("user") or {}
        team = (body.get("team") or {}).get("id") or user.get("team_id", "")
        where = Address(PLATFORM, channel, user.get("id", ""), workspace=team)
        event = FormSubmitted(f"view:{view.get('id', '')}:{view.get('hash', '')}", where, action, value, text)
        try:
            reply = (await self.concierge.receive(event)).reply
        except Exception:
            log.exception("the core failed on Slack form %s", event.event_id)
            reply = Reply(FAILED, ok=False)
        if reply is not None and not reply.ok:
            await ack(response_action="errors", errors={FORM_BLOCK: reply.text[:150]})
            return
        await ack()
        if reply is not None and reply.text and channel:
            self.inflight.spawn(self.concierge.tell(where, reply), f"slack form answer {event.event_id}")

    @staticmethod
    async def _note_app_rate_limited(body: dict[str, Any], next) -> BoltResponse | None:  # noqa: A002, ANN001
        """Slack's notice that it drops this workspace's events for a minute (over 30,000 an hour)."""
        if body.get("type") == "app_rate_limited":
            log.warning("Slack is dropping events of workspace %s for a minute (more than 30,000 events in an "
                        "hour); messages sent meanwhile do not reach the concierge until the next catch-up",
                        body.get("team_id"))
            return BoltResponse(status=200, body="")
        return await next()

    @staticmethod
    async def _on_other_action(ack) -> None:  # noqa: ANN001
        await ack()

    async def _on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return
        self.inflight.spawn(self.publish_home(event["user"]), f"slack home of {event['user']}")

    async def publish_home(self, user: str, *, notice: str = "") -> None:
        """Publish `user`'s Home tab from the records, `notice` (an answer to a button) at the top."""
        try:
            sections = render_home(await self.concierge.home(PLATFORM, user))
        except Exception:
            log.exception("could not read the App Home of %s", user)
            return
        title = self.settings.bot_title()
        try:
            await self.platform.publish_home(user, home_view(sections, title=title, notice=notice))
        except PlatformError as error:
            log.warning("could not publish the App Home of %s: %s", user, error)
