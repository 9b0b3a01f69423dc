"""Test helpers: a fresh database per test (SQLite, and PostgreSQL when configured) and a chat harness."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bot.app import BotApp
from bot.core.messages import Event, Target, TargetKind

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ROSTER = ROOT / "config" / "roster.example.yaml"
SHARED = ROOT.parent / "shared"

PG_ENV = "BOT_TEST_POSTGRES_URL"
# Tried when BOT_TEST_POSTGRES_URL is unset: a local server with the default superuser (as CI and Debian's
# postgresql package have it). Each test creates a database of its own there and drops it afterwards.
PG_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_PROBE_TIMEOUT = 1.0  # seconds
_PG_OFF = ("", "0", "off", "no", "false", "none")


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _address(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


@dataclass(frozen=True, slots=True)
class PostgresChoice:
    """Whether the PostgreSQL tests run, on which server, and why."""

    url: str  # "" when they are skipped
    reason: str  # where the URL came from, or why they are skipped

    def summary(self) -> str:
        """The line pytest prints at the end: which databases the tests ran on."""
        if self.url:
            return f"databases: sqlite, postgresql ({_address(self.url)}, {self.reason})"
        return f"databases: sqlite; postgresql: skipped ({self.reason})"


async def _probe(url: str, seconds: float) -> str | None:
    try:
        connection = await asyncpg.connect(_plain_dsn(url), timeout=seconds)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
            return f"nothing answers on {_address(url)}"
        if isinstance(exc, TimeoutError):
            return f"{_address(url)} did not answer within {seconds:g} s"
        return f"{_address(url)}: {exc}"
    except Exception as exc:  # the server answered and refused: authentication, unknown role...
        return f"{_address(url)} refused {make_url(url).username}: {type(exc).__name__}: {exc}"
    try:
        may_create = await connection.fetchval(
            "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user", timeout=seconds
        )
    finally:
        await connection.close(timeout=seconds)
    if not may_create:
        return f"{make_url(url).username} on {_address(url)} may not create databases"
    return None


def probe_postgres(url: str, timeout: float = PG_PROBE_TIMEOUT) -> str | None:
    """``None`` when ``url`` reaches a PostgreSQL server where the tests can create databases, else why not."""
    parsed = make_url(url)
    try:  # a quick look first: when nothing listens, no event loop is needed to find out
        socket.create_connection((parsed.host or "localhost", parsed.port or 5432), timeout=timeout).close()
    except TimeoutError:
        return f"{_address(url)} did not answer within {timeout:g} s"
    except OSError:
        return f"nothing answers on {_address(url)}"
    # in a thread of its own: the harness may be imported where an event loop is already running
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _probe(url, timeout)).result()


def choose_postgres(
    environ: Mapping[str, str], default_url: str = PG_DEFAULT_URL, timeout: float = PG_PROBE_TIMEOUT
) -> PostgresChoice:
    """BOT_TEST_POSTGRES_URL when set (empty or ``off`` skips); unset, a server answering at ``default_url``."""
    value = environ.get(PG_ENV)
    if value is not None:
        if value.strip().lower() in _PG_OFF:
            return PostgresChoice("", f"{PG_ENV}={value.strip()}")
        return PostgresChoice(value.strip(), f"from {PG_ENV}")
    problem = probe_postgres(default_url, timeout)
    if problem is not None:
        return PostgresChoice("", f"{problem}; set {PG_ENV} to use another server")
    return PostgresChoice(default_url, f"found running; {PG_ENV}=off skips it")


POSTGRES = choose_postgres(os.environ)
PG_URL = POSTGRES.url


@asynccontextmanager
async def fresh_postgres_database(base_url: str = PG_URL) -> AsyncIterator[str]:
    """Create an empty PostgreSQL database for one test and drop it afterwards; yields its async URL."""
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_plain_dsn(base_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(base_url).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_plain_dsn(base_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass(slots=True, frozen=True)
class Delivery:
    """One message the bot delivered through the outbox."""

    target: Target
    text: str


class RecordingSender:
    """A sender that records what would have been delivered (stands in for WeCom in dispatcher tests)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def send(self, target: Target, text: str) -> None:
        """Record the delivery."""
        self.deliveries.append(Delivery(target, text))


class Chat:
    """Type a message as some user, read the bot's reply; outbound messages are delivered and recorded."""

    def __init__(self, bot: BotApp) -> None:
        self.bot = bot
        self.sender = RecordingSender()
        self.worker = bot.use_senders({kind: self.sender for kind in TargetKind})
        self._seen = 0
        self._counter = 0

    async def say(self, user: str, text: str, *, group: str | None = None, msg_id: str | None = None) -> str:
        """Send ``text`` as ``user`` and return the reply text ("" when the bot stays silent)."""
        self._counter += 1
        event = Event(
            channel="test",
            user_id=user,
            text=text,
            received_at=self.bot.clock.now(),
            chat_id=group,
            msg_id=msg_id or f"m{self._counter}-{uuid.uuid4().hex[:6]}",
        )
        reply = await self.bot.handle(event)
        await self.bot.drain()
        await self.worker.run_once()
        return reply.text if reply else ""

    async def delivered(self) -> list[Delivery]:
        """Deliver what is due and return the deliveries since the last call."""
        await self.worker.run_once()
        new = self.sender.deliveries[self._seen :]
        self._seen = len(self.sender.deliveries)
        return new

    def to_user(self, user: str) -> list[str]:
        """Every text delivered so far to one user."""
        return [d.text for d in self.sender.deliveries if d.target == Target(TargetKind.USER, user)]
