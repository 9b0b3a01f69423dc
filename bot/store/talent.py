"""The talent feature's tables and repository: attendance at activities (签到), mentorships (名师带徒) and the
titles and honours people earn (技师, 工匠, 劳动模范 …)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, func, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class Attendance(SQLModel, table=True):
    """One person present at an activity: checked in themselves, or marked by the organiser afterwards."""

    __tablename__ = "activity_attendance"
    __table_args__ = (UniqueConstraint("activity_id", "person", name="uq_activity_attendance"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(
        sa_column=Column(Integer, ForeignKey("calendar_event.id"), nullable=False, index=True)
    )
    person: str = Field(max_length=64)  # a WeCom user id, or the name of someone outside the roster
    marked_by: str = Field(max_length=64)  # the person themselves (签到) or the organiser (补记)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Mentorship(SQLModel, table=True):
    """A master and an apprentice of a studio (名师带徒): since when, towards what, with what outcome."""

    __tablename__ = "mentorship"
    __table_args__ = (Index("uq_mentorship_message_key", "message_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    master: str = Field(max_length=64)
    apprentice: str = Field(max_length=64)
    studio_id: str = Field(foreign_key="studio.id", max_length=64, index=True)
    started_on: date = Field(sa_column=Column(Date, nullable=False))
    goal: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    ended_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    recorded_by: str = Field(max_length=64)
    message_key: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Honour(SQLModel, table=True):
    """A title or honour a person earned (高级技师, 省级工匠, 全国劳动模范 …), with date and evidence."""

    __tablename__ = "talent_honour"
    __table_args__ = (Index("uq_talent_honour_message_key", "message_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    person: str = Field(max_length=64)
    title: str = Field(max_length=32, index=True)  # canonical, see bot.services.talent.TITLES
    grade: str = Field(max_length=16)  # 技能等级 | 工匠 | 劳模先进
    on: date = Field(sa_column=Column("earned_on", Date, nullable=False))
    evidence: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    studio_id: str | None = Field(default=None, foreign_key="studio.id", max_length=64, index=True)
    alliance_id: str | None = Field(default=None, foreign_key="alliance.id", max_length=64, index=True)
    recorded_by: str = Field(max_length=64)
    message_key: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class TalentRepo:
    """Attendance, mentorships and honours."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def attend(self, activity_id: int, person: str, *, by: str, at: datetime) -> bool:
        """Record a presence; False when the person was already recorded for that activity."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(Attendance(activity_id=activity_id, person=person, marked_by=by, at=at))
        except IntegrityError:
            return False
        return True

    async def attendance(self, activity_ids: list[int] | None = None) -> list[Attendance]:
        """Presences, of some activities or all."""
        query = select(Attendance).order_by(col(Attendance.id))
        if activity_ids is not None:
            query = query.where(col(Attendance.activity_id).in_(activity_ids))
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def present(self, activity_id: int) -> int:
        """How many people were present at an activity."""
        query = select(func.count()).select_from(Attendance).where(Attendance.activity_id == activity_id)
        async with self._sessions() as session:
            return int((await session.exec(query)).one())

    async def _add(self, row: Mentorship | Honour) -> Mentorship | Honour:
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            if not row.message_key:
                raise
            kind = type(row)
            async with self._sessions() as session:
                query = select(kind).where(col(kind.message_key) == row.message_key)
                found = (await session.exec(query)).first()
            if not isinstance(found, Mentorship | Honour):
                raise
            return found
        return row

    async def add_mentorship(self, mentorship: Mentorship) -> Mentorship:
        """Record a mentorship (once per message)."""
        added = await self._add(mentorship)
        assert isinstance(added, Mentorship)
        return added

    async def add_honour(self, honour: Honour) -> Honour:
        """Record an honour (once per message)."""
        added = await self._add(honour)
        assert isinstance(added, Honour)
        return added

    async def mentorship(self, mentorship_id: int) -> Mentorship | None:
        """One mentorship."""
        async with self._sessions() as session:
            return await session.get(Mentorship, mentorship_id)

    async def save_mentorship(self, mentorship: Mentorship) -> Mentorship:
        """Write back a mentorship (its outcome)."""
        async with self._sessions() as session, session.begin():
            return await session.merge(mentorship)

    async def mentorships(self) -> list[Mentorship]:
        """Every mentorship, oldest first."""
        async with self._sessions() as session:
            return list((await session.exec(select(Mentorship).order_by(col(Mentorship.id)))).all())

    async def honours(self) -> list[Honour]:
        """Every honour, oldest first."""
        async with self._sessions() as session:
            return list((await session.exec(select(Honour).order_by(col(Honour.on), col(Honour.id)))).all())
