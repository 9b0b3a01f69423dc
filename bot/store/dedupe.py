"""The inbox: every message id claimed before it is acted on, with its content, its owner and its answer.

A message is claimed (and so on record) before the callback is answered; its handler then runs in one unit of
work that ends by marking it done (``finish``) — only the claim's owner can, so a handler whose claim was
taken over (its process seemed dead) rolls everything back. A claim never finished is taken over by a retry
after ``CLAIM_LEASE`` or by the recovery worker after ``RECOVERY_AFTER`` (``stranded``)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Integer, String, Text, bindparam, delete, func, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, col

from bot.store.batch import Coalescer
from bot.store.engine import Sessions, transaction
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
    # the message itself (``Event.to_record()``), so that a claim whose handling never finished can be redone
    event: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    owner: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    attempts: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    # the callback was answered "later": the handler is still at work and a retry must not take over
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))






@dataclass(slots=True, frozen=True)
class Claimed:
    """The outcome of claiming a message id: ``new`` (act on it), or a retry — answered already (``reply``
    holds the answer given, so the retry gets the same one) or still being handled elsewhere."""

    new: bool
    answered: bool = False
    reply: str | None = None
    owner: str | None = None  # the claim's token (new claims): only its holder may ``finish`` the message
    attempts: int = 1

    def __bool__(self) -> bool:
        return self.new


# A claim nobody answered within this long is taken over by a retry: the process that claimed it died (every
# callback is answered within WeCom's 5 s, and a retry means no answer arrived).
CLAIM_LEASE = timedelta(seconds=4)
# A claim still unfinished after this long is finished by the recovery worker (its handler crashed, or the
# database failed under it): longer than any handler takes, short enough that the asker is not left waiting.
RECOVERY_AFTER = timedelta(seconds=30)
MAX_ATTEMPTS = 5  # a message whose handling failed this often is given up (answered with an apology)


@dataclass(slots=True, frozen=True)
class Stranded:
    """An unfinished claim: its key, its message and how often it was tried."""

    key: str
    event: dict[str, Any]
    attempts: int


class DedupeRepo:
    """Processed message ids, shared by every process through the database.

    Claims and answers are written in batches (:class:`~bot.store.batch.Coalescer`): under a burst, one
    statement and one commit serve every request in flight. A claim is committed before the handler runs, so a
    callback answered 200 is always on record; ``answered`` records the answer, written behind the reply.
    """

    def __init__(self, sessions: Sessions, engine: AsyncEngine | None = None) -> None:
        self._sessions = sessions
        self._engine = engine if engine is not None else sessions.kw["bind"]
        self._claims: Coalescer[tuple[str, datetime, timedelta | None, dict[str, Any] | None], Claimed] = Coalescer(
            self._claim_batch
        )
        self._answers: Coalescer[tuple[str, datetime, str | None], None] = Coalescer(self._answer_batch)

    async def claim(
        self,
        key: str,
        at: datetime | None = None,
        *,
        lease: timedelta | None = None,
        event: dict[str, Any] | None = None,
    ) -> Claimed:
        """Record a message id (and the message, ``event``). Not ``new`` if it was recorded before (a retry) —
        unless a ``lease`` is given and the earlier claim was never ``answered`` within it (its process died):
        then the retry takes over, with a new owner token."""
        return await self._claims.submit((key, at or utcnow(), lease, event))

    async def answered(self, key: str, reply: str | None, at: datetime | None = None) -> None:
        """Record (batched) that a message was answered, and with what; the first answer recorded stays (a
        channel that answered "later" records ``""``, so the late result is not given again to a retry)."""
        await self._answers.submit((key, at or utcnow(), reply))

    async def flush(self) -> None:
        """Wait for writes still under way (shutdown)."""
        await self._claims.flush()
        await self._answers.flush()

    async def _claim_batch(
        self, items: Sequence[tuple[str, datetime, timedelta | None, dict[str, Any] | None]]
    ) -> list[Claimed]:
        table = ProcessedMessage.__table__  # type: ignore[attr-defined]
        first: dict[str, tuple[datetime, dict[str, Any] | None]] = {}
        leases: dict[str, timedelta | None] = {}
        for key, at, lease, event in items:
            first.setdefault(key, (at, event))
            leases.setdefault(key, lease)
        owners = {key: secrets.token_hex(8) for key in first}
        async with self._engine.begin() as conn:
            insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
            statement = (
                insert(table)
                .values(
                    [
                        {"key": key, "created_at": at, "event": event, "owner": owners[key], "attempts": 1}
                        for key, (at, event) in first.items()
                    ]
                )
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(table.c.key)
            )
            won = set((await conn.execute(statement)).scalars().all())
            outcome = {key: Claimed(new=True, owner=owners[key]) for key in won}
            retried = [key for key in first if key not in won]
            if retried:
                rows = await conn.execute(
                    core_select(
                        table.c.key,
                        table.c.created_at,
                        table.c.answered_at,
                        table.c.reply,
                        table.c.attempts,
                        table.c.acknowledged_at,
                    ).where(table.c.key.in_(retried))
                )
                for key, created_at, answered_at, reply, attempts, acknowledged_at in rows.all():
                    at = first[key][0]
                    if answered_at is not None:
                        outcome[key] = Claimed(new=False, answered=True, reply=reply)
                    elif acknowledged_at is not None and (leases[key] or timedelta(0)) < RECOVERY_AFTER:
                        # answered "later" and still being handled: the answer follows through the channel
                        outcome[key] = Claimed(new=False, answered=True, reply=None)
                    elif (lease := leases[key]) is not None and created_at < at - lease:
                        taken = await conn.execute(
                            update(table)
                            .where(table.c.key == key, table.c.answered_at.is_(None), table.c.created_at == created_at)
                            .values(created_at=at, owner=owners[key], attempts=attempts + 1)
                        )
                        outcome[key] = (
                            Claimed(new=True, owner=owners[key], attempts=attempts + 1)
                            if taken.rowcount
                            else Claimed(new=False)
                        )
        results: list[Claimed] = []
        seen: set[str] = set()
        for key, _, _, _ in items:
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

    async def acknowledged(self, key: str, at: datetime) -> None:
        """Record that the callback was answered "later" (batched): a retry now waits for the handler."""
        table = ProcessedMessage.__table__  # type: ignore[attr-defined]
        async with self._engine.begin() as conn:
            await conn.execute(
                update(table)
                .where(table.c.key == key, table.c.answered_at.is_(None), table.c.acknowledged_at.is_(None))
                .values(acknowledged_at=at)
            )

    async def finish(self, key: str, owner: str | None, reply: str, at: datetime) -> bool:
        """Mark a claimed message done with its answer — in the current unit of work, so it commits with the
        message's effects. False (and nothing written) when the claim is no longer ``owner``'s: it was taken
        over, and the caller must roll back."""
        table = ProcessedMessage.__table__  # type: ignore[attr-defined]
        statement = (
            update(table)
            .where(table.c.key == key, table.c.answered_at.is_(None))
            .values(answered_at=at, reply=reply, owner=None)
        )
        if owner is not None:
            statement = statement.where(table.c.owner == owner)
        async with transaction(self._engine) as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def answer_of(self, key: str) -> tuple[bool, str | None]:
        """Whether a message is done, and the answer recorded for it."""
        table = ProcessedMessage.__table__  # type: ignore[attr-defined]
        async with self._engine.connect() as conn:
            row = (await conn.execute(core_select(table.c.answered_at, table.c.reply).where(table.c.key == key))).first()
        return (row is not None and row[0] is not None), (row[1] if row is not None else None)

    async def stranded(self, older_than: datetime, *, limit: int = 50) -> list[Stranded]:
        """Claims with a message on record, never finished, last claimed before ``older_than``, oldest first."""
        table = ProcessedMessage.__table__  # type: ignore[attr-defined]
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                core_select(table.c.key, table.c.event, table.c.attempts)
                .where(
                    table.c.answered_at.is_(None),
                    table.c.created_at < older_than,
                    table.c.event.is_not(None),
                )
                .order_by(table.c.created_at)
                .limit(limit)
            )
            return [Stranded(key=key, event=event, attempts=attempts) for key, event, attempts in rows.all()]

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
