"""The Slack Web API's errors as the core's: `neutral_errors` turns what a call raises into
RateLimited, Unreachable or PlatformDown (saying whether the request may have been applied)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.web.slack_response import SlackResponse

from concierge.platform import PlatformDown, RateLimited, Unreachable

log = logging.getLogger(__name__)

# Errors that will not go away by retrying the same message: the recipient is gone or the
# message itself is refused. The text is what staff read in the thread.
PERMANENT_ERRORS: dict[str, str] = {
    "channel_not_found": "the conversation no longer exists or the bot cannot see it",
    "user_not_found": "the Slack user no longer exists",
    "user_disabled": "the member's Slack account is deactivated",
    "account_inactive": "the member's Slack account is deactivated",
    "is_archived": "the conversation is archived",
    "cannot_dm_bot": "the recipient is a bot",
    "not_in_channel": "the bot is not in that channel",
    "messages_tab_disabled": "the member cannot receive direct messages from apps",
    "user_not_visible": "the bot is not allowed to see this user",
    "restricted_action": "the workspace does not allow the bot to post there",
    "msg_too_long": "the message is too long for Slack",
    "no_text": "the message was empty",
    "invalid_blocks": "Slack refused the message layout",
    "invalid_blocks_format": "Slack refused the message layout",
    "message_not_found": "the message to change no longer exists",
    "cant_update_message": "the message cannot be changed",
    "edit_window_closed": "the message can no longer be edited",
}

# Errors of our own setup (token, scopes): retried, because fixing the setup lets the queued
# messages go out, and logged loudly.
SETUP_ERRORS = {
    "not_authed", "invalid_auth", "token_revoked", "token_expired", "missing_scope",
    "not_allowed_token_type", "team_access_not_granted", "ekm_access_denied", "no_permission",
}


def _retry_after(response: SlackResponse | AsyncSlackResponse | None) -> float | None:
    value = (response.headers or {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# Answers after which a request certainly had no effect: nothing to check before sending again.
NOT_APPLIED = SETUP_ERRORS | {"ratelimited", "invalid_arguments", "invalid_arg_name", "invalid_form_data",
                              "invalid_post_type", "missing_post_type", "request_timeout"}


@contextlib.asynccontextmanager
async def neutral_errors(method: str) -> AsyncIterator[None]:
    """Turn what a Web API call raises into the core's RateLimited, Unreachable or PlatformDown.

    `PlatformDown.outcome_unknown` says whether the request may have been applied all the same
    (a 5xx, a timeout, a dropped connection: the outbox checks with `find_sent` before posting
    again) or certainly was not (the connection was refused, a 429, a setup error).
    """
    try:
        yield
    except SlackApiError as error:
        response = error.response
        status = getattr(response, "status_code", 0) or 0
        data = getattr(response, "data", None)
        code = str(data.get("error") or "") if isinstance(data, dict) else ""
        retry_after = _retry_after(response)
        if status == 429 or code == "ratelimited":
            if retry_after is not None:
                raise RateLimited(retry_after, f"{method} rate limited for {retry_after:g} s") from None
            raise PlatformDown(f"{method} rate limited, no Retry-After given", outcome_unknown=False) from None
        if code in PERMANENT_ERRORS:
            raise Unreachable(f"Slack refused {method}: {PERMANENT_ERRORS[code]} ({code})") from None
        if code in SETUP_ERRORS:
            log.error("Slack refused %s with %s: check the bot token and its scopes (concierge slack doctor)",
                      method, code)
            raise PlatformDown(f"{method} failed: {code} (check the Slack app setup)", outcome_unknown=False) from None
        unknown = status >= 500 or code not in NOT_APPLIED
        raise PlatformDown(f"{method} failed: {code or f'HTTP {status}'}", outcome_unknown=unknown) from None
    except aiohttp.ClientConnectorError as error:  # no connection was made: the request never left
        raise PlatformDown(f"{method} could not reach Slack: {type(error).__name__}", outcome_unknown=False) from None
    except (TimeoutError, aiohttp.ClientError, OSError) as error:  # it may have arrived
        raise PlatformDown(f"{method} could not reach Slack: {type(error).__name__}") from None
