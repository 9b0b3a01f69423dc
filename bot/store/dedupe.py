"""Deduplication of incoming messages: the ids already acted on, with the answer each was given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Text, bindparam, delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, col, select

from bot.store.batch import Coalescer
from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class ProcessedMessage(SQLModel, table=True):
    """A message id already acted on; inserting twice fails, which is how retries are dropped."""

    __tablename__ = "processed_message"

    key: str = Field(primary_key=True, max_length=255)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    # when the message was answered (a claim never answered is taken over by a retry) and the answer given
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    reply: str | None = Field(default=None, sa_column=Column(Text, nullable=True))






@dataclass(slots=True, frozen=True)
class Claimed:
    """The outcome of claiming a message id: ``new`` (act on it), or a retry — answered already (``reply``
    holds the answer given, so the retry gets the same one) or still being handled elsewhere."""

    new: bool
    answered: bool = False
    reply: str | None = None

    def __bool__(self) -> bool:
        return self.new


# A claim nobody answered within this long is taken over by a retry: the process that claimed it died (every
# callback is answered within WeCom's 5 s, and a retry means no answer arrived).
CLAIM_LEASE = timedelta(seconds=4)


class DedupeRepo:
    """Processed message ids, shared by every process through the database.

    Claims and answers are written in batches (:class:`~bot.store.batch.Coalescer`): under a burst, one
    statement and one commit serve every request in flight. A claim is committed before the handler runs, so a
    callback answered 200 is always on record; ``answered`` records the answer, written behind the reply.
    """

    def __init__(self, sessions: Sessions, engine: AsyncEngine | None = None) -> None:
        self._sessions = sessions
        self._engine = engine if engine is not None else sessions.kw["bind"]
        self._claims: Coalescer[tuple[str, datetime, timedelta | None], Claimed] = Coalescer(self._claim_batch)
        self._answers: Coalescer[tuple[str, datetime, str | None], None] = Coalescer(self._answer_batch)

    async def claim(self, key: str, at: datetime | None = None, *, lease: timedelta | None = None) -> Claimed:
        """Record a message id. Not ``new`` if it was recorded before (a retry) — unless a ``lease`` is given
        and the earlier claim was never ``answered`` within it (its process died): then the retry takes over."""
        return await self._claims.submit((key, at or utcnow(), lease))

    async def answered(self, key: str, reply: str | None, at: datetime | None = None) -> None:
        """Record (batched) that a message was answered, and with what; the first answer recorded stays (a
        channel that answered "later" records ``""``, so the late result is not given again to a retry)."""
        await self._answers.submit((key, at or utcnow(), reply))

    async def flush(self) -> None:
        """Wait for writes still under way (shutdown)."""
        await self._claims.flush()
        await self._answers.flush()

    async def _claim_batch(self, items: Sequence[tuple[str, datetime, timedelta | None]]) -> list[Claimed]:
        table = ProcessedMessage.__table__  # type: ignore[attr-defined]
        first: dict[str, datetime] = {}
        leases: dict[str, timedelta | None] = {}
        for key, at, lease in items:
            first.setdefault(key, at)
            leases.setdefault(key, lease)
        async with self._engine.begin() as conn:
            insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
            statement = (
                insert(table)
                .values([{"key": key, "created_at": at} for key, at in first.items()])
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(table.c.key)
            )
            won = set((await conn.execute(statement)).scalars().all())
            outcome = {key: Claimed(new=True) for key in won}
            retried = [key for key in first if key not in won]
            if retried:
                rows = await conn.execute(
                    select(table.c.key, table.c.created_at, table.c.answered_at, table.c.reply).where(
                        table.c.key.in_(retried)
                    )
                )
                for key, created_at, answered_at, reply in rows.all():
                    if answered_at is not None:
                        outcome[key] = Claimed(new=False, answered=True, reply=reply)
                    elif (lease := leases[key]) is not None and created_at < first[key] - lease:
                        taken = await conn.execute(
                            update(table)
                            .where(table.c.key == key, table.c.answered_at.is_(None), table.c.created_at == created_at)
                            .values(created_at=first[key])
                        )
                        outcome[key] = Claimed(new=bool(taken.rowcount))
        results: list[Claimed] = []
        seen: set[str] = set()
        for key, _, _ in items:
            # the same id twice in one batch: the first occurrence acts, the second is a retry in flight
            results.append(outcome.get(key, Claimed(new=False)) if key not in seen else Claimed(new=False))
            seen.add(key)
        return results

    async def _answer_batch(self, items: Sequence[tuple[str, datetime, str | None]]) -> list[None]:
        table = ProcessedMessage.__table__  # type: ignore[attr-defined]
        statement = (
            update(table)
            .where(table.c.key == bindparam("b_key"))
            .values(
                answered_at=func.coalesce(table.c.answered_at, bindparam("b_at", type_=table.c.answered_at.type)),
                reply=func.coalesce(table.c.reply, bindparam("b_reply", type_=table.c.reply.type)),
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement, [{"b_key": k, "b_at": at, "b_reply": r} for k, at, r in items])
        return [None] * len(items)

    async def release(self, key: str) -> None:
        """Forget a message id, so a retry is processed (used when handling failed before any effect)."""
        async with self._sessions() as session, session.begin():
            await session.exec(delete(ProcessedMessage).where(col(ProcessedMessage.key) == key))

    async def prune(self, older_than: datetime) -> int:
        """Drop ids older than WeCom could still retry."""
        async with self._sessions() as session, session.begin():
            result = await session.exec(
                delete(ProcessedMessage).where(col(ProcessedMessage.created_at) < older_than)
            )
            return int(result.rowcount or 0)
