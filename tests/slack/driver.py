"""SlackDriver: the shared conversation scenarios played through signed requests to the bolt app.

People are Slack users `U<NAME>` with DM channels `D<NAME>`; what the bot sent is read back
from the fake Web API's recorded calls, as a person would read it in Slack (entities unescaped).
What people type is escaped the way Slack delivers it (`&`, `<`, `>` as entities).
"""

from __future__ import annotations

import json
import time
from typing import Any

from adapters.slack.blocks import action_of
from adapters.slack.mrkdwn import escape, unescape
from tests.contract.driver import tick
from tests.slack.fake_slack import Call
from tests.slack.harness import ADMIN, STAFF, BotUnderTest


def user_id(person: str) -> str:
    return ADMIN if person == "admin" else "U" + person.upper()


def dm_channel(person: str) -> str:
    return "D" + user_id(person)[1:]


class SlackDriver:
    admin = "admin"

    def __init__(self, bot: BotUnderTest) -> None:
        self.bot = bot
        self.fake = bot.fake
        self._delivered: dict[str, dict[str, Any]] = {}  # envelope event id -> the message event it carried
        self._private: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # private answers, with when

    def mention(self, person: str) -> str:
        # What Slack puts in a slash command's text when a user is picked (should_escape on).
        return f"<@{user_id(person)}|{person}>"

    def _ts(self) -> str:
        return self.fake.next_ts()  # the test's clock: a message written now is not "late"

    async def member_writes(self, person: str, text: str, *, event_id: str | None = None) -> None:
        event_id = event_id or self.bot.new_id()
        retry = 1 if event_id in self._delivered else None
        if retry is None:  # as Slack does: the message is in the DM's history, and delivered as an event
            self._delivered[event_id] = self.fake.write(dm_channel(person), user_id(person), escape(text))
        await self.bot.post_event(self._delivered[event_id], event_id=event_id, retry_num=retry)

    async def staff_writes(self, person: str, thread: str, text: str) -> str | None:
        before = len(self.fake.calls)
        await self.bot.post_event(self.fake.write(STAFF, user_id(person), escape(text), thread_ts=thread))
        await self.bot.listeners.idle(timeout=10)
        told = [call for call in self.fake.calls[before:]
                if call.method == "chat.postEphemeral" and call.args.get("user") == user_id(person)]
        return unescape(told[-1].args["text"]) if told else None

    def _card(self, thread: str) -> Call:
        """The card as it shows now: its last update (chat.update of its ts), or the post that opened the thread."""
        opened = next(call for call in self._thread_openers() if call.response["ts"] == thread)
        updates = [call for call in self.fake.calls_to("chat.update")
                   if call.args.get("channel") == opened.response["channel"] and call.args.get("ts") == thread]
        if not updates:
            return opened
        return Call("chat.update", updates[-1].args, updates[-1].token, 200, opened.response)

    def card_updates(self, thread: str) -> int:
        return sum(call.args.get("ts") == thread for call in self.fake.calls_to("chat.update"))

    @staticmethod
    def _buttons(call: Call) -> list[dict[str, Any]]:
        return SlackDriver._buttons_of(call.args)

    @staticmethod
    def _buttons_of(fields: dict[str, Any]) -> list[dict[str, Any]]:
        return [element for block in fields.get("blocks", []) if block["type"] == "actions"
                for element in block["elements"]]

    def _conversation_number(self, thread: str) -> str:
        # Slash commands carry no thread: in a thread's channel, staff name the conversation by
        # the number its card's buttons carry (docs/slack.md).
        return self._buttons(self._card(thread))[0]["value"]

    async def _answer(self, key: str, person: str | None = None) -> str:
        await self.bot.listeners.idle(timeout=10)
        answers = self.fake.responses_to(key)
        assert len(answers) == 1, answers
        assert answers[0]["response_type"] == "ephemeral"
        if person is not None:  # its buttons can be pressed later
            self._private.setdefault(person, []).append((time.monotonic(), answers[0]))
        return unescape(answers[0]["text"])

    async def command(self, person: str, text: str, *, thread: str | None = None) -> str:
        if thread:
            # The number goes where the conversation parameter is: before any `--option`.
            words, _, options = text.partition(" --")
            named = f"{words} {self._conversation_number(thread)}" + (f" --{options}" if options else "")
            key = await self.bot.post_command(user_id(person), STAFF, named)
        else:
            key = await self.bot.post_command(user_id(person), dm_channel(person), text)
        return await self._answer(key, person)

    async def press(self, person: str, thread: str, action: str) -> str:
        card = self._card(thread)
        button = next(b for b in self._buttons(card) if action_of(b["action_id"]) == action)
        message = {"type": "message", "ts": card.response["ts"], "text": card.args["text"],
                   "blocks": card.args["blocks"], "user": "UBOT", "bot_id": "BBOT"}
        key = await self.bot.post_button(user_id(person), STAFF, message, button)
        return await self._answer(key)

    async def press_in_dm(self, person: str, label: str, *, fill: str | None = None) -> str:
        """A button on a DM the bot posted, or on a private answer in the DM (pressed as Slack sends those)."""
        where = {dm_channel(person), user_id(person)}
        posts = [(call.at, call.args, call.response) for call in self.fake.calls_to("chat.postMessage")
                 if call.args.get("channel") in where]
        posts += [(answered_at, answer, None) for answered_at, answer in self._private.get(person, [])]
        posts.sort(key=lambda post: post[0])
        fields, response, button = next((fields, response, button) for _, fields, response in reversed(posts)
                                        for button in self._buttons_of(fields) if button["text"]["text"] == label)
        message = None if response is None else {
            "type": "message", "ts": response["ts"], "text": fields["text"], "blocks": fields["blocks"],
            "user": "UBOT", "bot_id": "BBOT"}
        key = await self.bot.post_button(user_id(person), dm_channel(person), message, button)
        await self.bot.listeners.idle(timeout=10)
        modal = self.fake.modals.get(f"trigger.{key}")
        if modal is None:
            assert fill is None, f"pressing {label!r} opened no form"
            answer = await self._answer(key, person)
        else:
            assert fill is not None and not self.fake.responses_to(key), f"pressing {label!r} asks for text"
            answer = await self._submit(person, modal, fill)
        await self.settle()
        return answer

    async def _submit(self, person: str, modal: dict[str, Any], text: str) -> str:
        """Send the modal: a refusal shows by the text box; otherwise the answer comes privately."""
        before = len(self.fake.calls)
        posted = await self.bot.post_view_submission(user_id(person), modal, text)
        assert posted.status == 200, posted
        await self.bot.listeners.idle(timeout=10)
        if posted.text:
            return " ".join(json.loads(posted.text)["errors"].values())
        [told] = [call for call in self.fake.calls[before:] if call.method == "chat.postEphemeral"]
        assert told.args["user"] == user_id(person) and told.args["channel"] == dm_channel(person), told.args
        return unescape(told.args["text"])

    async def later(self, seconds: float) -> None:
        await tick(self.bot.runtime, self.bot.runtime.concierge.clock, seconds)
        await self.settle()

    async def settle(self) -> None:
        await self.bot.settle()

    def _thread_openers(self) -> list[Call]:
        return [call for call in self.fake.calls_to("chat.postMessage")
                if call.args.get("channel") == STAFF and not call.args.get("thread_ts")]

    def threads(self) -> list[str]:
        return [call.response["ts"] for call in self._thread_openers()]

    def thread_texts(self, thread: str) -> list[str]:
        replies = [call for call in self.fake.calls_to("chat.postMessage") if call.args.get("thread_ts") == thread]
        return [unescape(call.args["text"]) for call in [self._card(thread), *replies]]

    def card(self, thread: str) -> str:
        lines: list[str] = []
        for block in self._card(thread).args.get("blocks", []):
            texts = [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
            lines += [unescape(text["text"]).replace("*", "").replace("\n", ": ", 1)
                      for text in texts if isinstance(text.get("text"), str)]
        return "\n".join(lines)

    def home(self, person: str) -> dict[str, Any]:
        """The App Home view last published for `person`."""
        return [call.args["view"] for call in self.fake.calls_to("views.publish")
                if call.args.get("user_id") == user_id(person)][-1]

    async def press_on_home(self, person: str, action: str, value: str) -> None:
        """Press the Home tab button of `action` (subscribe, unsubscribe) and `value` (a digest)."""
        view = self.home(person)
        button = next(block["accessory"] for block in view["blocks"] if "accessory" in block
                      and action_of(block["accessory"]["action_id"]) == action
                      and block["accessory"]["value"] == value)
        await self.bot.post_home_button(user_id(person), view, button)
        await self.bot.listeners.idle(timeout=10)

    def dms(self, person: str) -> list[str]:
        where = {dm_channel(person), user_id(person)}
        return [unescape(call.args["text"]) for call in self.fake.calls_to("chat.postMessage")
                if call.args.get("channel") in where]
