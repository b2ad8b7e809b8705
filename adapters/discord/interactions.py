"""Answering slash commands and button presses: hand the event to the core, reply privately in time."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord

from adapters.discord.cards import card_view, embed_for
from adapters.discord.forms import form_modal
from adapters.discord.limits import split_message
from concierge.commands import CommandRegistry
from concierge.inbound import Inbound
from concierge.platform import Address, Card
from concierge.replies import FileAttachment, Form, Reply

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
REPLY_CHARS = 2000
FAILED = "Sorry, something went wrong on our side. Please try again."
FILE_NOT_SENT = "Sorry, the chart could not be attached. Please try again in a minute."
RESTARTING = "The concierge is restarting; nothing was changed. Please try again in a minute."


def address_of(interaction: discord.Interaction) -> Address:
    """Where an interaction ran: a thread of a channel, a channel, or a DM; and who ran it."""
    channel = interaction.channel
    user = str(interaction.user.id)
    workspace = str(interaction.guild_id or "")
    if isinstance(channel, discord.Thread):
        return Address("discord", str(channel.parent_id), user, str(channel.id), workspace)
    channel_id = str(interaction.channel_id or "")
    message = interaction.message
    if message is not None and interaction.guild_id and not message.flags.ephemeral:
        # A button on a staff card: the card opened a thread that shares the card's id.
        return Address("discord", channel_id, user, str(message.id), workspace)
    return Address("discord", channel_id, user, "", workspace)


def _parts(text: str) -> list[str]:
    return split_message(text, REPLY_CHARS) or ["(no answer)"]


class InteractionResponder:
    """The core's `Responder` for one interaction: private answers, a modal, the file kept for the answer.

    Answers go as the interaction's response, or as follow-ups once it was deferred; a lock keeps
    the deferral (`answer`'s 3-second rule) and the answer itself from both claiming the response.
    """

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.file: FileAttachment | None = None
        self.shown = False
        self._lock = asyncio.Lock()

    async def show(self, reply: Reply) -> None:
        async with self._lock:
            self.shown = True
            await send_private(self.interaction, reply.text, reply.card, self.file)

    async def open_form(self, form: Form) -> bool:
        async with self._lock:
            if self.interaction.response.is_done():
                return False  # deferred already: a modal must be the first answer
            try:
                await self.interaction.response.send_modal(form_modal(form))
            except discord.HTTPException as error:
                log.warning("Discord refused a form: %s", error)
                return False
            self.shown = True
            return True

    async def attach(self, file: FileAttachment) -> str:
        self.file = file  # sent with the answer's last part (see `send_private`)
        return ""

    async def defer(self) -> None:
        """Tell Discord the answer is coming ("thinking...", privately), unless it was given already."""
        async with self._lock:
            if not self.interaction.response.is_done():
                await self.interaction.response.defer(ephemeral=True, thinking=True)


async def answer(interaction: discord.Interaction, event: Inbound) -> None:
    """Give `event` to the core (`Concierge.answer`) and let it answer the person privately.

    Discord wants a first answer within 3 seconds: when the core has not answered by
    `interaction_defer_after_s`, the answer is deferred ("thinking...") and sent as a follow-up.
    """
    client: Any = interaction.client
    if client.intake.closed:  # shutting down: nothing reaches the core any more
        with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, OSError):
            await send_private(interaction, RESTARTING)
        return
    with client.intake.handling():
        responder = InteractionResponder(interaction)
        work = asyncio.ensure_future(client.concierge.answer(event, responder))
        done, _ = await asyncio.wait({work}, timeout=client.discord_settings.interaction_defer_after_s)
        if not done and not responder.shown:
            try:
                await responder.defer()
            except (discord.HTTPException, aiohttp.ClientError, OSError):
                log.warning("could not defer the answer to %s", type(event).__name__, exc_info=True)
        try:
            await work
        except Exception:
            # The core answers its own failures; this is Discord refusing the answer (or a bug here).
            log.exception("could not answer %s", type(event).__name__)
            if not responder.shown:
                with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, OSError):
                    await send_private(interaction, FAILED)


async def send_private(interaction: discord.Interaction, text: str, card: Card | None = None,
                       attachment: FileAttachment | None = None) -> None:
    """An ephemeral answer (split when long, the card's embed and buttons and the file on the last part).

    Sent as the interaction's response, or as follow-ups once the response was a defer. When
    Discord refuses the part with the file, that part goes again without it, and a note follows.
    """
    parts = _parts(text)
    for index, part in enumerate(parts):
        extra: dict[str, Any] = {}
        if card is not None and index == len(parts) - 1:
            embed = embed_for(card, text)
            if embed is not None:
                extra["embed"] = embed
            view = card_view(card)
            if view is not None:
                # Finished before sending, so discord.py does not keep it: the buttons are matched
                # by their custom ids, and dropping a kept view would drop that matching too.
                view.stop()
                extra["view"] = view
        if attachment is not None and index == len(parts) - 1:
            file = discord.File(io.BytesIO(attachment.data), filename=attachment.filename,
                                description=attachment.title or None)
            try:
                await _send_part(interaction, part, file=file, **extra)
            except discord.HTTPException as error:
                log.warning("Discord refused the answer with %s: %s", attachment.filename, error)
                await _send_part(interaction, part, **extra)
                await _send_part(interaction, FILE_NOT_SENT)
            continue
        await _send_part(interaction, part, **extra)


async def _send_part(interaction: discord.Interaction, part: str, **extra: Any) -> None:  # noqa: ANN401 - embed, view, file
    if not interaction.response.is_done():
        await interaction.response.send_message(part, ephemeral=True, allowed_mentions=NO_MENTIONS, **extra)
    else:
        await interaction.followup.send(part, ephemeral=True, allowed_mentions=NO_MENTIONS, **extra)


def raw_tokens(data: Mapping[str, Any], root: str, registry: CommandRegistry) -> tuple[str, ...]:
    """The words of a slash command as Discord sent it: subcommand names, then option values.

    Used when the command does not match the tree this process built (commands synced by an
    older version, missing options): the core's parser then names the problem and the usage.
    Values go in the registry's parameter order; `--name` options are written as such.
    """
    words: list[str] = [] if data.get("name") == root else [str(data.get("name", ""))]
    options = data.get("options") or []
    while options and options[0].get("type") in (1, 2):  # subcommand group, subcommand
        words.append(str(options[0]["name"]))
        options = options[0].get("options") or []
    command, _ = registry.find(tuple(words)) if words else (None, ())
    params = {param.name: (index, param) for index, param in enumerate(command.params)} if command else {}
    given = sorted(options, key=lambda option: params.get(option.get("name"), (len(params), None))[0])
    values = []
    for option in given:
        value = str(option.get("value", ""))
        param = params.get(option.get("name"), (0, None))[1]
        values.append(f"--{param.name}={value}" if param is not None and param.option else value)
    return tuple(token for token in (*words, *values) if token)
