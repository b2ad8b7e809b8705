"""What only a logged-in client has (its application id) is asked for plainly, not passed on as None."""

from __future__ import annotations

import discord
import pytest

from adapters.discord.cli import _application_id


def test_a_client_that_never_logged_in_has_no_application_id_to_compare_commands_with():
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(RuntimeError, match="not logged in"):
        _application_id(client)  # None would ask Discord for /applications/None/commands


def test_a_logged_in_client_gives_its_application_id():
    client = discord.Client(intents=discord.Intents.none(), application_id=1234)
    assert _application_id(client) == 1234
