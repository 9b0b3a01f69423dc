"""The benefit chain's tables (创意变项目、项目变成果、成果变效益): where an achievement was applied and what it
earned, its patents and its 推广 status. The achievement table itself is left as it is: these rows are keyed by
the achievement's id."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Date, Index, Text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class Application(SQLModel, table=True):
    """One application of an achievement: the project and unit, the date, the direct economic benefit."""

    __tablename__ = "achievement_application"
    __table_args__ = (Index("uq_achievement_application_message_key", "message_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    achievement_id: int = Field(foreign_key="achievement.id", index=True)
    project: str = Field(max_length=200)
    unit: str = Field(default="", max_length=200)
    applied_on: date = Field(sa_column=Column(Date, nullable=False))
    benefit: int = 0  # direct economic benefit, yuan
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    recorded_by: str = Field(max_length=64)
    message_key: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Protection(SQLModel, table=True):
    """An achievement's patent numbers and its 推广 status (one row per achievement)."""

    __tablename__ = "achievement_protection"

    achievement_id: int = Field(foreign_key="achievement.id", primary_key=True)
    patents: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    promotion: str = Field(default="未推广", max_length=16)
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class BenefitRepo:
    """Applications and protection of achievements."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def add(self, application: Application) -> Application:
        """Record an application (once per message)."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(application)
        except IntegrityError:
            if not application.message_key:
                raise
            async with self._sessions() as session:
                query = select(Application).where(Application.message_key == application.message_key)
                found = (await session.exec(query)).first()
            if found is None:
                raise
            return found
        return application

    async def applications(self, achievement_ids: list[int] | None = None) -> list[Application]:
        """Applications of some achievements or all, by date."""
        query = select(Application).order_by(col(Application.applied_on), col(Application.id))
        if achievement_ids is not None:
            query = query.where(col(Application.achievement_id).in_(achievement_ids))
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def protection(self, achievement_id: int) -> Protection | None:
        """An achievement's patents and 推广 status."""
        async with self._sessions() as session:
            return await session.get(Protection, achievement_id)

    async def protections(self) -> dict[int, Protection]:
        """Every achievement's patents and 推广 status."""
        async with self._sessions() as session:
            return {p.achievement_id: p for p in (await session.exec(select(Protection))).all()}

    async def save_protection(self, protection: Protection) -> Protection:
        """Create or update an achievement's protection row."""
        async with self._sessions() as session, session.begin():
            return await session.merge(protection)
