"""deploy/: the systemd template, the Procfile and the example environment name only real settings and commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from adapters.slack.settings import SlackSettings
from concierge.cli import app
from concierge.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KNOWN = {f"CONCIERGE_{name.upper()}" for name in Settings.model_fields} | {"CONCIERGE_HTTP_HOST", "CONCIERGE_HTTP_PORT"}


def concierge_variables(text: str) -> set[str]:
    return set(re.findall(r"\b(CONCIERGE_[A-Z_]+)=", text))


def test_every_setting_the_deployment_sets_exists():
    for name in ("concierge@.service", "Procfile", "concierge.env.example"):
        used = concierge_variables((DEPLOY / name).read_text())
        assert used and used <= KNOWN, (name, used - KNOWN)
    assert {"http_host", "http_port"} <= set(SlackSettings.model_fields)


def test_every_command_the_deployment_runs_is_one_the_cli_takes():
    commands = [line.split(":", 1)[1] for line in (DEPLOY / "Procfile").read_text().splitlines()
                if line and not line.startswith("#")]
    commands += [line.split("=", 1)[1] for line in (DEPLOY / "concierge@.service").read_text().splitlines()
                 if line.startswith("ExecStart=")]
    assert len(commands) == 4
    for command in commands:
        words = [word for word in shlex.split(command) if "=" not in word or word.startswith("--")]
        assert Path(words[0]).name == "concierge", command
        result = CliRunner().invoke(app, [*words[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_each_instance_of_the_template_gets_its_own_metrics_port():
    unit = (DEPLOY / "concierge@.service").read_text()
    assert "Environment=CONCIERGE_METRICS_PORT=910%i" in unit
    assert "CONCIERGE_METRICS_PORT" not in (DEPLOY / "concierge.env.example").read_text(), "the file would win"
