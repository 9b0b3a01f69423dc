"""The achievements feature's tables and repository: the achievements database (创新成果库) and awards."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text, update
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.topics import Topic  # noqa: F401  (registers the table that achievement.topic_id refers to)
from bot.store.types import UTCDateTime, utcnow


class AchievementType(StrEnum):
    """The kinds of result the union records (成果类型)."""

    INVENTION_PATENT = "发明专利"
    UTILITY_PATENT = "实用新型专利"
    CONSTRUCTION_METHOD = "工法"
    QC = "QC成果"
    SCIENCE_AWARD = "科技进步奖"
    WORKER_INNOVATION = "职工技术创新成果"
    MANAGEMENT_INNOVATION = "管理创新成果"

    @classmethod
    def parse(cls, word: str) -> AchievementType:
        """A type from its Chinese name or a common short form (发明, 实用新型, QC, 科技奖…)."""
        key = word.strip().lower().replace(" ", "")
        for kind in cls:
            if key == kind.value.lower():
                return kind
        for alias, kind in _TYPE_ALIASES.items():
            if key == alias.lower():
                return kind
        raise ValueError(word)


_TYPE_ALIASES = {
    "发明": AchievementType.INVENTION_PATENT,
    "invention": AchievementType.INVENTION_PATENT,
    "实用新型": AchievementType.UTILITY_PATENT,
    "utility": AchievementType.UTILITY_PATENT,
    "施工工法": AchievementType.CONSTRUCTION_METHOD,
    "method": AchievementType.CONSTRUCTION_METHOD,
    "qc": AchievementType.QC,
    "qc小组成果": AchievementType.QC,
    "科技进步": AchievementType.SCIENCE_AWARD,
    "科技奖": AchievementType.SCIENCE_AWARD,
    "职工技术创新": AchievementType.WORKER_INNOVATION,
    "职工创新": AchievementType.WORKER_INNOVATION,
    "技术创新成果": AchievementType.WORKER_INNOVATION,
    "管理创新": AchievementType.MANAGEMENT_INNOVATION,
}


TYPE_NAMES = "、".join(kind.value for kind in AchievementType)

CONFIRMED = "confirmed"  # counted in figures and the report
PENDING = "pending"  # credited to a studio whose lead (or alliance lead) has not confirmed yet: not counted
WITHDRAWN = "withdrawn"  # 撤销: kept for the audit trail, counted nowhere
ACTIVE = "active"  # an award in force


class Achievement(SQLModel, table=True):
    """A registered result: patent, construction method, QC result, award-winning innovation…"""

    __tablename__ = "achievement"

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=32, index=True)
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    studios: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    year: int = Field(index=True)
    topic_id: int | None = Field(default=None, foreign_key="research_topic.id")
    registered_by: str = Field(default="", max_length=64)
    source: str = Field(default="chat", max_length=16)  # chat | import
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    state: str = Field(default=CONFIRMED, max_length=16, sa_column_kwargs={"server_default": CONFIRMED})
    # the studios whose confirmation is still awaited while ``state`` is pending
    pending_studios: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Award(SQLModel, table=True):
    """Prize money paid for an achievement or to a studio (e.g. 30,000 yuan for a five-star studio)."""

    __tablename__ = "award"

    id: int | None = Field(default=None, primary_key=True)
    achievement_id: int | None = Field(default=None, foreign_key="achievement.id", index=True)
    studio_id: str | None = Field(default=None, foreign_key="studio.id", max_length=64, index=True)
    name: str = Field(default="", max_length=100)
    amount: int  # yuan
    year: int = Field(index=True)
    note: str = ""
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    state: str = Field(default=ACTIVE, max_length=16, sa_column_kwargs={"server_default": ACTIVE})


class AchievementRepo:
    """The achievements database and awards."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def add(self, achievement: Achievement) -> Achievement:
        """Register an achievement."""
        async with self._sessions() as session, session.begin():
            session.add(achievement)
        return achievement

    async def get(self, achievement_id: int) -> Achievement | None:
        """One achievement by number."""
        async with self._sessions() as session:
            return await session.get(Achievement, achievement_id)

    async def all(self, *, year: int | None = None, uncounted: bool = False) -> list[Achievement]:
        """Counted (confirmed) achievements, newest first, optionally of one year; ``uncounted`` adds the
        pending and withdrawn ones."""
        query = select(Achievement).order_by(col(Achievement.id).desc())
        if not uncounted:
            query = query.where(Achievement.state == CONFIRMED)
        if year is not None:
            query = query.where(Achievement.year == year)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def find(self, *, type: str, title: str, year: int) -> Achievement | None:
        """An achievement with exactly this type, title and year (re-imports skip it)."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(Achievement).where(
                    Achievement.type == type,
                    Achievement.title == title,
                    Achievement.year == year,
                    Achievement.state != WITHDRAWN,
                )
            )
            return rows.first()

    async def add_award(self, award: Award) -> Award:
        """Record an award."""
        async with self._sessions() as session, session.begin():
            session.add(award)
        return award

    async def add_with_award(self, achievement: Achievement, award: Award | None) -> Achievement:
        """Register an achievement and, if given, its award, in one transaction (spreadsheet import)."""
        async with self._sessions() as session, session.begin():
            session.add(achievement)
            await session.flush()
            if award is not None:
                award.achievement_id = achievement.id
                session.add(award)
        return achievement

    async def awards(self, *, year: int | None = None, withdrawn: bool = False) -> list[Award]:
        """Awards in force, by year then id, optionally of one year (``withdrawn`` adds the withdrawn)."""
        query = select(Award).order_by(col(Award.year), col(Award.id))
        if not withdrawn:
            query = query.where(Award.state == ACTIVE)
        if year is not None:
            query = query.where(Award.year == year)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def awards_of(self, achievement_id: int, *, withdrawn: bool = False) -> list[Award]:
        """The awards on one achievement (in force, or all with ``withdrawn``)."""
        query = select(Award).where(Award.achievement_id == achievement_id).order_by(col(Award.id))
        if not withdrawn:
            query = query.where(Award.state == ACTIVE)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def get_award(self, award_id: int) -> Award | None:
        """One award by number."""
        async with self._sessions() as session:
            return await session.get(Award, award_id)

    async def update(self, row: Achievement | Award, values: dict[str, Any]) -> None:
        """Write ``values`` onto an achievement or award (inside the caller's unit of work)."""
        async with self._sessions() as session, session.begin():
            await session.exec(update(type(row)).where(col(type(row).id) == row.id).values(**values))
        for key, value in values.items():
            setattr(row, key, value)
