"""Settings come from CONCIERGE_* variables and .env; secrets never show in their text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from concierge.settings import Settings


def test_defaults_need_no_setup(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url.get_secret_value() == "sqlite:///concierge.db"
    assert settings.staff_channel == "concierge-staff"


def test_environment_and_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CONCIERGE_PROGRAM_NAME=Peak Club\nCONCIERGE_STAFF_CHANNEL=C123\n")
    monkeypatch.setenv("CONCIERGE_ADMINS", "slack:U1, discord:42 ,admin")
    monkeypatch.setenv("CONCIERGE_DATABASE_URL", "postgresql://bot:s3cret-pass@db/concierge")
    settings = Settings()
    assert settings.program_name == "Peak Club" and settings.staff_channel == "C123"
    assert settings.admins == ["slack:U1", "discord:42", "local:admin"]
    assert "s3cret-pass" not in repr(settings) and "s3cret-pass" not in str(settings.model_dump())
    assert settings.join_message().startswith("This service is for members of Peak Club.")


def test_specialty_channels_are_read_as_pairs_or_json(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Settings().specialty_channels == {}
    monkeypatch.setenv("CONCIERGE_STAFF_CHANNEL", "C0")
    monkeypatch.setenv("CONCIERGE_SPECIALTY_CHANNELS", " nutrition=C1, Training = C2 ,")
    settings = Settings()
    assert settings.specialty_channels == {"nutrition": "C1", "training": "C2"}
    assert settings.staff_channels() == ["C0", "C1", "C2"]
    monkeypatch.setenv("CONCIERGE_SPECIALTY_CHANNELS", '{"physio": "C3", "nutrition": "C0"}')
    settings = Settings()
    assert settings.specialty_channels == {"physio": "C3", "nutrition": "C0"}
    assert settings.staff_channels() == ["C0", "C3"]
    monkeypatch.setenv("CONCIERGE_SPECIALTY_CHANNELS", "")
    assert Settings().specialty_channels == {}


@pytest.mark.parametrize("value, complaint", [
    ("nutrition=C1,training", "'training' is not specialty=channel"),
    ("nutrition C1", "'nutrition C1' is not specialty=channel"),
    ("=C1", "'=C1' is not specialty=channel"),
    ("nutrition=", "'nutrition=' is not specialty=channel"),
    ('{"nutrition": "C1"', "not a JSON object"),
])
def test_a_malformed_specialty_channels_value_is_refused_with_what_to_write(monkeypatch, tmp_path, value, complaint):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCIERGE_SPECIALTY_CHANNELS", value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = str(raised.value)
    assert "specialty_channels" in message and complaint in message
