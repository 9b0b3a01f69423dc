"""The studios feature's tables and repositories: alliances, studios, members and their roles, the roster import."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col, select

from bot.store.batch import Coalescer
from bot.store.engine import Sessions, offloaded
from bot.store.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from bot.services.studios import Roster


class Alliance(SQLModel, table=True):
    """One of the specialty alliances (桥梁, 隧道, 城轨, 四电)."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    lead_name: str | None = Field(default=None, max_length=100)
    lead_userid: str | None = Field(default=None, max_length=64, index=True)
    lead_since: date | None = None
    announce: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Studio(SQLModel, table=True):
    """A labour-model or craftsman innovation studio (劳模和工匠人才创新工作室)."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    alliance_id: str = Field(foreign_key="alliance.id", index=True, max_length=64)
    unit: str = Field(max_length=200)
    type: str = Field(max_length=32)
    stars: int
    lead_name: str = Field(max_length=100)
    lead_userid: str = Field(index=True, max_length=64)
    expertise: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str = ""
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class MemberRole(StrEnum):
    """Roles that can be granted explicitly; studio and alliance leads also follow from the roster."""

    MEMBER = "member"
    STUDIO_LEAD = "studio_lead"
    ALLIANCE_LEAD = "alliance_lead"
    ADMIN = "admin"


class Member(SQLModel, table=True):
    """A person the bot has seen or been told about, with an optionally granted role."""

    user_id: str = Field(primary_key=True, max_length=64)
    name: str | None = Field(default=None, max_length=100)
    role: str = Field(default=MemberRole.MEMBER.value, max_length=32)
    alliance_id: str | None = Field(default=None, max_length=64)
    studio_id: str | None = Field(default=None, max_length=64)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


@dataclass(slots=True, frozen=True)
class KeptStars:
    """A studio whose stars an evaluation round set and a roster import left alone (the roster said otherwise)."""

    studio_id: str
    name: str
    stars: int  # the round's, kept
    roster: int  # the roster's, not applied
    round_id: int


@dataclass(slots=True, frozen=True)
class ImportResult:
    """What a roster import changed."""

    alliances_created: int
    alliances_updated: int
    studios_created: int
    studios_updated: int
    unchanged: int
    kept_stars: tuple[KeptStars, ...] = ()
    stars_changed: int = 0  # existing studios whose stars the roster changed (each in the star history)


class RoleVersion(SQLModel, table=True):
    """The one row counting changes to roles (roster imports, grants), for every process's role cache."""

    __tablename__ = "role_version"

    id: int = Field(default=1, primary_key=True)
    version: int = 0


