"""Repositories for the core tables; handlers call these, never raw sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.batch import Coalescer
from bot.store.models import Alliance, Member, OutboxMessage, OutboxStatus, ProcessedMessage, Studio
from bot.store.roster import Roster
from bot.store.types import utcnow

Sessions = async_sessionmaker[AsyncSession]


@dataclass(slots=True, frozen=True)
class ImportResult:
    """What a roster import changed."""

    alliances_created: int
    alliances_updated: int
    studios_created: int
    studios_updated: int
    unchanged: int


class Generation:
    """A counter bumped by writes that change who may do what (roster imports, granted roles); caches of
    callers' roles compare it to know they are stale."""

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        """Mark cached roles stale."""
        self.value += 1


class AllianceRepo:
    """Alliances."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def all(self) -> list[Alliance]:
        """All alliances, by id."""
        async with self._sessions() as session:
            return list((await session.exec(select(Alliance).order_by(col(Alliance.id)))).all())

    async def get(self, alliance_id: str) -> Alliance | None:
        """One alliance by id."""
        async with self._sessions() as session:
            return await session.get(Alliance, alliance_id)

    async def find(self, word: str) -> Alliance | None:
        """An alliance by id, exact name, or a unique part of its name (``隧道`` → 隧道与地下工程联盟)."""
        word = word.strip()
        alliances = await self.all()
        for alliance in alliances:
            if word in (alliance.id, alliance.name):
                return alliance
        partial = [a for a in alliances if word and (word in a.name or word.lower() in a.id.lower())]
        return partial[0] if len(partial) == 1 else None

    async def led_by(self, user_id: str) -> list[Alliance]:
        """Alliances whose lead is this user."""
        async with self._sessions() as session:
            rows = await session.exec(select(Alliance).where(Alliance.lead_userid == user_id))
            return list(rows.all())


class StudioRepo:
    """Studios, and the roster import that writes them."""

    def __init__(self, sessions: Sessions, roles: Generation | None = None) -> None:
        self._sessions = sessions
        self._roles = roles or Generation()

    async def all(self, alliance_id: str | None = None) -> list[Studio]:
        """Studios, optionally of one alliance, by alliance then id."""
        query = select(Studio).order_by(col(Studio.alliance_id), col(Studio.id))
        if alliance_id is not None:
            query = query.where(Studio.alliance_id == alliance_id)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def get(self, studio_id: str) -> Studio | None:
        """One studio by id (case-insensitive)."""
        async with self._sessions() as session:
            found = await session.get(Studio, studio_id)
            if found is None:
                rows = await session.exec(select(Studio).where(func.lower(Studio.id) == studio_id.lower()))
                found = rows.first()
            return found

    async def led_by(self, user_id: str) -> list[Studio]:
        """Studios whose lead is this user."""
        async with self._sessions() as session:
            rows = await session.exec(select(Studio).where(Studio.lead_userid == user_id))
            return list(rows.all())

    async def count(self) -> int:
        """How many studios there are."""
        async with self._sessions() as session:
            return (await session.exec(select(func.count()).select_from(Studio))).one()

    async def import_roster(self, roster: Roster) -> ImportResult:
        """Upsert every alliance and studio by id in one transaction (all or nothing)."""
        try:
            return await self._import_roster(roster)
        finally:
            self._roles.bump()

    async def _import_roster(self, roster: Roster) -> ImportResult:
        created_a = updated_a = created_s = updated_s = unchanged = 0
        now = utcnow()
        async with self._sessions() as session, session.begin():
            for entry in roster.alliances:
                values: dict[str, Any] = {
                    "name": entry.name,
                    "lead_name": entry.lead.name if entry.lead else None,
                    "lead_userid": entry.lead.wecom_userid if entry.lead else None,
                    "lead_since": entry.lead_since,
                    "announce": entry.announce.model_dump(),
                }
                alliance = await session.get(Alliance, entry.id)
                if alliance is None:
                    session.add(Alliance(id=entry.id, updated_at=now, **values))
                    created_a += 1
                elif _apply(alliance, values):
                    alliance.updated_at = now
                    updated_a += 1
                else:
                    unchanged += 1
            await session.flush()
            for studio_entry in roster.studios:
                values = {
                    "name": studio_entry.name,
                    "alliance_id": studio_entry.alliance,
                    "unit": studio_entry.unit,
                    "type": studio_entry.type,
                    "stars": studio_entry.stars,
                    "lead_name": studio_entry.lead.name,
                    "lead_userid": studio_entry.lead.wecom_userid,
                    "expertise": list(studio_entry.expertise),
                    "description": studio_entry.description,
                }
                studio = await session.get(Studio, studio_entry.id)
                if studio is None:
                    session.add(Studio(id=studio_entry.id, updated_at=now, **values))
                    created_s += 1
                elif _apply(studio, values):
                    studio.updated_at = now
                    updated_s += 1
                else:
                    unchanged += 1
        return ImportResult(created_a, updated_a, created_s, updated_s, unchanged)


def _apply(row: object, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


SEEN_PRECISION = timedelta(minutes=5)


class MemberRepo:
    """People the bot has seen, and explicitly granted roles."""

    def __init__(self, sessions: Sessions, roles: Generation | None = None) -> None:
        self._sessions = sessions
        self._roles = roles or Generation()
        self._seen: dict[str, datetime] = {}

    async def get(self, user_id: str) -> Member | None:
        """One member by user id."""
        async with self._sessions() as session:
            return await session.get(Member, user_id)

    async def seen(self, user_id: str, at: datetime) -> None:
        """Record that a user wrote to the bot (at most every few minutes per user and process: it is a
        last-seen date, not a message log, and a burst of messages must not cost a write each)."""
        last = self._seen.get(user_id)
        if last is not None and timedelta(0) <= at - last < SEEN_PRECISION:
            return
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[user_id] = at
        async with self._sessions() as session, session.begin():
            member = await session.get(Member, user_id)
            if member is None:
                session.add(Member(user_id=user_id, first_seen_at=at, last_seen_at=at))
            else:
                member.last_seen_at = at

    async def grant(self, user_id: str, role: str, *, alliance_id: str | None = None) -> Member:
        """Grant a role (e.g. union staff as alliance lead)."""
        try:
            return await self._grant(user_id, role, alliance_id=alliance_id)
        finally:
            self._roles.bump()

    async def _grant(self, user_id: str, role: str, *, alliance_id: str | None) -> Member:
        async with self._sessions() as session, session.begin():
            member = await session.get(Member, user_id)
            if member is None:
                member = Member(user_id=user_id)
                session.add(member)
            member.role = role
            member.alliance_id = alliance_id
            return member


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
        async with engine.begin() as conn:  # executemany, sent as one multi-row statement ("insertmanyvalues")
            return len((await conn.execute(statement, rows)).all())

    async def claim_due(
        self, now: datetime, *, limit: int = 50, lease: timedelta = timedelta(seconds=60)
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
