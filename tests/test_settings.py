"""Settings: defaults, environment, TOML file, and start-up errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("BOT_") and not key.startswith("BOT_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.timezone == "Asia/Shanghai"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.admins == []
    assert settings.effective_database_url.endswith("/data/bot.db")
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert not settings.aibot_enabled and not settings.app_enabled


def test_the_data_dir_holds_the_default_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "srv"))
    assert load_settings().effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'srv' / 'bot.db'}"
    monkeypatch.setenv("BOT_DATA_DIR", "relative")  # a relative data dir still gives an absolute file URL
    assert load_settings().effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'relative' / 'bot.db'}"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_ADMINS", "alice, bob,,carol")
    monkeypatch.setenv("BOT_PORT", "9090")
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql://postgres@127.0.0.1/x")
    settings = load_settings()
    assert settings.admins == ["alice", "bob", "carol"]
    assert settings.port == 9090
    assert settings.effective_database_url == "postgresql+asyncpg://postgres@127.0.0.1/x"


def test_toml_file_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.toml").write_text('port = 7000\nhost = "0.0.0.0"\nadmins = ["x"]\n')
    monkeypatch.setenv("BOT_PORT", "7001")
    settings = load_settings()
    assert settings.port == 7001
    assert settings.host == "0.0.0.0"
    assert settings.admins == ["x"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOT_PORT", "eighty"),
        ("BOT_PORT", "70000"),
        ("BOT_TIMEZONE", "Mars/Olympus"),
        ("BOT_DATABASE_URL", "mysql://root@localhost/x"),
        ("BOT_CLAIM_HOURS", "-1"),
    ],
)
def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert name in str(info.value)


def test_unknown_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABSE_URL", "sqlite:///typo.db")
    with pytest.raises(SettingsError, match="BOT_DATABSE_URL"):
        load_settings()


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.toml").write_text("colour = 'red'\n")
    with pytest.raises(SettingsError, match="colour"):
        load_settings()
