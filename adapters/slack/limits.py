"""Slack's limits that code outside the Slack SDK needs to know (importing this loads no SDK)."""

MAX_FILE_BYTES = 1024 ** 3  # Slack takes files up to 1 GB
