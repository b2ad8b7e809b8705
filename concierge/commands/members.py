"""Admin commands about members and their tiers: enrol, link, move, block, remove, list; define tiers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from concierge import membership, tiers
from concierge.commands.arguments import USER, user_of
from concierge.commands.framework import Command, Invocation, Param
from concierge.durations import whole_number
from concierge.errors import Refused
from concierge.people import Role, clean_name


def _member_add(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    member = membership.enrol_member(session, inv.ctx, platform=platform, user=user, tier=args["tier"],
                                     name=clean_name(args["name"] or inv.names.get(user), user),
                                     name_source="admin" if args["name"] else "platform", actor=inv.actor)
    return f"{member.display_name} is now a {args['tier']} member."


def _member_link(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    other_platform, sep, other_user = args["identity"].partition(":")
    if not sep or not re.fullmatch(r"[a-z]{1,32}", other_platform.lower()) \
            or not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", other_user):
        raise Refused("Name the other identity as platform:id, e.g. `discord:80351110224678912` or `slack:U0123ABC`.")
    member = membership.link_identity(session, inv.ctx, platform=platform, user=user,
                                      other_platform=other_platform.lower(), other_user=other_user, actor=inv.actor)
    return (f"{member.display_name} can now also write from {other_platform.lower()}:{other_user}: one history, "
            "one quota, the same subscriptions; answers go where they last wrote.")


def _member_remove(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    member = membership.remove_member(session, inv.ctx, platform=platform, user=user, actor=inv.actor)
    return f"{member.display_name} is no longer a member; their conversations are kept."


def _member_tier(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    member = membership.set_member_tier(session, inv.ctx, platform=platform, user=user, tier=args["tier"],
                                        actor=inv.actor)
    return f"{member.display_name} is now on tier {args['tier']}."


def _member_block(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    until = None
    if args["days"] is not None:
        days = whole_number(args["days"], 1, 3650)
        if days is None:
            raise Refused("--days is a whole number of days from 1 to 3650. Nothing was changed.")
        until = inv.ctx.now + timedelta(days=days)
    member = membership.set_member_blocked(session, inv.ctx, platform=platform, user=user, blocked=True,
                                           reason=args["reason"] or "", actor=inv.actor, until=until)
    ends = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    return f"{member.display_name} is blocked{ends}; their messages are no longer relayed."


def _member_unblock(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    member = membership.set_member_blocked(session, inv.ctx, platform=platform, user=user, blocked=False,
                                           reason="", actor=inv.actor)
    return f"{member.display_name} is unblocked."


MEMBERS_PER_PAGE = 40  # about one Discord message (2,000 characters) of typical names


def _member_list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    page = args["page"] or 1
    rows, total = membership.list_members(session, offset=(page - 1) * MEMBERS_PER_PAGE, limit=MEMBERS_PER_PAGE)
    if not total:
        return "No members yet. Add one with `/concierge member add <user> <tier>`."
    pages = -(-total // MEMBERS_PER_PAGE)
    if page > pages:
        raise Refused(f"There {'is 1 page' if pages == 1 else f'are {pages} pages'} of members; "
                      f"ask for one from 1 to {pages}.")
    lines = [f"{member.display_name} ({tier}){' [blocked]' if member.blocked else ''}" for member, tier in rows]
    if pages == 1:
        return "\n".join(lines)
    first = (page - 1) * MEMBERS_PER_PAGE + 1
    header = f"Members {first}-{first + len(rows) - 1} of {total} (page {page} of {pages}):"
    footer = [f"Next: `/concierge member list --page {page + 1}`"] if page < pages else []
    return "\n".join([header, *lines, *footer])


def _tier_set(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    tier = tiers.set_tier(session, inv.ctx, name=args["tier"], quota=args["quota"], target=args["target"],
                          specialties=args["specialties"], actor=inv.actor)
    return f"Tier {tiers.describe(tier)}."


def _tier_list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    found = tiers.list_tiers(session)
    if not found:
        return "No tiers yet. Define one with `/concierge tier set <tier> --quota 10/month --target 4h`."
    return "\n".join(tiers.describe(tier) for tier in found)


MEMBER_COMMANDS = [
    Command(("member", "add"), (USER, Param("tier"), Param("name", "text", optional=True)), Role.ADMIN,
            "enrol a member in a tier", _member_add),
    Command(("member", "remove"), (USER,), Role.ADMIN, "end a membership (transcripts are kept)", _member_remove),
    Command(("member", "link"), (USER, Param("identity", help="the same person elsewhere, as platform:id")),
            Role.ADMIN, "link another platform's identity to a member (one history, one quota)", _member_link),
    Command(("member", "tier"), (USER, Param("tier")), Role.ADMIN, "move a member to another tier", _member_tier),
    Command(("member", "block"), (USER, Param("reason", "text", optional=True), Param("days", option=True)),
            Role.ADMIN, "stop relaying a member's messages (--days N: for N days)", _member_block),
    Command(("member", "unblock"), (USER,), Role.ADMIN, "relay a blocked member's messages again", _member_unblock),
    Command(("member", "list"), (Param("page", "int", option=True),), Role.ADMIN,
            f"list the members and their tiers, {MEMBERS_PER_PAGE} a page (--page 2)", _member_list),
    Command(("tier", "set"), (Param("tier"), Param("quota", option=True), Param("target", option=True),
                              Param("specialties", option=True)), Role.ADMIN,
            "define a tier: --quota 10/month, --target 4h, --specialties training,nutrition", _tier_set),
    Command(("tier", "list"), (), Role.ADMIN, "the tiers and what they include", _tier_list),
]
