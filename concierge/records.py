"""Database records (sqlmodel tables) of the core; indexes follow the queries that use them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Tier(SQLModel, table=True):
    """A membership level and what it entitles to."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    specialties: str = Field(default="", max_length=512)  # comma-separated; empty = all
    monthly_quota: int | None = None
    response_target_minutes: int | None = None


class Member(SQLModel, table=True):
    """A person enrolled in the program."""

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(max_length=128)
    tier_id: int = Field(foreign_key="tier.id")
    active: bool = True  # False once removed; the record stays for the transcripts
    blocked: bool = False
    blocked_reason: str = Field(default="", max_length=512)
    created_at: datetime


class Expert(SQLModel, table=True):
    """A staff member who answers questions in the staff threads."""

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(max_length=128)
    specialties: str = Field(default="", max_length=512)  # comma-separated
    active: bool = True
    time_zone: str = Field(default="UTC", max_length=64)
    created_at: datetime


class PlatformIdentity(SQLModel, table=True):
    """Links a platform user id to a member or an expert (a person may have several)."""

    __table_args__ = (UniqueConstraint("platform", "user_id", name="uq_identity_platform_user"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    user_id: str = Field(max_length=128)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    expert_id: int | None = Field(default=None, foreign_key="expert.id", index=True)


class Conversation(SQLModel, table=True):
    """One question of a member and everything said about it, mirrored by one staff thread."""

    __table_args__ = (
        Index("ix_conversation_staff_thread", "staff_platform", "staff_thread"),
        Index("ix_conversation_member_status", "member_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    specialty: str = Field(default="general", max_length=64)
    status: str = Field(default="open", max_length=16)  # open | closed
    claimed_by: int | None = Field(default=None, foreign_key="expert.id")
    member_platform: str = Field(max_length=32)
    member_channel: str = Field(max_length=128)
    member_user: str = Field(max_length=128)
    staff_platform: str = Field(max_length=32)
    staff_channel: str = Field(max_length=128)
    staff_thread: str | None = Field(default=None, max_length=128)
    staff_message: str | None = Field(default=None, max_length=128)  # the card's message id
    opened_at: datetime
    last_activity_at: datetime
    first_response_at: datetime | None = None
    closed_at: datetime | None = None


class Message(SQLModel, table=True):
    """A message of a conversation: in (member), out (to member) or internal (staff note)."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    direction: str = Field(max_length=16)  # in | out | internal | event
    author: str = Field(max_length=160)
    text: str
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    platform_message_id: str | None = Field(default=None, max_length=128)
    created_at: datetime


class OutboxItem(SQLModel, table=True):
    """A message to deliver, written in the same transaction as the change that caused it."""

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_conversation", "conversation_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)  # idempotency key
    kind: str = Field(max_length=16)  # post | open_thread | thread_post
    platform: str = Field(max_length=32)
    address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    status: str = Field(default="pending", max_length=16)  # pending | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    last_error: str = Field(default="", max_length=1000)
    sent_message_id: str | None = Field(default=None, max_length=128)
    created_at: datetime
    sent_at: datetime | None = None


class InboundEvent(SQLModel, table=True):
    """A platform event already handled; its key makes a redelivery a no-op."""

    platform: str = Field(primary_key=True, max_length=32)
    event_id: str = Field(primary_key=True, max_length=200)
    received_at: datetime


class AuditEvent(SQLModel, table=True):
    """An admin or staff action, kept for accountability."""

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=160)
    action: str = Field(max_length=64, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime
