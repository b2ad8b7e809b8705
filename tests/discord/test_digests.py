"""Digests on Discord through the real code path (gateway interactions, loopback REST API), SQLite and PostgreSQL.

Admins and experts build the catalogue with `/concierge` app commands, a member subscribes from
their DM with the bot, the digest scheduler plans and the outbox delivers into the member's DM
(POST /users/@me/channels, then the message) with an Unsubscribe button whose custom id keeps
working after a restart; pressing it revokes the consent (how="button") before anything else is
sent.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from concierge.digests.audit import consent_violations
from concierge.records import ConsentEvent, Digest, OutboxItem
from tests.discord.fake_discord import answer_text, is_private
from tests.discord.harness import DiscordWorld, custom_ids
from tests.support.discord import assert_nobody_pinged, enrol, tick

DANGER, PRIMARY = 4, 1  # Discord's button styles


async def command(world: DiscordWorld, name: str, words: str, *, in_dm: bool = False,
                  **options: str) -> dict[str, Any]:
    """`name` runs `/concierge <words>` (in the staff channel, or their DM with the bot), with named options."""
    data = world.command_data(words.split())
    leaf = data["options"][0]
    while leaf.get("options") and leaf["options"][0]["type"] in (1, 2):
        leaf = leaf["options"][0]
    leaf.setdefault("options", []).extend({"type": 3, "name": key, "value": value} for key, value in options.items())
    channel = world.fake.channels[world.dm_channel(name)] if in_dm else world.channel_payload()
    payload = world.interaction(name, 2, data, channel)
    world.gateway("INTERACTION_CREATE", payload)
    answer = await world.fake.answer_to(int(payload["id"]))
    await world.settle()
    assert is_private(answer), answer
    return answer


async def say(world: DiscordWorld, name: str, words: str, *, in_dm: bool = False, **options: str) -> str:
    return answer_text(await command(world, name, words, in_dm=in_dm, **options))


def digest_posts(world: DiscordWorld, name: str) -> list[dict[str, Any]]:
    """Digest messages the bot posted into `name`'s DM (the bodies it sent)."""
    path = rf"/channels/{world.dm_channel(name)}/messages"
    return [call.json for call in world.fake.calls_to("POST", path) if "tips #" in (call.json.get("content") or "")]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [component for row in message.get("components") or [] for component in row["components"]]


def ledger(world: DiscordWorld) -> list[tuple[str, str, str, str]]:
    def read(session):  # noqa: ANN001
        rows = session.exec(select(ConsentEvent, Digest).join(Digest, Digest.id == ConsentEvent.digest_id)
                            .order_by(ConsentEvent.id)).all()
        return [(digest.slug, event.action, event.how, event.platform) for event, digest in rows]

    return world.bot.runtime.db.run_sync(read)


def audit(world: DiscordWorld) -> list[str]:
    return world.bot.runtime.db.run_sync(consent_violations)


