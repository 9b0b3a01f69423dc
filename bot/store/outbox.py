"""The outbox's tables and repositories: queued outbound messages, and the shared send log that paces them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Index,
    ScalarSelect,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    text,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions, transaction
from bot.store.types import UTCDateTime, utcnow


class OutboxStatus(StrEnum):
    """Delivery state of an outbox message."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    """An outbound message, written before it is sent and delivered by the outbox worker."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    target_kind: str = Field(max_length=32)
    target: str = Field(max_length=512)
    text: str
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=16)
    attempts: int = 0
    last_error: str | None = None
    dedupe_key: str | None = Field(default=None, max_length=255)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # set just before a send, cleared when its outcome is recorded: found set by a worker taking over, the
    # message may have reached WeCom already (its worker died waiting for the answer)
    sending_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    in_doubt: int = 0  # how many times a send of it was found in flight


class OutboxRepo:
    """The outbox table: every outbound message is written here before delivery."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def add(self, messages: Sequence[OutboxMessage]) -> int:
        """Queue messages; those whose dedupe key is already queued are skipped. Returns how many were new.

        One ``INSERT … ON CONFLICT DO NOTHING`` for all of them (a problem notifies three leads at once)."""
        if not messages:
            return 0
        table = OutboxMessage.__table__  # type: ignore[attr-defined]
        rows = [message.model_dump(exclude={"id"}) for message in messages]
        engine = self._sessions.kw["bind"]
        insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        statement = insert(table).on_conflict_do_nothing().returning(table.c.id)
        async with transaction(engine) as conn:  # executemany, sent as one multi-row statement ("insertmanyvalues")
            return len((await conn.execute(statement, rows)).all())

    async def claim_due(
        self,
        now: datetime,
        *,
        limit: int = 50,
        lease: timedelta = timedelta(seconds=60),
        skip_kinds: Sequence[str] = (),
    ) -> list[OutboxMessage]:
        """Lease due pending messages to this worker so no other worker or process sends them meanwhile.

        One conditional ``UPDATE … RETURNING``: on SQLite a separate SELECT would let two workers read the same
        free row before either writes its lease. On PostgreSQL the candidates are picked ``SKIP LOCKED`` in a
        materialised CTE: as an ``IN (subquery)`` the planner may rescan the subquery for every row it updates,
        and each rescan skips the rows just locked, so the ``LIMIT`` would not hold.
        """
        free = (
            (col(OutboxMessage.status) == OutboxStatus.PENDING.value)
            & (col(OutboxMessage.next_attempt_at) <= now)
            & or_(col(OutboxMessage.lease_until).is_(None), col(OutboxMessage.lease_until) < now)
        )
        if skip_kinds:  # kinds another process delivers (the long connection's holder)
            free = free & col(OutboxMessage.target_kind).not_in(list(skip_kinds))
        candidates = (
            select(col(OutboxMessage.id))
            .where(free)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
        )
        if self._sessions.kw["bind"].dialect.name == "postgresql":
            picked = candidates.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            chosen = col(OutboxMessage.id) == picked.c.id
        else:
            chosen = col(OutboxMessage.id).in_(candidates.scalar_subquery())
        statement = (
            update(OutboxMessage)
            .where(chosen)
            .where(free)  # re-checked under the row lock / write lock
            .values(lease_until=now + lease)
            .returning(col(OutboxMessage.id))
        )
        async with self._sessions() as session, session.begin():
            ids = list((await session.exec(statement)).scalars().all())
            if not ids:
                return []
            rows = await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids))
                .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            )
            return list(rows.all())

    async def mark_sending(self, message_id: int, at: datetime, *, in_doubt: bool = False) -> None:
        """Mark a message in flight, committed before the send; ``in_doubt`` counts a takeover of one found
        in flight."""
        values: dict[str, object] = {"sending_since": at}
        if in_doubt:
            values["in_doubt"] = OutboxMessage.in_doubt + 1
        async with self._sessions() as session, session.begin():
            await session.exec(update(OutboxMessage).where(col(OutboxMessage.id) == message_id).values(**values))

    async def mark_sent(self, message_id: int, at: datetime) -> None:
        """Record a delivery."""
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == message_id)
                .values(
                    status=OutboxStatus.SENT.value,
                    sent_at=at,
                    lease_until=None,
                    sending_since=None,
                    attempts=OutboxMessage.attempts + 1,
                    last_error=None,
                )
            )

    async def mark_retry(self, message_id: int, *, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt; ``retry_at=None`` gives up (status failed)."""
        values: dict[str, object] = {
            "attempts": OutboxMessage.attempts + 1,
            "last_error": error[:2000],
            "lease_until": None,
            "sending_since": None,
        }
        if retry_at is None:
            values["status"] = OutboxStatus.FAILED.value
        else:
            values["next_attempt_at"] = retry_at
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id) == message_id).values(**values)
            )

    async def defer(self, message_ids: Sequence[int], until: datetime) -> None:
        """Hold claimed messages back until ``until`` (pacing) without counting an attempt; releases the lease."""
        if not message_ids:
            return
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(list(message_ids)))
                .values(next_attempt_at=until, lease_until=None)
            )

    async def release(self, message_ids: Sequence[int]) -> None:
        """Give claimed messages back unattempted (a stopping worker), so another can take them at once."""
        if not message_ids:
            return
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(list(message_ids)))
                .where(col(OutboxMessage.status) == OutboxStatus.PENDING.value)
                .values(lease_until=None)
            )

    async def listing(
        self, statuses: Sequence[str] = (OutboxStatus.PENDING, OutboxStatus.FAILED), limit: int = 200
    ) -> list[OutboxMessage]:
        """Messages in the given states, oldest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.status).in_([str(s) for s in statuses]))
                .order_by(col(OutboxMessage.id))
                .limit(limit)
            )
            return list(rows.all())

    async def counts(self) -> dict[str, int]:
        """How many messages are in each state."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status))
            )
            return {status: count for status, count in rows.all()}


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
