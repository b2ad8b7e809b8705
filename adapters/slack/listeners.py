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
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse

from adapters.slack.blocks import ACTION_PREFIX, FORM_BLOCK, FORM_CALLBACK, form_submission, home_view
from adapters.slack.catch_up import CatchUpCounts, SlackCatchUp
from adapters.slack.files import with_files
from adapters.slack.home import render_home
from adapters.slack.inbound import button_inbound, command_inbound, message_inbound
from adapters.slack.inflight import InFlight
from adapters.slack.manifest import COMMAND
from adapters.slack.names import SlackNames, shown_name
from adapters.slack.platform import PLATFORM, SlackPlatform
from adapters.slack.responder import SlackResponder
from concierge.app import FAILED
from concierge.bootstrap import Runtime
from concierge.catch_up import CatchUpPlan
from concierge.inbound import ButtonPressed, CommandInvoked, FormSubmitted, Inbound
from concierge.platform import Address, PlatformError
from concierge.replies import Reply
from concierge.settings import Settings

log = logging.getLogger(__name__)

# Buttons whose effect shows on the Home tab (the member's digests): it is published again after them.
HOME_ACTIONS = {"subscribe", "unsubscribe"}
PLAN_WAIT_S = 2.0  # longest a live message waits for the catch-up's plan of a new connection (Slack wants its ack in 3 s)


class _DropTokenWarning(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN itself and warns that our client wins; that is intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("adapters.slack.bolt")
    if not any(isinstance(f, _DropTokenWarning) for f in logger.filters):
        logger.addFilter(_DropTokenWarning())
    return logger


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
        self._plan: asyncio.Future[CatchUpPlan] | None = None  # taken at the last (re)connect
        self._plan_used: asyncio.Future[CatchUpPlan] | None = None  # ... and used by a catch-up round
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
        if self.settings.catch_up_hours > 0:
            # Taken now, before anything of this connection is recorded: a live message recorded first
            # would make its DM look read up to it, and what was written before it while we were away
            # would be skipped. Live messages wait for it (`plan_taken`).
            self._plan = asyncio.ensure_future(self.concierge.catch_up_plan(PLATFORM))
            self._plan.add_done_callback(_seen)  # a failed read is logged by the round that uses it, or dropped
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

    async def plan_taken(self) -> None:
        """Wait (at most `PLAN_WAIT_S`) until the plan taken at the last (re)connect is read."""
        pending = self._plan
        if pending is not None and not pending.done():
            await asyncio.wait({pending}, timeout=PLAN_WAIT_S)

    def taken_plan(self) -> asyncio.Future[CatchUpPlan] | None:
        """The plan taken at the last (re)connect, once: a catch-up round after that reads a fresh one."""
        taken = self._plan
        if taken is None or taken is self._plan_used:
            return None
        self._plan_used = taken
        return taken

    async def stop_catch_up(self) -> None:
        if self._plan is not None:
            self._plan.cancel()
        if self._catching_up is not None:
            self._catching_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catching_up

    # Translation: Slack payloads to the core's neutral events (see `adapters.slack.inbound`).

    def message_inbound(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> Inbound | None:
        """A `message` event as the core's event, or None (not ours); the catch-up reads history through it too."""
        return message_inbound(body, event, bot_user_id, names=self.names, staff_channels=self.staff_channels)

    # Listeners.

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        """Record (and, mostly, apply) the message before bolt acknowledges it.

        `receive` raises `NotRecorded` when the database could not take it: the exception makes
        bolt answer 500 (Socket Mode: no ack), and Slack sends the event again. A staff member's
        private answer ("only experts can answer") is sent by the core itself (`Concierge.tell`).
        """
        inbound = self.message_inbound(body, event, context.bot_user_id)
        if inbound is not None:
            await self.plan_taken()
            await self.concierge.receive(await with_files(self.platform.files, inbound))

    async def _answer(self, event: Inbound, responder: SlackResponder) -> None:
        await self.concierge.answer(event, responder)
        if isinstance(event, ButtonPressed) and not responder.on_home and event.action in HOME_ACTIONS:
            await self.publish_home(event.address.user)  # the member's digests changed
        if responder.on_home and not responder.shown:
            await self.publish_home(event.address.user)

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        """Acknowledge (Slack shows nothing yet), then run the command and answer only the person who asked."""
        await ack()
        event = command_inbound(command)
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

    async def _on_button(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                         respond: AsyncRespond) -> None:
        """A card's button, in a message or on the Home tab.

        Slack gives a Home tab press no response_url: the answer is shown at the top of the tab,
        published again. Subscribing or unsubscribing by any button refreshes the tab as well.
        """
        await ack()
        event = button_inbound(body, action)
        responder = SlackResponder(self, respond, event.address, trigger_id=body.get("trigger_id", ""),
                                   on_home=_pressed_on_home(body))
        self.inflight.spawn(self._answer(event, responder), f"slack button {event.event_id}")

    async def _on_form(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
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
    async def _note_app_rate_limited(body: dict[str, Any],
                                     next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        """Slack's notice that it drops this workspace's events for a minute (over 30,000 an hour)."""
        if body.get("type") == "app_rate_limited":
            log.warning("Slack is dropping events of workspace %s for a minute (more than 30,000 events in an "
                        "hour); messages sent meanwhile do not reach the concierge until the next catch-up",
                        body.get("team_id"))
            return BoltResponse(status=200, body="")
        return await next()

    @staticmethod
    async def _on_other_action(ack: AsyncAck) -> None:
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


def _seen(future: asyncio.Future[CatchUpPlan]) -> None:
    """Mark a plan's failure as seen: a plan replaced by a newer one before it was used is dropped."""
    if not future.cancelled():
        future.exception()

