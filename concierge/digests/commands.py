"""The digest commands: the catalogue for admins and experts, subscriptions for members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func
from sqlmodel import Session, col, select

from concierge.commands import Command, Invocation, Param
from concierge.digests import catalogue, subscriptions
from concierge.digests.cadence import CADENCES, Cadence, CadenceError, parse_quiet, parse_weekday
from concierge.durations import whole_number
from concierge.errors import Refused
from concierge.membership import audit
from concierge.outbox.kinds import POST
from concierge.outbox.queue import enqueue
from concierge.people import Role, member_of
from concierge.platform import Address, Button, Card, Outbound
from concierge.records import Subscription
from concierge.replies import Reply
from concierge.tables import saved_id

DIGEST = Param("digest", help="the digest's short name, e.g. nutrition-tips")


def _cadence_word(value: str | None, default: str) -> str:
    value = (value or default).lower()
    if value not in CADENCES:
        raise Refused(f"The cadence must be one of {', '.join(CADENCES)}.")
    return value


def _member(session: Session, inv: Invocation) -> Row:
    member = member_of(session, inv.address.platform, inv.address.user)
    if member is None:
        raise Refused("Only members can subscribe to digests.")
    return member


def _create(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    cadence = _cadence_word(args["cadence"], "weekly")
    digest = catalogue.create_digest(session, slug=args["digest"], title=args["title"], cadence=cadence,
                                     now=inv.ctx.now)
    audit(session, inv.ctx, inv.actor, "digest.create", digest=digest.slug, cadence=cadence)
    return f"Digest `{digest.slug}` ({digest.title}, {cadence}) created. Add items with " \
           f"`/concierge digest add {digest.slug} <text>`."


def _list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    digests = catalogue.list_digests(session, include_archived=True)
    if not digests:
        return "No digests yet. Create one with `/concierge digest create <digest> <title>`."
    counts = dict(session.exec(select(Subscription.digest_id, func.count()).where(Subscription.active)
                               .group_by(col(Subscription.digest_id))).all())
    return "\n".join(f"`{d.slug}`: {d.title} ({d.cadence}, {d.status}, {counts.get(saved_id(d), 0)} subscribers)"
                     for d in digests)


def _archive(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    digest = catalogue.archive_digest(session, args["digest"])
    audit(session, inv.ctx, inv.actor, "digest.archive", digest=digest.slug)
    return f"Digest `{digest.slug}` archived: no more editions or deliveries."


def _add(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    item = catalogue.add_item(session, slug=args["digest"], text=args["text"], author=inv.actor, now=inv.ctx.now)
    return f"Added to the next edition of `{args['digest'].lower()}`: {item.text}"


def _preview(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    digest = catalogue.digest_named(session, args["digest"])
    items = catalogue.pending_items(session, digest)
    if not items:
        return f"The next edition of `{digest.slug}` is empty so far."
    return catalogue.render(digest.title, digest.slug, 0, catalogue.compose_text(items)).replace(" #0", " (next)")


def _test(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    """Send the next edition to the person asking, and to nobody else."""
    digest = catalogue.digest_named(session, args["digest"])
    items = catalogue.pending_items(session, digest)
    text = catalogue.render(digest.title, digest.slug, 0, catalogue.compose_text(items) or "(no items yet)")
    to = Address(inv.address.platform, user=inv.address.user)
    enqueue(session, key=f"digest-test:{inv.event_id}", kind=POST, address=to,
            message=Outbound(text.replace(" #0", " (test)")), now=inv.ctx.now)
    return "A test copy is on its way to your direct messages."


def _publish(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    digest = catalogue.digest_named(session, args["digest"])
    edition = catalogue.compose_edition(session, digest, inv.ctx.now)
    if edition is None:
        return f"Nothing to publish: `{digest.slug}` has no new items."
    audit(session, inv.ctx, inv.actor, "digest.publish", digest=digest.slug, edition=edition.number)
    return f"Edition #{edition.number} of `{digest.slug}` published; subscribers get it at their next delivery time."


def _catalogue(session: Session, inv: Invocation, args: dict[str, Any]) -> Reply:
    digests = catalogue.list_digests(session)
    if not digests:
        return Reply("There are no digests to subscribe to yet.")
    member = member_of(session, inv.address.platform, inv.address.user)
    mine = {digest.id for _, digest in subscriptions.subscriptions_of(session, member.id)} if member else set()
    lines, buttons = [], []
    for digest in digests:
        subscribed = digest.id in mine
        lines.append(f"`{digest.slug}`: {digest.title} ({digest.cadence})" + (" [subscribed]" if subscribed else ""))
        buttons.append(Button(f"Unsubscribe {digest.slug}", "unsubscribe", digest.slug) if subscribed
                       else Button(f"Subscribe {digest.slug}", "subscribe", digest.slug, "primary"))
    text = "\n".join(lines) + "\nSubscribe with `/concierge subscribe <digest> [--cadence daily|weekly|monthly] " \
                              "[--day mon|1-28] [--hour 0-23] [--tz Europe/Paris] [--quiet 22-7]`."
    return Reply(text, card=Card(title="Digests", buttons=tuple(buttons)))


def _subscribe(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    member = _member(session, inv)
    digest = catalogue.digest_named(session, args["digest"])
    every = _cadence_word(args["cadence"], digest.cadence)
    try:
        weekday, day_of_month = 0, 1
        if args["day"]:
            if every == "monthly":
                day = whole_number(args["day"], 0, 10**6)  # the cadence says what the range is
                if day is None:
                    raise CadenceError("for a monthly digest, --day is a day of the month (1-28)")
                day_of_month = day
            else:
                weekday = parse_weekday(args["day"])
        hour = 9
        if args["hour"] is not None:
            given = whole_number(args["hour"], 0, 10**6)  # the cadence says what the range is
            if given is None:
                raise CadenceError("--hour is a number from 0 to 23")
            hour = given
        quiet = parse_quiet(args["quiet"]) if args["quiet"] else (None, None)
        cadence = Cadence(every=every, weekday=weekday, day_of_month=day_of_month, hour=hour,
                          time_zone=args["tz"] or inv.ctx.settings.default_time_zone,
                          quiet_start=quiet[0], quiet_end=quiet[1])
    except CadenceError as problem:
        text = str(problem)
        raise Refused(f"{text[:1].upper()}{text[1:]}. Nothing was changed.") from None
    how = "button" if inv.via == "button" else "command"
    subscription, digest = subscriptions.subscribe(
        session, member_id=member.id, slug=digest.slug, cadence=cadence, platform=inv.address.platform,
        user_id=inv.address.user, how=how, actor=inv.actor,
        policy_version=inv.ctx.settings.consent_policy_version, now=inv.ctx.now)
    return (f"Subscribed to {digest.title}: {cadence.describe()}. First delivery after "
            f"{subscription.next_due_at:%Y-%m-%d %H:%M} UTC. Stop any time: `/concierge unsubscribe {digest.slug}`.")


def _unsubscribe(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    member = _member(session, inv)
    how = "button" if inv.via == "button" else "command"
    digest = subscriptions.unsubscribe(session, member_id=member.id, slug=args["digest"], how=how,
                                       platform=inv.address.platform, actor=inv.actor,
                                       policy_version=inv.ctx.settings.consent_policy_version, now=inv.ctx.now)
    return f"Unsubscribed from {digest.title}. You will not get it again."


def _mine(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    member = _member(session, inv)
    rows = subscriptions.subscriptions_of(session, member.id)
    if not rows:
        return "You have no subscriptions. See `/concierge digests`."
    return "\n".join(f"`{digest.slug}`: {subscriptions.cadence_of(sub).describe()}" for sub, digest in rows)


DIGEST_COMMANDS = [
    Command(("digest", "create"), (DIGEST, Param("title", "text"), Param("cadence", option=True)), Role.ADMIN,
            "create a digest (--cadence daily|weekly|monthly, default weekly)", _create),
    Command(("digest", "list"), (), Role.ADMIN, "all digests with their subscriber counts", _list),
    Command(("digest", "archive"), (DIGEST,), Role.ADMIN, "stop a digest", _archive),
    Command(("digest", "add"), (DIGEST, Param("text", "text")), Role.EXPERT,
            "add an item to a digest's next edition", _add),
    Command(("digest", "preview"), (DIGEST,), Role.EXPERT, "show the next edition", _preview),
    Command(("digest", "test"), (DIGEST,), Role.EXPERT, "send the next edition to yourself only", _test),
    Command(("digest", "publish"), (DIGEST,), Role.ADMIN, "compose the next edition now", _publish),
    Command(("digests",), (), Role.MEMBER, "the digests you can subscribe to", _catalogue),
    Command(("subscribe",), (DIGEST, Param("cadence", option=True), Param("day", option=True),
                             Param("hour", option=True), Param("tz", option=True), Param("quiet", option=True)),
            Role.MEMBER, "get a digest, at your local hour", _subscribe),
    Command(("unsubscribe",), (DIGEST,), Role.MEMBER, "stop a digest, at once", _unsubscribe),
    Command(("subscriptions",), (), Role.MEMBER, "the digests you get", _mine),
]
