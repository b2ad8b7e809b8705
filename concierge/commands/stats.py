"""The desk's statistics as a command: figures as text, the chart (a PNG) on request."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from concierge.commands.framework import Command, Invocation, Param
from concierge.durations import parse_duration
from concierge.errors import Refused
from concierge.people import Role
from concierge.replies import FileAttachment, Reply
from concierge.stats import DeskStats, chart_png, collect, render_text

log = logging.getLogger(__name__)


def _stats(_session: Session, inv: Invocation, args: dict[str, Any]) -> Reply:
    try:
        since = inv.ctx.now - parse_duration(args["since"] or "7d")
    except ValueError:
        raise Refused("--since looks like 7d, 12h or 30m.") from None
    # Read once the command is recorded, beside the writer: a long period covers many conversations,
    # and relays must not wait for that read.
    return Reply("", read=lambda session: _figures(session, since, chart=args["chart"]))


def _figures(session: Session, since: datetime, *, chart: bool) -> Reply:
    figures = collect(session, since)
    text = render_text(figures)
    if not chart:
        return Reply(text)
    # Drawn after the read, off the database threads (matplotlib is slow to start).
    return Reply(text, finish=lambda: _with_chart(text, figures))


def _with_chart(text: str, figures: DeskStats) -> Reply:
    try:
        data = chart_png(figures)
    except Exception:
        log.exception("could not draw the stats chart")
        return Reply(f"{text}\n\nSorry, the chart could not be drawn this time.")
    title = f"Desk statistics since {figures.since:%Y-%m-%d %H:%M} UTC"
    return Reply(text, attachment=FileAttachment("desk-stats.png", data, "image/png", title))


STATS_COMMANDS = [
    Command(("stats",), (Param("since", option=True),
                         Param("chart", "flag", option=True, help="also send the figures as a picture (PNG)")),
            Role.ADMIN, "conversations, first-response times, targets, ratings (--since 7d, --chart)", _stats),
]
