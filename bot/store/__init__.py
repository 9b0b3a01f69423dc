"""Storage: SQLModel tables, the async engine and repositories."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.dedupe import DedupeRepo
from bot.store.engine import create_engine, session_factory, upgrade_database
from bot.store.jobs import JobRunRepo
from bot.store.outbox import OutboxRepo
from bot.store.studios import AllianceRepo, Generation, MemberRepo, StudioRepo
from bot.store.wecom import ChatSeenRepo


class NameDirectory(Protocol):
    """Names of people the database does not name, from outside it (WeCom's directory)."""

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        """The names known for ``user_ids``; unknown ones are left out."""
        ...


class Store:
    """The database and the core repositories; feature modules build their own repos from ``sessions``.
    ``directory`` is set by a channel that can name people the database does not (the WeCom app)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.directory: NameDirectory | None = None
        self.sessions = session_factory(engine)
        self.roles = Generation(self.sessions)
        self.alliances = AllianceRepo(self.sessions)
        self.studios = StudioRepo(self.sessions, self.roles)
        self.members = MemberRepo(self.sessions, self.roles)
        self.dedupe = DedupeRepo(self.sessions, engine)
        self.outbox = OutboxRepo(self.sessions)
        self.jobs = JobRunRepo(self.sessions)
        self.chats_seen = ChatSeenRepo(self.sessions)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Create the engine for ``url`` and bring the schema up to date."""
        engine = create_engine(url)
        if migrate:
            await upgrade_database(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def close(self) -> None:
        """Finish writes still queued, then dispose of the engine's connections."""
        try:
            await self.dedupe.flush()
            await self.members.flush()
        finally:
            await self.engine.dispose()


__all__ = ["Store"]
