"""Admin commands about experts: add, remove, working hours, list."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from concierge import duty, membership
from concierge.commands.arguments import USER, user_of
from concierge.commands.framework import Command, Invocation, Param
from concierge.errors import Refused
from concierge.people import Role, clean_name, expert_of
from concierge.records import Expert


def _expert_add(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    expert = membership.add_expert(session, inv.ctx, platform=platform, user=user, specialties=args["specialties"],
                                   name=clean_name(args["name"] or inv.names.get(user), user), actor=inv.actor)
    return f"{expert.display_name} answers {', '.join(args['specialties'])} questions."


def _expert_remove(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    expert = membership.remove_expert(session, inv.ctx, platform=platform, user=user, actor=inv.actor)
    return f"{expert.display_name} is no longer an expert."


def _expert_hours(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    platform, user = user_of(inv, args["user"])
    found = expert_of(session, platform, user)
    expert = session.get(Expert, found.id) if found is not None else None
    if expert is None:
        raise Refused(f"{args['user']} is not an expert.")
    duty.set_hours(expert, args["hours"], args["tz"], args["days"])
    membership.audit(session, inv.ctx, inv.actor, "expert.hours", expert_id=expert.id, hours=args["hours"])
    return (f"{expert.display_name} is on duty {expert.work_start}:00-{expert.work_end}:00 {expert.time_zone}, "
            f"{expert.work_days.replace(',', ', ')}.")


def _expert_list(session: Session, inv: Invocation, args: dict[str, Any]) -> str:
    experts = membership.list_experts(session)
    if not experts:
        return "No experts yet. Add one with `/concierge expert add <user> <specialties>`."
    return "\n".join(f"{expert.display_name}: {expert.specialties.replace(',', ', ')}" for expert in experts)


EXPERT_COMMANDS = [
    Command(("expert", "add"), (USER, Param("specialties", "list"), Param("name", "text", optional=True)),
            Role.ADMIN, "make someone an expert for comma-separated specialties", _expert_add),
    Command(("expert", "remove"), (USER,), Role.ADMIN, "remove an expert", _expert_remove),
    Command(("expert", "hours"), (USER, Param("hours"), Param("tz", option=True), Param("days", option=True)),
            Role.ADMIN, "set an expert's working hours, e.g. 9-17 --tz Europe/Paris --days mon-fri", _expert_hours),
    Command(("expert", "list"), (), Role.ADMIN, "list the experts and their specialties", _expert_list),
]
