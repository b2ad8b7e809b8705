"""DISCORD_* settings of the Discord adapter, read from the environment and .env (the token stays secret)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)  # minutes Discord accepts for auto_archive_duration


class DiscordSettings(BaseSettings):
    """What the Discord adapter needs besides the core's CONCIERGE_* settings.

    The staff channel is the core's `CONCIERGE_STAFF_CHANNEL`, given as a channel id.
    """

    model_config = SettingsConfigDict(
        env_prefix="DISCORD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    token: SecretStr = Field(default=SecretStr(""), description="Bot token (Developer Portal > Bot > Reset Token).")
    application_id: int = Field(
        default=0, ge=0, description="Application id for the invite link; read from the token when unset."
    )
    guild_id: int = Field(default=0, ge=0, description="Id of the server (guild) that holds the staff channel.")
    thread_archive_minutes: int = Field(
        default=10080, description="auto_archive_duration of conversation threads: 60, 1440, 4320 or 10080."
    )
    max_ratelimit_timeout_s: float = Field(
        default=30.0, ge=30.0,
        description="Longest rate-limit wait discord.py sleeps through; longer ones go back to the outbox.",
    )
    dm_open_interval_s: float = Field(
        default=1.0, ge=0.0, description="Least time between opening two new DM channels (Discord flags fast openers)."
    )
    dm_open_max_wait_s: float = Field(
        default=5.0, ge=0.0, description="Longest the adapter waits for a DM slot before the outbox retries later."
    )
    interaction_defer_after_s: float = Field(
        default=2.0, gt=0.0, description="Defer an interaction answer still not ready after this (Discord allows 3 s)."
    )
    catch_up_retry_s: float = Field(
        default=10.0, gt=0.0,
        description="After a message could not be recorded (database down), read its channel back this soon; "
        "doubled on each failure up to 5 minutes.",
    )
    sync_commands: bool = Field(default=True, description="Sync the /concierge commands at startup when they differ.")

    @field_validator("thread_archive_minutes")
    @classmethod
    def _archive_duration(cls, value: int) -> int:
        if value not in ARCHIVE_DURATIONS:
            raise ValueError(f"must be one of {', '.join(map(str, ARCHIVE_DURATIONS))}")
        return value

    def configured(self) -> bool:
        return bool(self.token.get_secret_value().strip())
