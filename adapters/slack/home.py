"""The App Home tab: a member's open questions and digests; for staff, who is waiting and for how long.

A member's digests each carry an *Unsubscribe* button, and the digests of the catalogue they
do not get yet a *Subscribe* button; both reach the core as the `unsubscribe` / `subscribe`
commands (how="button" in the consent ledger), after which the tab is published again.
"""

from __future__ import annotations

from adapters.slack.blocks import Section
from adapters.slack.mrkdwn import escape
from concierge.home import Home
from concierge.platform import Button

QUESTION_PREVIEW = 200


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUESTION_PREVIEW else text[: QUESTION_PREVIEW - 1] + "\u2026"


def render_home(home: Home) -> list[Section | str]:
    """The paragraphs (escaped mrkdwn, some with a button) of a Home tab."""
    sections: list[Section | str] = []
    if home.staff_open is not None:
        sections.append(
            f"*Staff*: {home.staff_open} open conversation{'s' if home.staff_open != 1 else ''}. They are threads in "
            "the staff channel; type `/concierge help` for the commands you can use."
        )
        if home.queue:  # who is waiting and for how long (`/concierge queue`)
            sections.append(escape(home.queue))
    if home.notice:
        sections.append(escape(home.notice))
    if not home.is_member:
        return sections
    sections.extend(_questions(home))
    sections.extend(_digests(home))
    return sections


def _questions(home: Home) -> list[str]:
    if not home.questions:
        return ["You have no open questions. Send me a direct message (the *Messages* tab) to ask one."]
    sections = [f"*Your open questions* ({len(home.questions)})"]
    for question in home.questions:
        state = "answered" if question.answered else "waiting for an expert"
        text = escape(_preview(question.first_text)) if question.first_text else "(no text)"
        sections.append(
            f"*#{question.id}* {escape(question.specialty)}, asked "
            f"{question.opened_at:%Y-%m-%d %H:%M} UTC, {state}\n>{text}"
        )
    return sections


def _digests(home: Home) -> list[Section | str]:
    """The member's subscriptions (Unsubscribe each), then the active digests they do not get (Subscribe)."""
    sections: list[Section | str] = []
    if home.subscribed:
        sections.append(f"*Your digests* ({len(home.subscribed)}), delivered by direct message. Stop one with its "
                        "*Unsubscribe* button or `/concierge unsubscribe <digest>`.")
        sections.extend(
            Section(f"`{escape(entry.slug)}` {escape(entry.title)}: {escape(entry.schedule)}",
                    Button("Unsubscribe", "unsubscribe", entry.slug, "danger"))
            for entry in home.subscribed
        )
    if home.offered:
        sections.append("*Digests you can subscribe to*. *Subscribe* uses the digest's usual schedule (the "
                        "confirmation shows it); to choose the day, hour, time zone or quiet hours, type "
                        "`/concierge subscribe <digest> --cadence daily|weekly|monthly --day mon --hour 8 "
                        "--tz Europe/Paris --quiet 22-7`.")
        sections.extend(
            Section(f"`{escape(entry.slug)}` {escape(entry.title)} ({escape(entry.schedule)})",
                    Button("Subscribe", "subscribe", entry.slug, "primary"))
            for entry in home.offered
        )
    return sections
