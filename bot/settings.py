"""Bot settings: environment variables (``BOT_*``) over ``config/settings.toml`` over defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "BOT_"
# Variables with this prefix belong to the test harness, not to the bot.
_NOT_SETTINGS_PREFIXES = ("BOT_TEST_",)


class SettingsError(ValueError):
    """Raised at start-up when a setting is unknown or invalid; the message names the variable."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything configurable about one bot process; built once and passed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        toml_file="config/settings.toml",
        frozen=True,
    )

    # core
    database_url: str = ""
    timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    roster: str = ""

    # WeCom channels (unset = channel not mounted)
    wecom_corp_id: str = ""
    wecom_agent_id: str = ""
    wecom_secret: str = ""
    wecom_app_token: str = ""
    wecom_app_aes_key: str = ""
    wecom_aibot_token: str = ""
    wecom_aibot_aes_key: str = ""
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    callback_max_age: int = Field(default=300, ge=0)
    # the AI bot's long connection (智能机器人长连接): live when the bot id and secret are set
    wecom_aibot_id: str = ""
    wecom_aibot_secret: str = ""
    wecom_ws_url: str = "wss://openws.work.weixin.qq.com"
    wecom_ws_ping_seconds: float = Field(default=30, gt=0)
    wecom_ws_standby_seconds: float = Field(default=5, gt=0)

    # problems and routing
    data_dir: str = ""  # where the bot keeps files of its own (embedding cache); default ./data
    semantic_routing: bool = True  # the sentence-embedding signal (off: lexical routing only)
    claim_hours: float = Field(default=24, gt=0)
    studio_daily_cap: int = Field(default=5, ge=1)

    # topics
    topic_quorum: int = Field(default=3, ge=1)
    topic_days: int = Field(default=14, ge=1)

    # events and reminders (offsets like "7d,1d,2h"; per type "年会=30d,7d,1d;讲座=1d,2h" or JSON)
    reminder_offsets: str = "7d,1d,2h"
    reminder_offsets_by_type: str = ""
    reminder_attendee_offsets: str = "1d"
    public_url: str = ""  # base URL of the calendar links the bot shows (default http://HOST:PORT)
    # the safety-net sweep for due reminders (each is also fired on time by a job armed at its due time)
    reminder_sweep_seconds: int = Field(default=30, ge=5)

    # abuse protection
    rate_limit_per_min: int = Field(default=20, ge=0)

    # web console
    console_idle_minutes: int = Field(default=60, ge=1)  # a session unused this long ends

    @field_validator("admins", mode="before")
    @classmethod
    def _admins_csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("reminder_offsets", "reminder_attendee_offsets")
    @classmethod
    def _offsets(cls, value: str) -> str:
        from bot.services.activities.types import parse_offsets

        parse_offsets(value)
        return value

    @field_validator("reminder_offsets_by_type")
    @classmethod
    def _offsets_by_type(cls, value: str) -> str:
        from bot.services.activities.types import parse_offsets_by_type

        parse_offsets_by_type(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment wins over the TOML file, which wins over defaults."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to ``bot.db`` in the data directory (``data`` under the working
        directory unless ``BOT_DATA_DIR`` moves it: one setting moves all the bot's files)."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.effective_data_dir.absolute() / 'bot.db'}"

    @property
    def effective_data_dir(self) -> Path:
        """The bot's own files: ``BOT_DATA_DIR``, else ``data`` under the working directory."""
        return Path(self.data_dir) if self.data_dir else Path.cwd() / "data"

    @property
    def aibot_enabled(self) -> bool:
        """Whether the AI-bot callback channel is configured."""
        return bool(self.wecom_aibot_token and self.wecom_aibot_aes_key)

    @property
    def longconn_enabled(self) -> bool:
        """Whether the AI bot's long connection (WebSocket) is configured."""
        return bool(self.wecom_aibot_id and self.wecom_aibot_secret)

    @property
    def app_enabled(self) -> bool:
        """Whether the self-built app callback channel is configured."""
        return bool(self.wecom_app_token and self.wecom_app_aes_key and self.wecom_corp_id)

    @property
    def api_enabled(self) -> bool:
        """Whether outbound WeCom API calls (``message/send``, ``appchat/send``) are possible."""
        return bool(self.wecom_corp_id and self.wecom_secret)


def normalise_database_url(url: str) -> str:
    """Add the async driver to plain ``sqlite://`` and ``postgresql://`` URLs."""
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url[len("postgres://") :]
    return url


def _unknown_variables(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(
        key
        for key in environ
        if key.startswith(ENV_PREFIX) and key not in known and not key.startswith(_NOT_SETTINGS_PREFIXES)
    )


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, raising ``SettingsError`` that names the bad variable."""
    unknown = _unknown_variables(dict(os.environ))
    if unknown:
        raise SettingsError(f"unknown setting {', '.join(unknown)}; known settings are listed in the README")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "?"
            name = ENV_PREFIX + field.upper() if field in Settings.model_fields else field
            if error["type"] == "extra_forbidden":
                problems.append(f"{name}: unknown setting (config/settings.toml)")
            else:
                problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
