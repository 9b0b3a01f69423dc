"""The outbox send log: one row per delivery attempt, used to pace senders to the platform limits.

Limits are sliding windows per target ("20 messages a minute to this robot"). The log lives in the database so
that several processes delivering from one outbox share one budget; a slot is reserved with one conditional
``INSERT … SELECT … WHERE (count in window) < limit``, under a per-target advisory lock on PostgreSQL (SQLite
serialises writers on its own).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, ColumnElement, Index, ScalarSelect, and_, delete, func, insert, literal, text
from sqlalchemy import select as core_select
from sqlmodel import Field, SQLModel, col, select

from bot.store.repos import Sessions
from bot.store.types import UTCDateTime


@dataclass(slots=True, frozen=True)
class RateLimit:
    """At most ``count`` sends per ``seconds`` (a sliding window) to one target."""

    count: int
    seconds: float

    @property
    def window(self) -> timedelta:
        """The window as a ``timedelta``."""
        return timedelta(seconds=self.seconds)


class OutboxSend(SQLModel, table=True):
    """One delivery attempt to a target (a reserved send slot)."""

    __tablename__ = "outbox_send"
    __table_args__ = (Index("ix_outbox_send_target_at", "target_key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    target_key: str = Field(max_length=600)
    message_id: int
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


def _lock_id(key: str) -> int:
    # a stable signed 64-bit id for pg_advisory_xact_lock
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big", signed=True)


class SendLogRepo:
    """Reserves send slots within a target's rate limits."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    @property
    def _postgres(self) -> bool:
        return bool(self._sessions.kw["bind"].dialect.name == "postgresql")

    async def reserve(
        self, target_key: str, message_id: int, now: datetime, limits: Sequence[RateLimit]
    ) -> datetime | None:
        """Take a send slot for ``target_key`` now; None when taken, else the time the next slot frees up."""
        values = select(literal(target_key), literal(message_id), literal(now, UTCDateTime()))
        conditions: list[ColumnElement[bool]] = [
            self._count_since(target_key, now - limit.window) < limit.count for limit in limits
        ]
        if conditions:
            values = values.where(and_(*conditions))
        statement = insert(OutboxSend).from_select(["target_key", "message_id", "at"], values)
        async with self._sessions() as session, session.begin():
            if self._postgres and limits:
                connection = await session.connection()
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(target_key)}
                )
            result = await session.exec(statement)
            if result.rowcount == 1:
                return None
            free_at = now
            for limit in limits:
                # the limit-th most recent send leaves the window first among those that fill it
                nth = (
                    await session.exec(
                        select(col(OutboxSend.at))
                        .where(col(OutboxSend.target_key) == target_key)
                        .where(col(OutboxSend.at) > now - limit.window)
                        .order_by(col(OutboxSend.at).desc())
                        .offset(limit.count - 1)
                        .limit(1)
                    )
                ).first()
                if nth is not None:
                    free_at = max(free_at, nth + limit.window)
            return free_at

    @staticmethod
    def _count_since(target_key: str, since: datetime) -> ScalarSelect[int]:
        return (
            core_select(func.count())
            .select_from(OutboxSend)
            .where(col(OutboxSend.target_key) == target_key)
            .where(col(OutboxSend.at) > since)
            .scalar_subquery()
        )

    async def sends(self, target_key: str) -> list[datetime]:
        """Every logged send to a target, oldest first (for tests and diagnostics)."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(col(OutboxSend.at))
                .where(col(OutboxSend.target_key) == target_key)
                .order_by(col(OutboxSend.at))
            )
            return list(rows.all())

    async def prune(self, older_than: datetime) -> int:
        """Forget sends older than the longest window."""
        async with self._sessions() as session, session.begin():
            result = await session.exec(delete(OutboxSend).where(col(OutboxSend.at) < older_than))
            return int(result.rowcount or 0)
