"""Card button presses and form submissions, handed to the core as `ButtonPressed` and `FormSubmitted`.

Kept apart from the rendering (cards.py, forms.py), which `interactions.py` uses to answer:
this module depends on both, and neither depends on it.
"""

from __future__ import annotations

import discord
from discord.ext import commands

from adapters.discord.cards import TEMPLATE, CardButton
from adapters.discord.forms import submission_of
from adapters.discord.interactions import address_of, answer
from concierge.inbound import ButtonPressed, FormSubmitted


class CardPress(CardButton, template=TEMPLATE):
    """A press on any card button ever sent, matched by its custom id (registered as a dynamic item)."""

    async def callback(self, interaction: discord.Interaction) -> None:
        await answer(interaction, ButtonPressed(str(interaction.id), address_of(interaction), self.action, self.value))


class FormCog(commands.Cog):
    """A submitted form modal, matched by its custom id (one sent before a restart still counts)."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        submitted = submission_of(interaction)
        if submitted is None:
            return
        action, value, text = submitted
        await answer(interaction, FormSubmitted(str(interaction.id), address_of(interaction), action, value, text))