async def press_in_dm(world: DiscordWorld, name: str, message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    """`name` presses a button on a message in their DM with the bot (a post, or a private answer)."""
    payload = world.interaction(name, 3, {"custom_id": custom_id, "component_type": 2},
                                world.fake.channels[world.dm_channel(name)], message)
    world.gateway("INTERACTION_CREATE", payload)
    answer = await world.fake.answer_to(int(payload["id"]))
    await world.settle()
    assert is_private(answer), answer
    return answer


async def test_a_digest_arrives_in_the_dm_with_an_unsubscribe_button_that_works_after_a_restart(world, clock):
    await enrol(world)
    assert "created" in await say(world, "admin", "digest create nutrition-tips Weekly nutrition tips",
                                  cadence="weekly")
    assert "Added to the next edition" in await say(
        world, "bob", "digest add nutrition-tips Hydrate: 500 ml two hours before runs, @everyone.")
    answer = await say(world, "alice", "subscribe nutrition-tips", in_dm=True, cadence="daily", hour="10")
    assert "Subscribed to Weekly nutrition tips: every day at 10:00 UTC" in answer
    assert "Edition #1" in await say(world, "admin", "digest publish nutrition-tips")

    await tick(world)
    assert digest_posts(world, "alice") == [], "not before her hour"
    clock.advance(3600)
    await tick(world)
    [post] = digest_posts(world, "alice")
    # The outbox addressed her by user id alone: the DM was opened first.
    assert [int(call.json["recipient_id"]) for call in world.fake.calls_to("POST", r"/users/@me/channels")] == [
        world.user_id("alice")]
    assert post["content"].startswith("Weekly nutrition tips #1\n- Hydrate: 500 ml two hours before runs, @everyone.")
    assert post["content"].endswith("To stop: /concierge unsubscribe nutrition-tips"), "the text form of unsubscribing"
    assert not post.get("embeds"), "the text carries the title: no embed repeats it"
    assert post["allowed_mentions"]["parse"] == [], "@everyone in an item pings nobody"
    [button] = buttons(post)
    assert (button["type"], button["label"], button["style"], button["custom_id"]) == (
        2, "Unsubscribe", DANGER, "concierge:unsubscribe:nutrition-tips")
    assert_nobody_pinged(world.fake)

    [message_id] = [int(m["id"]) for m in world.fake.posts_in(world.dm_channel("alice")) if "tips #1" in m["content"]]
    await world.restart()  # a new process that never sent this message
    clock.advance(30)  # she reads it, then presses
    answer = await press_in_dm(world, "alice", world.fake.messages[message_id], button["custom_id"])
    assert answer_text(answer).startswith("Unsubscribed from Weekly nutrition tips.")
    assert ledger(world) == [("nutrition-tips", "granted", "command", "discord"),
                             ("nutrition-tips", "revoked", "button", "discord")]
    again = await press_in_dm(world, "alice", world.fake.messages[message_id], button["custom_id"])
    assert "You are not subscribed" in answer_text(again), "a second press changes nothing"

    await say(world, "bob", "digest add nutrition-tips Sleep eight hours.")
    assert "Edition #2" in await say(world, "admin", "digest publish nutrition-tips")
    for _ in range(3):
        clock.advance(86400)
        await tick(world)
    assert len(digest_posts(world, "alice")) == 1, "nothing after unsubscribing"
    deliveries = world.bot.runtime.db.run_sync(lambda session: session.exec(
        select(OutboxItem.edition_id, OutboxItem.status).where(OutboxItem.edition_id.is_not(None))).all())
    assert [tuple(row) for row in deliveries] == [(1, "sent")], "edition 2 was never even queued for her"
    assert audit(world) == []
    assert_nobody_pinged(world.fake)


async def test_the_catalogue_answer_has_subscribe_buttons_that_work(world, clock):
    await enrol(world)
    long_slug = "marathon-" + "x" * 54  # the longest name a digest can have (63 characters)
    await say(world, "admin", "digest create nutrition-tips Weekly nutrition tips")
    await say(world, "admin", f"digest create {long_slug} Marathon build-up", cadence="daily")
    answer = await command(world, "alice", "digests", in_dm=True)
    assert "`nutrition-tips`: Weekly nutrition tips (weekly)" in answer_text(answer)
    assert [(b["label"], b["style"], b["custom_id"]) for b in buttons(answer["data"])] == [
        (f"Subscribe {long_slug}", PRIMARY, f"concierge:subscribe:{long_slug}"),
        ("Subscribe nutrition-tips", PRIMARY, "concierge:subscribe:nutrition-tips")]

    # Pressed on the private answer, by a process that never sent it.
    await world.restart()
    private = world.fake.message_payload(world.dm_channel("alice"), world.fake.bot, answer_text(answer),
                                         components=answer["data"]["components"])
    private["flags"] = 64
    for custom_id in custom_ids(private):
        assert answer_text(await press_in_dm(world, "alice", private, custom_id)).startswith("Subscribed to ")
    assert ledger(world) == [(long_slug, "granted", "button", "discord"),
                             ("nutrition-tips", "granted", "button", "discord")]
    listing = await say(world, "alice", "subscriptions", in_dm=True)
    assert "`nutrition-tips`: every mon at 09:00 UTC" in listing and f"`{long_slug}`: every day" in listing
    refreshed = await command(world, "alice", "digests", in_dm=True)
    assert [b["custom_id"] for b in buttons(refreshed["data"])] == [
        f"concierge:unsubscribe:{long_slug}", "concierge:unsubscribe:nutrition-tips"]

    # The text form of unsubscribing, as every digest message spells it.
    assert (await say(world, "alice", f"unsubscribe {long_slug}", in_dm=True)).startswith(
        "Unsubscribed from Marathon build-up.")
    assert ledger(world)[-1] == (long_slug, "revoked", "command", "discord")

    # The button subscription delivers, with its own Unsubscribe button.
    await say(world, "bob", "digest add nutrition-tips Carbs the night before.")
    await say(world, "admin", "digest publish nutrition-tips")
    for _ in range(6):
        clock.advance(86400)
        await tick(world)
    [post] = digest_posts(world, "alice")
    assert [b["custom_id"] for b in buttons(post)] == ["concierge:unsubscribe:nutrition-tips"]
    assert audit(world) == []
    assert_nobody_pinged(world.fake)
