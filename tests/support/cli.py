"""Running the `concierge` command line in a subprocess, with none of the caller's platform settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def concierge(*args: str, cwd: Path, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("CONCIERGE_", "SLACK_", "DISCORD_"))}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "concierge.cli", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120, env=environment)
