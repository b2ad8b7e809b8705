"""Snippets: ready answers experts save once and send with one command."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from concierge.errors import Refused
from concierge.membership import audit
from concierge.people import Context
from concierge.records import Snippet

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def named(session: Session, name: str) -> Snippet:
    snippet = session.exec(select(Snippet).where(Snippet.name == name.lower())).first()
    if snippet is None:
        raise Refused(f"There is no snippet `{name}`. See `/concierge snippet list`.")
    return snippet


def add(session: Session, ctx: Context, *, name: str, text: str, actor: str) -> Snippet:
    """Save (or replace) the snippet called `name`."""
    name = name.lower()
    if not NAME.match(name):
        raise Refused("A snippet name is lowercase letters, digits and dashes, e.g. `hydration`.")
    text = text.strip()
    if not text or len(text) > ctx.settings.max_message_chars:
        raise Refused(f"A snippet's text is 1 to {ctx.settings.max_message_chars} characters.")
    snippet = session.exec(select(Snippet).where(Snippet.name == name)).first()
    if snippet is None:
        snippet = Snippet(name=name, text=text, created_by=actor, created_at=ctx.now)
        session.add(snippet)
    else:
        snippet.text = text
    audit(session, ctx, actor, "snippet.add", name=name)
    return snippet


def remove(session: Session, ctx: Context, *, name: str, actor: str) -> None:
    session.delete(named(session, name))
    audit(session, ctx, actor, "snippet.remove", name=name.lower())


def all_snippets(session: Session) -> list[Snippet]:
    return list(session.exec(select(Snippet).order_by(Snippet.name)).all())