class Generation:
    """Which version of "who may do what" this process has seen: the database's counter (bumped in the same
    transaction as a roster import or a grant, by any process) plus a local one (bumped at once after such a
    write here). Callers' role caches compare it to know they are stale; the database is read at most every
    ``recheck`` seconds, so a change made by another process is seen within that."""

    def __init__(self, sessions: Sessions | None = None, *, recheck: float = 1.0) -> None:
        self._sessions = sessions
        self.recheck = recheck
        self.local = 0
        self._stored = 0
        self._read_at = float("-inf")

    @property
    def value(self) -> tuple[int, int]:
        """The version as last seen (no database read)."""
        return self._stored, self.local

    def bump(self) -> None:
        """Mark cached roles stale in this process."""
        self.local += 1

    async def current(self) -> tuple[int, int]:
        """The version, reading the database's counter when the last read is older than ``recheck``."""
        now = time.monotonic()
        if self._sessions is not None and now - self._read_at >= self.recheck:
            async with self._sessions() as session:
                stored = (await session.exec(select(RoleVersion.version).where(RoleVersion.id == 1))).first()
            self._stored, self._read_at = stored or 0, now
        return self.value

    @staticmethod
    async def bump_stored(session: Any) -> None:
        """Count a change to roles in the database, inside the transaction that makes it."""
        await session.exec(update(RoleVersion).where(col(RoleVersion.id) == 1).values(version=RoleVersion.version + 1))


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
        word = unicodedata.normalize("NFKC", word).strip().lstrip("@")
        alliances = await self.all()
        for alliance in alliances:
            if word.lower() == alliance.id.lower() or word == alliance.name:
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

    async def find(self, word: str) -> Studio | None:
        """A studio by id (any case, full-width folded), exact name, or a unique part of its name
        (``盾构`` → the one studio whose name contains it)."""
        folded = unicodedata.normalize("NFKC", word).strip().lstrip("@")
        if not folded:
            return None
        found = await self.get(folded)
        if found is not None:
            return found
        studios = await self.all()
        exact = [s for s in studios if s.name == folded]
        if exact:
            return exact[0]
        partial = [s for s in studios if folded in s.name]
        return partial[0] if len(partial) == 1 else None

    async def led_by(self, user_id: str) -> list[Studio]:
        """Studios whose lead is this user."""
        async with self._sessions() as session:
            rows = await session.exec(select(Studio).where(Studio.lead_userid == user_id))
            return list(rows.all())

    async def count(self) -> int:
        """How many studios there are."""
        async with self._sessions() as session:
            return (await session.exec(select(func.count()).select_from(Studio))).one()

    async def update(self, studio_id: str, values: dict[str, Any]) -> Studio | None:
        """Change one studio's fields (a lead may change: roles are re-read); None for an unknown studio."""
        try:
            async with self._sessions() as session, session.begin():
                studio = await session.get(Studio, studio_id)
                if studio is None:
                    return None
                if _apply(studio, values):
                    studio.updated_at = utcnow()
                    await Generation.bump_stored(session)
                return studio
        finally:
            self._roles.bump()

    async def round_stars(self, studio_ids: Sequence[str]) -> dict[str, int]:
        """Of ``studio_ids``, those whose latest star change came from an evaluation round: id → that round."""
        async with self._sessions() as session:
            return await _round_stars(session, studio_ids)

    async def import_roster(
        self,
        roster: Roster,
        *,
        actor: str = "cli",
        override_stars: bool = False,
        at: datetime | None = None,
    ) -> ImportResult:
        """Upsert every alliance and studio by id in one transaction (all or nothing). A studio whose current
        stars an evaluation round set keeps them when the roster says otherwise (listed in ``kept_stars``),
        unless ``override_stars``; every star change of an existing studio goes into the star history (by
        ``actor``, origin ``roster``, no round)."""
        try:
            with offloaded():  # hundreds of statements: in the driver's thread, so the event loop keeps answering
                return await self._import_roster(roster, actor=actor, override_stars=override_stars, at=at)
        finally:
            self._roles.bump()

    async def _import_roster(
        self, roster: Roster, *, actor: str, override_stars: bool, at: datetime | None
    ) -> ImportResult:
        from bot.store.evaluations import ROSTER_ORIGIN, StarChange  # that module builds on this one

        created_a = updated_a = created_s = updated_s = unchanged = stars_changed = 0
        kept: list[KeptStars] = []
        now = at or utcnow()
        async with self._sessions() as session, session.begin():
            for entry in roster.alliances:
                values: dict[str, Any] = {
                    "name": entry.name,
                    "lead_name": entry.lead.name if entry.lead else None,
                    "lead_userid": entry.lead.wecom_userid if entry.lead else None,
                    "lead_since": entry.lead_since,
                    "announce": entry.announce.stored(),
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
                    continue
                before = studio.stars
                if before != studio_entry.stars and not override_stars:
                    round_id = (await _round_stars(session, [studio.id])).get(studio.id)
                    if round_id is not None:
                        values["stars"] = before
                        kept.append(KeptStars(studio.id, studio.name, before, studio_entry.stars, round_id))
                if _apply(studio, values):
                    studio.updated_at = now
                    updated_s += 1
                else:
                    unchanged += 1
                if studio.stars != before:
                    stars_changed += 1
                    session.add(
                        StarChange(
                            studio_id=studio.id,
                            before=before,
                            after=studio.stars,
                            round_id=None,
                            actor=actor,
                            at=now,
                            origin=ROSTER_ORIGIN,
                        )
                    )
            await Generation.bump_stored(session)
        return ImportResult(
            created_a, updated_a, created_s, updated_s, unchanged, tuple(kept), stars_changed
        )


async def _round_stars(session: Any, studio_ids: Sequence[str]) -> dict[str, int]:
    """Of ``studio_ids``, those whose latest star change (by id) came from a round: id → that round."""
    from bot.store.evaluations import StarChange  # that module builds on this one

    if not studio_ids:
        return {}
    rows = await session.exec(
        select(StarChange.studio_id, StarChange.round_id)
        .where(col(StarChange.studio_id).in_(list(studio_ids)))
        .order_by(col(StarChange.id))
    )
    latest: dict[str, int | None] = {}
    for studio_id, round_id in rows.all():
        latest[studio_id] = round_id
    return {studio_id: round_id for studio_id, round_id in latest.items() if round_id is not None}


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
        self._writes: Coalescer[tuple[str, datetime], None] = Coalescer(self._seen_batch)

    async def get(self, user_id: str) -> Member | None:
        """One member by user id."""
        async with self._sessions() as session:
            return await session.get(Member, user_id)

    def seen(self, user_id: str, at: datetime) -> None:
        """Record, behind the message and in batches, that a user wrote to the bot (at most every few minutes
        per user and process: it is a last-seen date, not a message log). Never fails or delays a message."""
        last = self._seen.get(user_id)
        if last is not None and timedelta(0) <= at - last < SEEN_PRECISION:
            return
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[user_id] = at
        self._writes.submit_nowait((user_id, at))

    async def record_seen(self, user_id: str, at: datetime) -> None:
        """``seen``, waiting for the write (and raising its error)."""
        self._seen[user_id] = at
        await self._writes.submit((user_id, at))

    async def flush(self) -> None:
        """Wait for last-seen writes still queued."""
        await self._writes.flush()

    async def _seen_batch(self, items: Sequence[tuple[str, datetime]]) -> list[None]:
        # one upsert for the batch: two first messages of a new user at two processes cannot collide
        latest: dict[str, datetime] = {}
        for user_id, at in items:
            latest[user_id] = max(at, latest.get(user_id, at))
        table = Member.__table__  # type: ignore[attr-defined]
        engine = self._sessions.kw["bind"]
        insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        statement = insert(table).values(
            [
                {"user_id": u, "role": MemberRole.MEMBER.value, "first_seen_at": at, "last_seen_at": at}
                for u, at in latest.items()
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["user_id"], set_={"last_seen_at": statement.excluded.last_seen_at}
        )
        async with engine.begin() as conn:
            await conn.execute(statement)
        return [None] * len(items)

    async def granted(self, *roles: str) -> list[Member]:
        """Members holding one of the granted ``roles`` (``MemberRole`` values)."""
        async with self._sessions() as session:
            rows = await session.exec(select(Member).where(col(Member.role).in_(roles)))
            return list(rows.all())

    async def grant(
        self, user_id: str, role: str, *, alliance_id: str | None = None, studio_id: str | None = None
    ) -> Member:
        """Grant a role (e.g. union staff as alliance lead of ``alliance_id``, a deputy as lead of ``studio_id``)."""
        try:
            return await self._grant(user_id, role, alliance_id=alliance_id, studio_id=studio_id)
        finally:
            self._roles.bump()

    async def _grant(self, user_id: str, role: str, *, alliance_id: str | None, studio_id: str | None) -> Member:
        async with self._sessions() as session, session.begin():
            member = await session.get(Member, user_id)
            if member is None:
                member = Member(user_id=user_id)
                session.add(member)
            member.role = role
            member.alliance_id = alliance_id
            member.studio_id = studio_id
            await Generation.bump_stored(session)
            return member
