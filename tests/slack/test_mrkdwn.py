"""Slack markup: inbound text made plain, outbound text escaped, command text split into tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.slack.mrkdwn import command_tokens, escape, from_mrkdwn, to_mrkdwn, to_plain, unescape


@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ("<!channel> please look", "@channel please look"),
        ("<!here|here> now", "@here now"),
        ("<!everyone>", "@everyone"),
        ("ask <!subteam^S0123|@nutrition-team>", "ask @nutrition-team"),
        ("ask <!subteam^S0123>", "ask @S0123"),
        ("thanks <@U0123ABC>", "thanks @U0123ABC"),
        ("thanks <@U0123ABC|bob>", "thanks @bob"),
        ("see <#C0123|general>", "see #general"),
        ("read <https://example.com/a?b=1&amp;c=2|this>", "read this (https://example.com/a?b=1&c=2)"),
        ("<https://example.com>", "https://example.com"),
        ("<mailto:bob@example.com|bob@example.com>", "bob@example.com"),
        ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
        ("&amp;lt; stays literal", "&lt; stays literal"),
    ],
)
def test_typed_text_becomes_plain(typed, plain):
    assert to_plain(typed) == plain


def test_escape_makes_control_sequences_inert():
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


@given(st.text())
def test_escaped_text_has_no_control_sequence_and_round_trips(text):
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert unescape(escaped) == text


@given(st.text())
def test_whatever_a_person_types_is_posted_inert(typed):
    assert "<" not in escape(to_plain(typed))


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("member add <@U0123ABC|carol> premium", ("member", "add", "U0123ABC", "premium")),
        ("member add <@W0123ABC> vip", ("member", "add", "W0123ABC", "vip")),
        ('member add <@U1AA|ann> premium "Ann Lee"', ("member", "add", "U1AA", "premium", "Ann Lee")),
        ("member add <@U1AA|ann> premium \u201cAnn Lee\u201d", ("member", "add", "U1AA", "premium", "Ann Lee")),
        ("member block <@U1AA|ann> she didn't pay", ("member", "block", "U1AA", "she", "didn't", "pay")),
        ("close 3", ("close", "3")),
        ("", ()),
        ("member add discord:1234 premium", ("member", "add", "discord:1234", "premium")),
        ("subscribe tips \u2014hour 8 --tz=Europe/Paris", ("subscribe", "tips", "--hour", "8", "--tz=Europe/Paris")),
    ],
)
def test_command_text_becomes_tokens(text, tokens):
    assert command_tokens(text) == tokens


@pytest.mark.parametrize(
    ("slack", "core"),
    [
        ("*Oats* and _rice_, not ~chips~", "**Oats** and _rice_, not ~~chips~~"),
        ("*two words* before.", "**two words** before."),
        ("2*3*4 and a * b * c", "2*3*4 and a * b * c"),  # arithmetic, not emphasis
        ("snake_case_name", "snake_case_name"),
        ("`*code*` and ```\n*block*\n``` stay, *this* not", "`*code*` and ```\n*block*\n``` stay, **this** not"),
    ],
)
def test_slack_formatting_in_and_out(slack, core):
    assert from_mrkdwn(slack) == core
    assert to_mrkdwn(core) == slack


def test_discord_style_italic_and_bold_read_right_in_slack():
    assert to_mrkdwn("**Bold**, *italic*, __under__ and ~~gone~~") == "*Bold*, _italic_, __under__ and ~gone~"
    assert to_mrkdwn("a ** b") == "a ** b"


def test_command_text_is_read_in_the_cores_formatting():
    assert command_tokens('snippet add carbs "*Oats* first, ~no~ chips"') == (
        "snippet", "add", "carbs", "**Oats** first, ~~no~~ chips")
