"""The web console's tables: the signing key of sign-in links, the links already used, and open sessions.

All three live in the database so that every process serving ``/console`` agrees: a link used on one is
refused on another, and a session opened on one is valid on all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class ConsoleKey(SQLModel, table=True):
    """The one row holding the secret that signs sign-in links (made on first use)."""

    __tablename__ = "console_key"

    id: int = Field(default=1, primary_key=True)
    secret: str = Field(max_length=128)


class ConsoleLinkUse(SQLModel, table=True):
    """A sign-in link that was used: its nonce may not open a second session."""

    __tablename__ = "console_link_use"

    nonce: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64)
    used_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


class ConsoleSession(SQLModel, table=True):
    """An open console session; ``id`` is the SHA-256 of the cookie's value, never the value itself."""

    __tablename__ = "console_session"

    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64, index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ConsoleRepo:
    """Signing key, used links and sessions of the web console."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def secret(self, make: str) -> str:
        """The stored signing secret; ``make`` is stored when there is none yet (the first process wins)."""
        async with self._sessions() as session:
            found = await session.get(ConsoleKey, 1)
            if found is not None:
                return found.secret
        try:
            async with self._sessions() as session, session.begin():
                session.add(ConsoleKey(id=1, secret=make))
        except IntegrityError:  # another process stored one meanwhile
            pass
        async with self._sessions() as session:
            stored = await session.get(ConsoleKey, 1)
            assert stored is not None
            return stored.secret

    async def use_link(self, nonce: str, *, user_id: str, at: datetime, expires_at: datetime) -> bool:
        """Mark a link used; False when it was used before (here or in another process)."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(ConsoleLinkUse(nonce=nonce, user_id=user_id, used_at=at, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    async def open(self, *, session_id: str, user_id: str, csrf: str, at: datetime) -> ConsoleSession:
        """Record a new session."""
        row = ConsoleSession(id=session_id, user_id=user_id, csrf=csrf, created_at=at, last_seen_at=at)
        async with self._sessions() as session, session.begin():
            session.add(row)
        return row

    async def get(self, session_id: str) -> ConsoleSession | None:
        """A session by the hash of its cookie."""
        async with self._sessions() as session:
            return await session.get(ConsoleSession, session_id)

    async def touch(self, session_id: str, at: datetime) -> None:
        """Move a session's idle clock forward."""
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(ConsoleSession).where(col(ConsoleSession.id) == session_id).values(last_seen_at=at)
            )

    async def end(self, session_id: str) -> None:
        """Sign a session out."""
        async with self._sessions() as session, session.begin():
            await session.exec(delete(ConsoleSession).where(col(ConsoleSession.id) == session_id))

    async def prune(self, *, idle_before: datetime, links_before: datetime) -> int:
        """Forget sessions idle since before ``idle_before`` and used links expired before ``links_before``."""
        async with self._sessions() as session, session.begin():
            gone = await session.exec(
                delete(ConsoleSession).where(col(ConsoleSession.last_seen_at) < idle_before)
            )
            await session.exec(delete(ConsoleLinkUse).where(col(ConsoleLinkUse.expires_at) < links_before))
            return int(gone.rowcount or 0)

    async def sessions_of(self, user_id: str) -> list[ConsoleSession]:
        """A user's open sessions, newest first."""
        query = (
            select(ConsoleSession)
            .where(ConsoleSession.user_id == user_id)
            .order_by(col(ConsoleSession.created_at).desc())
        )
        async with self._sessions() as session:
            return list((await session.exec(query)).all())
