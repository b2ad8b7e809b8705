"""Private answers to the person behind a Slack command or button press (`concierge.app.Responder`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_bolt.async_app import AsyncRespond

from adapters.slack.blocks import form_view, message_fields
from adapters.slack.manifest import COMMAND
from concierge.platform import Address, Outbound, PlatformDown, PlatformError
from concierge.replies import FileAttachment, Form, Reply

if TYPE_CHECKING:
    from adapters.slack.listeners import SlackListeners

log = logging.getLogger(__name__)

# A reply's file (the stats chart) cannot ride on an ephemeral answer: it goes to the person's DM with the bot.
FILE_IN_DM = "The chart is in your DM with the bot."
FILE_COMMENT = f"From your `{COMMAND}` command; only you see it here."


class SlackResponder:
    """Answers the person behind a command or a button press (`concierge.app.Responder`).

    In a channel or DM the answer is ephemeral, through the payload's response_url; a press on
    the App Home tab has none, so its answer is shown at the top of the tab, published again.
    """

    def __init__(self, listeners: SlackListeners, respond: AsyncRespond, address: Address, *,
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
