"""Test helpers: a fresh database per test (SQLite, and PostgreSQL when configured) and a chat harness."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
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
PG_URL = os.environ.get("BOT_TEST_POSTGRES_URL", "")


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
