"""The Slack adapter's own settings: tokens, the Web API host, the HTTP events port."""

from __future__ import annotations

import re

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_URL = "https://slack.com/api/"


class SlackSettings(BaseSettings):
    """SLACK_* variables (and CONCIERGE_HTTP_*) from the environment or `.env`.

    The tokens are `SecretStr`: printing or logging the settings shows `**********`.
    """

    model_config = SettingsConfigDict(
        env_prefix="SLACK_", env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    bot_token: SecretStr | None = Field(
        default=None, description="Bot User OAuth Token (xoxb-...), from OAuth & Permissions after installing."
    )
    app_token: SecretStr | None = Field(
        default=None,
        description="App-Level Token (xapp-...) with the connections:write scope; needed for Socket Mode.",
    )
    signing_secret: SecretStr | None = Field(
        default=None, description="Signing Secret from Basic Information; needed for HTTP mode."
    )
    api_url: str = Field(
        default=SLACK_API_URL,
        description="Base URL of the Web API (GovSlack: https://slack-gov.com/api/; tests: a loopback fake).",
    )
    http_host: str = Field(
        default="0.0.0.0",
        validation_alias=AliasChoices("CONCIERGE_HTTP_HOST", "http_host"),
        description="HTTP mode: the address to listen on.",
    )
    http_port: int = Field(
        default=3000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("CONCIERGE_HTTP_PORT", "http_port"),
        description="HTTP mode: the port that serves POST /slack/events.",
    )

    catch_up_per_min: float = Field(
        default=50,
        gt=0,
        description="Catch-up after downtime: history calls per minute (Slack's Tier 3 allows 50; a commercially "
                    "distributed app outside the Marketplace gets 1).",
    )

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins the method name to the base URL as is.
        return value if value.endswith("/") else value + "/"

    @field_validator("bot_token", "app_token", "signing_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def secret(self, name: str) -> str:
        """The plain value of a secret setting, "" when unset (pass it to the SDK, never to a log)."""
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else ""

    def missing_for(self, http: bool) -> list[str]:
        """The settings that the chosen mode needs and that are not set."""
        missing = [] if self.bot_token else ["SLACK_BOT_TOKEN"]
        if http and not self.signing_secret:
            missing.append("SLACK_SIGNING_SECRET")
        if not http and not self.app_token:
            missing.append("SLACK_APP_TOKEN")
        return missing


def looks_like_channel_id(value: str) -> bool:
    """Slack channel ids look like C0123ABCD (G... for old private channels); names do not work."""
    return re.fullmatch(r"[CG][A-Z0-9]{6,}", value or "") is not None
