"""Shared fixtures: every database test runs on SQLite and on PostgreSQL when one is configured or found.

PostgreSQL: ``BOT_TEST_POSTGRES_URL`` when set (empty or ``off`` skips it); unset, a server answering on
127.0.0.1:5432 as ``postgres`` (``tests.harness.choose_postgres``). The end of the run says which databases ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.services.studios import load_roster
from bot.settings import Settings
from tests.harness import EXAMPLE_ROSTER, PG_URL, POSTGRES, Chat, fresh_postgres_database
from tests.processes import tally_table

BACKENDS = ["sqlite", "postgres"] if PG_URL else ["sqlite"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
ADMIN = "admin1"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which databases the tests ran on (PostgreSQL's tests are skipped, not failed, without one)."""
    terminalreporter.write_line(POSTGRES.summary())
    for line in tally_table():
        terminalreporter.write_line(line)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each configured backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    """A clock that only moves when a test moves it: Tuesday 2026-11-24 10:00 in Shanghai."""
    return ManualClock(datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for a test bot on the test database."""
    return Settings(database_url=database_url, admins=[ADMIN])


@pytest.fixture
async def bot(settings: Settings, clock: ManualClock) -> AsyncIterator[BotApp]:
    """A bot with the example roster imported."""
    app = await BotApp.create(settings, clock=clock)
    await app.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def chat(bot: BotApp) -> Chat:
    """Talk to the bot as any user."""
    return Chat(bot)
