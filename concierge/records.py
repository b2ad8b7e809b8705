"""Database records (sqlmodel tables) of the core; indexes follow the queries that use them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
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
    # "admin": named by an admin, kept; "platform": the platform's display name, refreshed when it changes.
    name_source: str = Field(default="admin", max_length=16)
    tier_id: int = Field(foreign_key="tier.id")
    active: bool = True  # False once removed; the record stays for the transcripts
    blocked: bool = False
    blocked_reason: str = Field(default="", max_length=512)
    blocked_until: datetime | None = None  # None with `blocked`: until unblocked
    created_at: datetime


class Expert(SQLModel, table=True):
    """A staff member who answers questions in the staff threads."""

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(max_length=128)
    specialties: str = Field(default="", max_length=512)  # comma-separated
    active: bool = True
    time_zone: str = Field(default="UTC", max_length=64)
    work_start: int | None = None  # local hour on duty from; None: always on duty
    work_end: int | None = None  # local hour off duty
    work_days: str = Field(default="mon,tue,wed,thu,fri,sat,sun", max_length=64)
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
        # The scheduler's escalations and idle closes, the waiting list and App Home read the open
        # conversations only; closed ones pile up for ever and must not be read each time. Status
        # alone: every relay moves `last_activity_at`, and an index on it would be rewritten each time.
        Index("ix_conversation_status", "status"),
        # The retention purge's candidates: conversations whose texts were not erased yet, by when they
        # opened (a conversation idle since the cutoff opened before it). `opened_at` never changes, so
        # no relay rewrites this index; purged conversations leave it (see `concierge.transcripts`).
        Index("ix_conversation_unpurged", "opened_at", sqlite_where=text("purged_at IS NULL"),
              postgresql_where=text("purged_at IS NULL")),
        # `stats` over a period: the conversations opened since its start, not every one ever opened.
        # One entry per conversation, written when it opens and never moved.
        Index("ix_conversation_opened", "opened_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    specialty: str = Field(default="general", max_length=64)
    status: str = Field(default="open", max_length=16)  # a ConversationStatus (concierge/states.py)
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
    closed_by: str = Field(default="", max_length=160)  # who closed it, as the card shows
    escalation_level: int = 0  # 1: over the response target, experts paged; 2: admins paged
    rating: int | None = None  # 1-5, from the member after close
    rating_comment: str = Field(default="", max_length=1000)
    purged_at: datetime | None = None  # when the retention purge erased its texts; cleared when it gets a new line


class Message(SQLModel, table=True):
    """A line of a conversation's transcript: from or to the member, a staff note, an event (see `Direction`)."""

    # A conversation's lines by direction and time: the flood limit counts the member's last minute
    # and the waiting list finds the last answer without reading the whole transcript (which grows
    # with the conversation; `ix_message_conversation_id` keeps the transcript's order).
    __table_args__ = (Index("ix_message_recent", "conversation_id", "direction", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    direction: str = Field(max_length=16)  # a Direction (concierge/states.py): in | out | internal | event | dropped
    author: str = Field(max_length=160)
    text: str
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    platform_message_id: str | None = Field(default=None, max_length=128)
    created_at: datetime


class MessageFile(SQLModel, table=True):
    """A file of a transcript message; its bytes are in the file store, under `sha256`."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    sha256: str = Field(max_length=64, index=True)  # the store keeps one copy per content
    name: str = Field(max_length=255)
    mime: str = Field(max_length=127)
    size: int
    created_at: datetime


class OutboxItem(SQLModel, table=True):
    """A message to deliver, written in the same transaction as the change that caused it."""

    # Partial indexes: a digest fan-out writes a row per subscriber, and each index it need not
    # touch makes planning a million of them faster.
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_conversation", "conversation_id", "status",
              sqlite_where=text("conversation_id IS NOT NULL"), postgresql_where=text("conversation_id IS NOT NULL")),
        Index("uq_outbox_key", "key", unique=True,
              sqlite_where=text("edition_id IS NULL"), postgresql_where=text("edition_id IS NULL")),
        # One delivery per (member, edition), whatever happens; also how a member's queue is found.
        Index("uq_outbox_delivery", "member_id", "edition_id", unique=True,
              sqlite_where=text("edition_id IS NOT NULL"), postgresql_where=text("edition_id IS NOT NULL")),
        # The frequency cap counts a member's deliveries of the last day: without the time in an
        # index it read every delivery the member ever had (a year of them: 0.2 s per 5,000 members).
        Index("ix_outbox_member_recent", "member_id", "created_at",
              sqlite_where=text("edition_id IS NOT NULL"), postgresql_where=text("edition_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)  # idempotency key (unique per message; see the indexes)
    kind: str = Field(max_length=16)  # an `OutboxKind` (concierge/outbox/kinds.py)
    platform: str = Field(max_length=32)
    address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    status: str = Field(default="pending", max_length=16)  # an `OutboxStatus` (concierge/outbox/kinds.py)
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    last_error: str = Field(default="", max_length=1000)
    sent_message_id: str | None = Field(default=None, max_length=128)
    # An earlier attempt may have reached the platform (a crash or a timeout after the request
    # went out): before sending again, ask the platform whether it has the message already.
    maybe_sent: bool = False
    created_at: datetime
    sent_at: datetime | None = None
    # Digest deliveries: who, which edition, and when consent was checked just before sending.
    member_id: int | None = Field(default=None, foreign_key="member.id")
    digest_id: int | None = Field(default=None, foreign_key="digest.id")
    edition_id: int | None = Field(default=None, foreign_key="digestedition.id")
    consent_checked_at: datetime | None = None


class InboxItem(SQLModel, table=True):
    """An inbound event as received: recorded before the platform is acknowledged, then processed.

    `(platform, event_id)` is the event's identity: for a message the platform's own id of the
    message (Slack channel and `ts`, a Discord message id; an edit adds its edit time), for a
    command or a button press the platform's id of that invocation. A redelivery under any
    envelope id, a retry or the catch-up finds the row and has no second effect.
    Most events are processed in the transaction that records them (`status` done at once);
    one whose processing failed stays `pending` and is retried from here, by any process.
    """

    __table_args__ = (
        UniqueConstraint("platform", "event_id", name="uq_inbox_event"),
        # Only the few rows still to process are in it: the hot path writes `done` rows, which skip it.
        # The poll asks per platform: led by it, this index wins over `ix_inbox_received` (all the
        # platform's events ever) even where the database has no statistics to tell them apart.
        Index("ix_inbox_due", "platform", "status", "next_attempt_at",
              sqlite_where=text("status IN ('pending', 'processing')"),
              postgresql_where=text("status IN ('pending', 'processing')")),
        # The catch-up's plan reads the events received within its window (`inbox.last_written`).
        # Each new event's entry goes at the end of its platform's range: no relay writes a page
        # of it at random.
        Index("ix_inbox_received", "platform", "received_at"),
        # The file sweep keeps the files of every event not done; done rows (nearly all) skip it.
        Index("ix_inbox_kept", "status", sqlite_where=text("status != 'done'"),
              postgresql_where=text("status != 'done'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    event_id: str = Field(max_length=200)
    kind: str = Field(max_length=16)  # member_message | staff_reply | command | button | form
    place: str = Field(default="", max_length=300)  # channel, or channel/thread: where catch-up resumes
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # the neutral event
    status: str = Field(default="done", max_length=16)  # pending | processing | done | failed
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    last_error: str = Field(default="", max_length=1000)
    written_at: datetime | None = None  # when the person wrote it, by the platform's clock
    received_at: datetime  # when we recorded it
    handled_at: datetime | None = None
    member_told: bool = False  # the member was told "we are on it" (once)


class AuditEvent(SQLModel, table=True):
    """An admin or staff action, kept for accountability."""

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=160)
    action: str = Field(max_length=64, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime


class Digest(SQLModel, table=True):
    """A kind of digest members may subscribe to (the catalogue)."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=64)
    title: str = Field(max_length=200)
    cadence: str = Field(default="weekly", max_length=16)  # how often editions are composed
    status: str = Field(default="active", max_length=16)  # active | archived
    next_edition_at: datetime | None = None
    created_at: datetime


class DigestItem(SQLModel, table=True):
    """One tip or deal, waiting for the next edition of its digest."""

    __table_args__ = (Index("ix_digestitem_pending", "digest_id", "edition_id"),)

    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digest.id")
    text: str
    author: str = Field(max_length=160)
    edition_id: int | None = Field(default=None, foreign_key="digestedition.id")
    created_at: datetime


class DigestEdition(SQLModel, table=True):
    """A composed edition: the items added since the previous one."""

    __table_args__ = (UniqueConstraint("digest_id", "number", name="uq_edition_number"),)

    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digest.id")
    number: int
    text: str
    published_at: datetime


class Subscription(SQLModel, table=True):
    """A member's choice of a digest: cadence, local delivery hour, zone, quiet hours.

    `active` mirrors the consent ledger (changed in the same transaction as a consent event);
    `next_due_at` (UTC) is what the scheduler's tick looks for.
    """

    __table_args__ = (
        UniqueConstraint("member_id", "digest_id", name="uq_subscription_member_digest"),
        Index("ix_subscription_due", "active", "next_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    digest_id: int = Field(foreign_key="digest.id")
    active: bool = True
    cadence: str = Field(default="weekly", max_length=16)  # daily | weekly | monthly
    weekday: int = 0  # weekly: 0 = Monday
    day_of_month: int = 1  # monthly: 1..28
    hour: int = 9  # local delivery hour
    time_zone: str = Field(default="UTC", max_length=64)
    quiet_start: int | None = None  # local hour quiet time begins
    quiet_end: int | None = None  # local hour it ends
    platform: str = Field(max_length=32)  # where to deliver (the member's DM there)
    user_id: str = Field(max_length=128)
    next_due_at: datetime | None = None
    last_edition_id: int = 0  # editions up to this id were delivered (or predate the subscription)
    created_at: datetime
    updated_at: datetime


class ConsentEvent(SQLModel, table=True):
    """Append-only ledger: a member granted or revoked consent to a digest, how and when."""

    __table_args__ = (Index("ix_consent_member_digest_at", "member_id", "digest_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    digest_id: int = Field(foreign_key="digest.id")
    action: str = Field(max_length=16)  # granted | revoked
    how: str = Field(max_length=32)  # button | command | admin_import | erase | digest_archived
    platform: str = Field(default="", max_length=32)
    actor: str = Field(default="", max_length=160)
    policy_version: str = Field(max_length=32)
    at: datetime


class Snippet(SQLModel, table=True):
    """A ready answer experts send with `/concierge snippet use <name>`."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    text: str
    created_by: str = Field(max_length=160)
    created_at: datetime


class SendBudget(SQLModel, table=True):
    """A platform's send budget shared by every process (PostgreSQL; see `concierge.send_budget`):
    the earliest free send slot. SQLite deployments are one process and keep theirs in memory."""

    platform: str = Field(primary_key=True, max_length=32)
    next_free: datetime


class PurgeMark(SQLModel, table=True):
    """How far the retention purge has read the transcript (one row): messages after `message_id` were
    written since, and their conversations, if purged before, are purged again once idle."""

    id: int = Field(default=1, primary_key=True)
    message_id: int = 0
