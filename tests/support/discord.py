"""Shared Discord test steps: the contract's driver, enrolling, opening a conversation, checking pings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import select

import scheduling
from concierge.records import PlatformIdentity
from tests.contract.driver import tick as contract_tick
from tests.discord.fake_discord import answer_text, is_private, member_payload
from tests.discord.harness import DiscordWorld, custom_ids


async def enrol(world: DiscordWorld, *members: str, specialties: str = "nutrition") -> None:
    """`members` (default alice) join on premium; bob answers `specialties`."""
    for member in members or ("alice",):
        await world.slash("admin", f"member add <@{world.user_id(member)}> premium {member}")
    await world.slash("admin", f"expert add <@{world.user_id('bob')}> {specialties} bob")


async def open_conversation(world: DiscordWorld, text: str = "Is coffee fine before a run?") -> int:
    """alice (enrolled) asks; the staff thread it opened."""
    await enrol(world)
    await world.dm("alice", text)
    await world.settle()
    [thread] = world.fake.staff_threads()
    return thread


async def tick(world: DiscordWorld) -> None:
    """One tick of the digest scheduler `concierge run` attaches to this bot's runtime, then the outbox."""
    ticker = scheduling.attach(world.bot.runtime)
    try:
        await ticker.tick()
    finally:
        ticker.shutdown()  # the scheduler's leadership goes with this process
    await world.settle()


class DiscordDriver:
    """The contract's driver: people act through gateway events, answers are read off the fake's records."""

    admin = "admin"

    def __init__(self, world: DiscordWorld) -> None:
        self.world = world
        self._message_ids: dict[str, int] = {}
        self._private: dict[str, list[dict[str, Any]]] = {}  # private answers with buttons, per person

    def mention(self, person: str) -> str:
        return f"<@{self.world.user_id(person)}>"

    async def member_writes(self, person, text, *, event_id=None):
        message_id = None
        if event_id is not None:  # a redelivery carries the same message id (a snowflake)
            message_id = self._message_ids.setdefault(event_id, self.world.fake.new_id())
        await self.world.dm(person, text, message_id=message_id)

    async def staff_writes(self, person, thread, text):
        message = await self.world.write_in_thread(person, int(thread), text)
        told = self.world.bot_posts_after(message)  # its word to staff, in the thread (the outbox has not run)
        return told[-1] if told else None

    async def command(self, person, text, *, thread=None):
        answer = await self.world.slash(person, text, thread_id=int(thread) if thread else None)
        assert is_private(answer), answer
        return answer_text(answer)

    async def press(self, person, thread, action):
        card = self.world.card_of(int(thread))
        custom_id = next(cid for cid in custom_ids(card) if cid.split(":")[1] == action)
        answer = await self.world.press(person, int(thread), custom_id)
        assert is_private(answer), answer
        return answer_text(answer)

    async def press_in_dm(self, person, label, *, fill=None):
        """A button on a DM the bot posted, or on one of its private answers in the DM."""
        fake, dm = self.world.fake, self.world.dm_channel(person)
        posts = [(int(post["id"]), post) for post in fake.posts_in(dm)]
        posts += [(int(answer["id"]), answer) for answer in self._private.get(person, [])]
        posts.sort(key=lambda item: item[0])  # snowflakes grow with time
        message, custom_id = next((post, component["custom_id"]) for _, post in reversed(posts)
                                  for row in post.get("components", []) for component in row["components"]
                                  if component.get("label") == label)
        payload = self.world.interaction(person, 3, {"custom_id": custom_id, "component_type": 2},
                                         fake.channels[dm], message)
        self.world.gateway("INTERACTION_CREATE", payload)
        answer = await fake.answer_to(int(payload["id"]))
        if answer["type"] == 9:  # a modal: the person writes `fill` and sends it
            assert fill is not None, f"pressing {label!r} asks for text: {answer}"
            answer = await self._submit(person, answer["data"], fill)
        else:
            assert fill is None, f"pressing {label!r} opened no form"
        assert is_private(answer), answer
        self._keep(person, answer)
        await self.settle()
        return answer_text(answer)

    async def _submit(self, person, modal, text):
        """Send the modal Discord showed, its one text input filled with `text`."""
        [row] = modal["components"]
        inputs = row.get("components") or [row["component"]]
        assert [item["type"] for item in inputs] == [4] and len(modal["title"]) <= 45, modal
        data = {"custom_id": modal["custom_id"],
                "components": [{"type": 1, "components": [{"type": 4, "custom_id": inputs[0]["custom_id"],
                                                           "value": text}]}]}
        payload = self.world.interaction(person, 5, data, self.world.fake.channels[self.world.dm_channel(person)])
        self.world.gateway("INTERACTION_CREATE", payload)
        return await self.world.fake.answer_to(int(payload["id"]))

    def _keep(self, person, answer):
        """A private answer with buttons, as the message Discord would show (pressable later)."""
        data = answer.get("data") or {}
        if data.get("components"):
            message = self.world.fake.message_payload(self.world.dm_channel(person), self.world.fake.bot,
                                                      data.get("content") or "", components=data["components"])
            message["flags"] = 64
            self._private.setdefault(person, []).append(message)

    async def later(self, seconds):
        await contract_tick(self.world.bot.runtime, self.world.clock, seconds)
        await self.settle()

    async def settle(self):
        await self.world.settle()

    def threads(self):
        return [str(thread) for thread in self.world.fake.staff_threads()]

    def thread_texts(self, thread):
        return self.world.thread_texts(int(thread))

    def card(self, thread):
        message = self.world.card_of(int(thread))
        lines = [message.get("content") or ""]
        for embed in message.get("embeds", []):
            lines += [embed.get("title", ""), embed.get("description", "")]
            lines += [f"{field['name']}: {field['value']}" for field in embed.get("fields", [])]
        return "\n".join(lines)

    def card_updates(self, thread):
        return len(self.world.fake.calls_to("PATCH", rf"/channels/\d+/messages/{int(thread)}"))

    def dms(self, person):
        return self.world.dms(person)


