"""Settings come from CONCIERGE_* variables and .env; secrets never show in their text."""

from __future__ import annotations

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
