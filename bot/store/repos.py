"""Repositories for the core tables; handlers call these, never raw sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

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

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

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


class MemberRepo:
    """People the bot has seen, and explicitly granted roles."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def get(self, user_id: str) -> Member | None:
        """One member by user id."""
        async with self._sessions() as session:
            return await session.get(Member, user_id)

    async def seen(self, user_id: str, at: datetime) -> None:
        """Record that a user wrote to the bot."""
        async with self._sessions() as session, session.begin():
            member = await session.get(Member, user_id)
            if member is None:
                session.add(Member(user_id=user_id, first_seen_at=at, last_seen_at=at))
            else:
                member.last_seen_at = at

    async def grant(self, user_id: str, role: str, *, alliance_id: str | None = None) -> Member:
        """Grant a role (e.g. union staff as alliance lead)."""
        async with self._sessions() as session, session.begin():
            member = await session.get(Member, user_id)
            if member is None:
                member = Member(user_id=user_id)
                session.add(member)
            member.role = role
            member.alliance_id = alliance_id
            return member


class DedupeRepo:
    """Processed message ids, shared by every process through the database."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def claim(self, key: str, at: datetime | None = None) -> bool:
        """Record a message id; False if it was already recorded (a retry)."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(ProcessedMessage(key=key, created_at=at or utcnow()))
        except IntegrityError:
            return False
        return True

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
        """Queue messages; those whose dedupe key is already queued are skipped. Returns how many were new."""
        added = 0
        for message in messages:
            try:
                async with self._sessions() as own, own.begin():
                    own.add(message)
                added += 1
            except IntegrityError:
                continue
        return added

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
