"""The states a conversation and a message can be in, as stored (the enum values are the column strings)."""

from __future__ import annotations

from enum import StrEnum


class ConversationStatus(StrEnum):
    """`Conversation.status`."""

    CHOOSING = "choosing"  # the member still picks its topic; no staff thread yet
    OPEN = "open"  # with the experts (answered or not)
    CLOSED = "closed"  # closed by staff or as idle; a new message opens a new conversation


class Direction(StrEnum):
    """`Message.direction`: who a transcript line is from, and where it went."""

    IN = "in"  # from the member
    OUT = "out"  # to the member (an expert's answer, a snippet, a closing word)
    INTERNAL = "internal"  # a staff note in the thread, never sent to the member
    EVENT = "event"  # what the concierge did (claimed, closed, escalated), shown to staff
    DROPPED = "dropped"  # from the member, kept but not passed on: written faster than the rate limit
