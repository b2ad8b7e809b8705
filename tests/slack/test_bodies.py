"""Signed but malformed bodies get a 400 and one log line, never a traceback; unsigned ones still a 401."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest

from concierge.records import InboxItem
from tests.conftest import rows

MALFORMED = [
    ("{not json", "application/json"),
    ("[1, 2, 3]", "application/json"),
    (json.dumps({"type": "event_callback", "event_id": "Ev1", "event": None}), "application/json"),
    (json.dumps({"type": "event_callback", "event_id": "Ev2", "event": "message"}), "application/json"),
    (urlencode({"payload": "{not json"}), "application/x-www-form-urlencoded"),
    (urlencode({"payload": "[1]"}), "application/x-www-form-urlencoded"),
    (urlencode({"payload": json.dumps({"type": "block_actions", "user": "U1", "actions": []})}),
     "application/x-www-form-urlencoded"),
    (b"\xff\xfe".decode("latin-1"), "application/json"),
]


@pytest.mark.parametrize("body,content_type", MALFORMED)
async def test_a_signed_malformed_body_gets_400_and_a_line_without_a_traceback(bot, body, content_type, caplog):
    caplog.set_level(logging.INFO)
    posted = await bot.post(body, content_type)
    assert posted.status == 400, posted
    assert not [record for record in caplog.records if record.exc_info], "no traceback"
    assert any("malformed Slack request" in record.getMessage() for record in caplog.records)
    assert rows(bot.runtime, InboxItem) == []


async def test_an_unsigned_malformed_body_is_still_refused_as_unsigned(bot):
    posted = await bot.post("{not json", "application/json", secret="not-the-secret")
    assert posted.status == 401


async def test_a_me_message_is_relayed_like_any_message(desk_bot):
    from tests.slack.driver import SlackDriver, dm_channel, user_id

    d = SlackDriver(desk_bot)
    await d.command("admin", f"member add {d.mention('alice')} premium alice")
    await d.command("admin", f"expert add {d.mention('bob')} nutrition bob")
    message = desk_bot.fake.write(dm_channel("alice"), user_id("alice"), "waves hello", subtype="me_message")
    await desk_bot.post_event({**message, "channel_type": "im"})
    await desk_bot.settle()
    [thread] = d.threads()
    assert "waves hello" in d.thread_texts(thread)[0]


async def test_wrong_typed_fields_are_read_as_far_as_they_can_be(desk_bot, caplog):
    from tests.slack.driver import SlackDriver, dm_channel, user_id

    caplog.set_level(logging.INFO)
    d = SlackDriver(desk_bot)
    await d.command("admin", f"member add {d.mention('alice')} premium alice")
    await d.command("admin", f"expert add {d.mention('bob')} nutrition bob")
    base = {"type": "message", "channel": dm_channel("alice"), "channel_type": "im", "user": user_id("alice")}
    for number, odd in enumerate(({"text": 123}, {"text": ["a", "list"]}, {"text": "With files", "files": "x"},
                                  {"text": "Sized", "files": [{"name": "a.pdf", "permalink": "https://x", "size": "big"}]})):
        posted = await desk_bot.post_event({**base, **odd, "ts": f"1700000000.00010{number}"})
        assert posted.status == 200
    edit = {**base, "subtype": "message_changed", "message": "not an object", "ts": "1700000001.000100"}
    assert (await desk_bot.post_event(edit)).status == 200
    await desk_bot.settle()
    assert not [record for record in caplog.records if record.exc_info], "no traceback"
    asked = [text for text in d.dms("alice") if "could not read that message" in text]
    assert len(asked) == 2, d.dms("alice")  # the two messages without readable text
    [thread] = d.threads()
    assert any("With files" in text for text in d.thread_texts(thread))
    assert any("Sized" in text and "a.pdf" in text for text in d.thread_texts(thread))