def assert_nobody_pinged(fake, paged: Iterable[int] = ()) -> None:
    """Every message the bot sent (posts, edits, interaction answers) pinged nobody but `paged`.

    `paged` are the users the core pages on purpose (the on-duty experts on a new card): a
    message may allow only them, by id, and only when it names them as `<@id>`; never
    @everyone, a role, or the author of a replied-to message.
    """
    paged = {int(user) for user in paged}
    bodies = fake.message_bodies()
    assert bodies
    for call, body in bodies:
        mentions = body.get("allowed_mentions")
        assert mentions is not None, f"{call.method} {call.path} sent without allowed_mentions"
        assert mentions.get("parse") == [], (call.path, mentions)
        assert not mentions.get("roles") and not mentions.get("replied_user"), mentions
        users = {int(user) for user in mentions.get("users") or []}
        assert users <= paged, (call.path, mentions, paged)
        assert all(f"<@{user}>" in (body.get("content") or "") for user in users), (body.get("content"), users)


async def paged_experts(world: DiscordWorld) -> set[int]:
    """The Discord ids of every expert (all on duty when no hours are set): who a new card may page."""

    def ids(session) -> set[int]:  # noqa: ANN001
        rows = session.exec(select(PlatformIdentity.user_id).where(
            PlatformIdentity.expert_id.is_not(None), PlatformIdentity.platform == "discord")).all()
        return {int(user) for user in rows}

    return await world.bot.runtime.db.run(ids)


async def admins(world: DiscordWorld) -> set[int]:
    """The admins' Discord ids: an overdue question pages them on purpose."""
    return {int(admin.split(":")[1]) for admin in world.settings.admins if admin.startswith("discord:")}


async def slash_with_options(world: DiscordWorld, name: str, words: list[str], options: list[dict[str, Any]],
                             thread_id: int | None = None) -> dict[str, Any]:
    """`/concierge <words>` with named options filled in, as the client sends them."""
    data = world.command_data(words)
    data["options"][0]["options"].extend(options)
    for option in options:
        if option["type"] == 6:  # a user option comes with the user resolved
            user = world.fake.users[int(option["value"])]
            data["resolved"]["users"][option["value"]] = user
            data["resolved"]["members"][option["value"]] = {
                key: value for key, value in member_payload(user).items() if key != "user"}
    payload = world.interaction(name, 2, data, world.channel_payload(thread_id))
    world.gateway("INTERACTION_CREATE", payload)
    answer = await world.fake.answer_to(int(payload["id"]))
    await world.settle()
    return answer


def written_while_away(world, clock, thread: str) -> None:
    """Three DMs from alice and an expert's reply in `thread`, written while the bot is stopped (no gateway events)."""
    clock.advance(600)
    for text in ("one", "two", "three"):
        world.dm_offline("alice", text)
        clock.advance(1)
    world.thread_message("bob", thread, "An hour before is fine.")
    clock.advance(600)
