"""Settings read from CONCIERGE_* environment variables and a .env file."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the core needs to know about one deployment.

    Platform tokens belong to the adapters; the core never reads them.
    """

    model_config = SettingsConfigDict(
        env_prefix="CONCIERGE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///concierge.db"),
        description="SQLAlchemy URL; sqlite:///file.db (default) or postgresql://user:pass@host/db.",
    )
    program_name: str = Field(default="Concierge", description="Name of the loyalty program.")
    join_text: str = Field(
        default="This service is for members of {program}. Ask your account manager or "
        "visit the program page to join.",
        description="Answer to someone who writes but is not enrolled; {program} is replaced.",
    )
    blocked_text: str = Field(
        default="Your messages are not being forwarded to our team at the moment.",
        description="Answer to an enrolled member whose access is blocked.",
    )
    staff_channel: str = Field(
        default="concierge-staff", description="Channel (name or id) where staff threads open."
    )
    staff_platform: str = Field(
        default="",
        description="Platform of the staff channel; empty means the platform the bot runs on.",
    )
    specialty_channels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Specialties with their own staff channel, as nutrition=C0NUT,training=C0TRN (or a JSON "
        "object); the others use the staff channel. Same platform as the staff channel.",
    )
    admins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["local:admin"],
        description="Comma-separated platform:user_id entries allowed to run admin commands.",
    )
    max_message_chars: int = Field(default=4000, ge=1, description="Longest member message relayed.")
    member_messages_per_minute: int = Field(
        default=10, ge=1, description="Messages a member may send per minute; more get a polite notice."
    )
    auto_close_hours: float | None = Field(
        default=None, gt=0, description="Close answered conversations idle this long (the member is told); unset: never."
    )
    reply_signature: str = Field(
        default="none", pattern="^(none|expert|program)$",
        description="How members see staff answers: plain (none), signed with the expert's name, or the program's.",
    )
    outbox_max_attempts: int = Field(default=10, ge=1, description="Tries before a send fails.")
    outbox_backoff_base_s: float = Field(default=1.0, gt=0, description="First retry delay.")
    outbox_backoff_cap_s: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    outbox_lease_s: float = Field(
        default=60.0, gt=0, description="How long a claimed send is held before another worker may retry it."
    )
    outbox_send_concurrency: int = Field(
        default=4, ge=1, le=8,
        description="Messages a process sends at once, each to a different conversation or place (one after "
                    "the other within one). A platform's round trip would otherwise bound a process to a few "
                    "messages a second. At most 8: after a crash, each message being sent is looked for on the "
                    "platform before it goes again.",
    )
    inbox_max_attempts: int = Field(
        default=10, ge=1, le=1000,
        description="Tries to process a recorded inbound message before it is declared failed and staff are told.",
    )
    catch_up_hours: float = Field(
        default=72.0, ge=0, le=24 * 30,
        description="After downtime, read back at most this many hours of DMs and staff threads (0: no catch-up).",
    )
    sqlite_synchronous: str = Field(
        default="normal", pattern="^(full|normal)$",
        description="SQLite durability: normal (survives a crash of the bot; after a power loss the catch-up "
        "reads back what the last commits held) or full (every commit reaches the disk first; about 3x slower).",
    )
    consent_policy_version: str = Field(
        default="2026-11", description="Version of the consent text members agree to; stored with each consent."
    )
    default_time_zone: str = Field(default="UTC", description="Time zone of new subscriptions unless given.")
    digest_max_per_day: int = Field(
        default=3, ge=1, description="Most digest messages one member receives in 24 hours; more wait."
    )
    digest_rate_per_s: float = Field(default=20.0, gt=0, description="Digest sends per second, per platform.")
    digest_burst: int = Field(default=5, ge=1, description="Digest sends allowed in a burst, per platform.")
    digest_tick_s: float = Field(default=30.0, gt=0, description="How often the scheduler looks for due digests.")
    retention_days: int | None = Field(
        default=None, ge=1,
        description="Purge the message texts of conversations idle for more than this many days; "
        "unset keeps them for ever.",
    )
    files_dir: str = Field(
        default="concierge-files",
        description="Folder of the file store: the files members and experts send, kept by content (sha256).",
    )
    files_max_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1,
        description="Largest file passed on, in bytes (each platform's own upload limit applies too).",
    )
    files_allowed_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["image/*", "application/pdf", "text/plain", "text/csv", ".pdf", ".txt", ".csv"],
        description="File types passed on: MIME types (application/pdf), families (image/*) or extensions "
        "(.pdf), comma-separated; others are refused (the sender and staff are told).",
    )
    platform: str = Field(
        default="auto", description="local, slack, discord, or auto (the first with tokens, else local)."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="Port of the /metrics, /healthz and /readyz endpoint (every run mode); unset: off.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address the metrics endpoint listens on.")
    log_format: str = Field(
        default="text", pattern="^(text|json)$",
        description="Log lines as text, or json (one object per line, with the event and conversation ids).",
    )

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            entries = [part.strip() for part in value.split(",")]
            return [entry if ":" in entry else f"local:{entry}" for entry in entries if entry]
        return value

    @field_validator("files_allowed_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("retention_days", "metrics_port", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("specialty_channels", mode="before")
    @classmethod
    def _parse_specialty_channels(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                try:
                    value = json.loads(text)
                except ValueError as error:
                    raise ValueError(f"not a JSON object of specialty: channel ({error})") from None
            else:
                channels: dict[str, str] = {}
                for entry in filter(None, (part.strip() for part in text.split(","))):
                    specialty, equals, channel = (part.strip() for part in entry.partition("="))
                    if not equals or not specialty or not channel:
                        raise ValueError(f"{entry!r} is not specialty=channel; write it like "
                                         "nutrition=C0NUT,training=C0TRN")
                    channels[specialty] = channel
                value = channels
        if isinstance(value, dict):  # specialties are lower case everywhere else
            return {str(key).strip().lower(): channel for key, channel in value.items()}
        return value

    def staff_channels(self) -> list[str]:
        """Every staff channel: the main one, then each specialty's own (no repeats)."""
        return list(dict.fromkeys([self.staff_channel, *self.specialty_channels.values()]))

    def bot_title(self) -> str:
        """How the bot names itself: "Peak Club concierge", or the program's name alone when it says so already."""
        name = self.program_name.strip() or "Concierge"
        return name if "concierge" in name.lower() else f"{name} concierge"

    def join_message(self) -> str:
        """The text sent to someone who is not enrolled."""
        return self.join_text.replace("{program}", self.program_name)
