"""The topics feature's tables and repository: joint research topics (立项, 附议, 攻关团队, 进展, 结题).

A topic is proposed by a studio, gathers support from other studios and is approved once ``BOT_TOPIC_QUORUM``
studios (the proposer's included) back it within ``BOT_TOPIC_DAYS``; otherwise it lapses. State changes are
conditional ``UPDATE … WHERE status = …`` statements, so when two processes (or a handler and the sweep) race,
exactly one of them wins and announces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Text, UniqueConstraint, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class TopicStatus(StrEnum):
    """Life of a research topic."""

    PROPOSED = "proposed"  # gathering support
    APPROVED = "approved"  # quorum reached: the team works on it
    LAPSED = "lapsed"  # not enough support in time
    CONCLUDED = "concluded"  # closed with a result
    WITHDRAWN = "withdrawn"  # taken back by its proposer before approval

    @property
    def label(self) -> str:
        """The status in Chinese."""
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    TopicStatus.PROPOSED: "征集附议中",
    TopicStatus.APPROVED: "已立项攻关",
    TopicStatus.LAPSED: "未获足够附议，已失效",
    TopicStatus.CONCLUDED: "已结题",
    TopicStatus.WITHDRAWN: "已撤回",
}


class Topic(SQLModel, table=True):
    """A joint research topic ``#T-N`` (N is the id), proposed by a studio."""

    __tablename__ = "research_topic"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    studio_id: str = Field(foreign_key="studio.id", max_length=64, index=True)
    alliance_id: str = Field(foreign_key="alliance.id", max_length=64, index=True)
    proposer: str = Field(max_length=64)
    status: str = Field(default=TopicStatus.PROPOSED.value, max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    deadline: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    reminded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    conclusion: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    achievement_id: int | None = None

    @property
    def code(self) -> str:
        """``T-3``."""
        return f"T-{self.id}"

    @property
    def state(self) -> TopicStatus:
        """The status as an enum."""
        return TopicStatus(self.status)


class TopicSupport(SQLModel, table=True):
    """A studio backing a proposed topic (the proposer's studio is the first)."""

    __tablename__ = "topic_support"
    __table_args__ = (UniqueConstraint("topic_id", "studio_id", name="uq_topic_support"),)

    id: int | None = Field(default=None, primary_key=True)
    topic_id: int = Field(foreign_key="research_topic.id", index=True)
    studio_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class TopicMember(SQLModel, table=True):
    """A studio on an approved topic's team (the supporters on approval, then those who join)."""

    __tablename__ = "topic_member"
    __table_args__ = (UniqueConstraint("topic_id", "studio_id", name="uq_topic_member"),)

    id: int | None = Field(default=None, primary_key=True)
    topic_id: int = Field(foreign_key="research_topic.id", index=True)
    studio_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    joined_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class TopicProgress(SQLModel, table=True):
    """A progress note on a topic."""

    __tablename__ = "topic_progress"

    id: int | None = Field(default=None, primary_key=True)
    topic_id: int = Field(foreign_key="research_topic.id", index=True)
    user_id: str = Field(max_length=64)
    studio_id: str | None = Field(default=None, max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))










@dataclass(slots=True, frozen=True)
class TopicDetail:
    """A topic with its supporters, team and latest progress."""

    topic: Topic
    supports: list[TopicSupport]
    members: list[TopicMember]
    progress: list[TopicProgress]


class TopicRepo:
    """Research topics, their supporters, teams and progress."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def create(self, topic: Topic, *, user_id: str) -> Topic:
        """Store a new topic with its proposer's studio as the first supporter."""
        async with self._sessions() as session, session.begin():
            session.add(topic)
            await session.flush()
            assert topic.id is not None
            session.add(
                TopicSupport(
                    topic_id=topic.id, studio_id=topic.studio_id, user_id=user_id, created_at=topic.created_at
                )
            )
        return topic

    async def get(self, topic_id: int) -> Topic | None:
        """One topic by number."""
        async with self._sessions() as session:
            return await session.get(Topic, topic_id)

    async def detail(self, topic_id: int, *, progress_limit: int = 5) -> TopicDetail | None:
        """A topic with supporters, team and its latest progress notes (oldest of them first)."""
        async with self._sessions() as session:
            topic = await session.get(Topic, topic_id)
            if topic is None:
                return None
            supports = (
                await session.exec(
                    select(TopicSupport)
                    .where(TopicSupport.topic_id == topic_id)
                    .order_by(col(TopicSupport.id))
                )
            ).all()
            members = (
                await session.exec(
                    select(TopicMember).where(TopicMember.topic_id == topic_id).order_by(col(TopicMember.id))
                )
            ).all()
            progress = (
                await session.exec(
                    select(TopicProgress)
                    .where(TopicProgress.topic_id == topic_id)
                    .order_by(col(TopicProgress.id).desc())
                    .limit(progress_limit)
                )
            ).all()
        return TopicDetail(topic, list(supports), list(members), list(reversed(progress)))

    async def all(
        self,
        *,
        statuses: Iterable[TopicStatus] | None = None,
        alliance_id: str | None = None,
        studio_ids: Sequence[str] | None = None,
    ) -> list[Topic]:
        """Topics, newest first; optionally by status, alliance, or studios involved (proposer, support, team)."""
        query = select(Topic).order_by(col(Topic.id).desc())
        if statuses is not None:
            query = query.where(col(Topic.status).in_([s.value for s in statuses]))
        if alliance_id is not None:
            query = query.where(Topic.alliance_id == alliance_id)
        if studio_ids is not None:
            ids = list(studio_ids)
            supported = select(TopicSupport.topic_id).where(col(TopicSupport.studio_id).in_(ids))
            joined = select(TopicMember.topic_id).where(col(TopicMember.studio_id).in_(ids))
            query = query.where(
                col(Topic.studio_id).in_(ids)
                | col(Topic.id).in_(supported)
                | col(Topic.id).in_(joined)
            )
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def support_counts(self, topic_ids: Iterable[int]) -> dict[int, int]:
        """How many studios support each topic, counting each supporting person once: one lead who leads
        several studios cannot reach a quorum alone."""
        ids = list(topic_ids)
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = await session.exec(
                select(TopicSupport.topic_id, func.count(func.distinct(TopicSupport.user_id)))
                .where(col(TopicSupport.topic_id).in_(ids))
                .group_by(col(TopicSupport.topic_id))
            )
            return {topic_id: int(count) for topic_id, count in rows.all()}

    async def add_support(self, topic_id: int, *, studio_id: str, user_id: str, at: datetime) -> bool:
        """Record a studio's support; False if that studio already supports the topic."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    TopicSupport(topic_id=topic_id, studio_id=studio_id, user_id=user_id, created_at=at)
                )
        except IntegrityError:
            return False
        return True

    async def _transition(
        self, topic_id: int, *, from_status: TopicStatus, values: dict[str, Any]
    ) -> Topic | None:
        statement = (
            update(Topic)
            .where(col(Topic.id) == topic_id, col(Topic.status) == from_status.value)
            .values(**values)
            .returning(col(Topic.id))
        )
        async with self._sessions() as session, session.begin():
            won = (await session.exec(statement)).scalars().first()
            if won is None:
                return None
            if values.get("status") == TopicStatus.APPROVED.value:
                supports = (
                    await session.exec(select(TopicSupport).where(TopicSupport.topic_id == topic_id))
                ).all()
                for support in supports:
                    session.add(
                        TopicMember(
                            topic_id=topic_id,
                            studio_id=support.studio_id,
                            user_id=support.user_id,
                            joined_at=values["approved_at"],
                        )
                    )
            topic = await session.get(Topic, topic_id)
            assert topic is not None
            await session.refresh(topic)
            return topic

    async def approve(self, topic_id: int, *, at: datetime) -> Topic | None:
        """Approve a proposed topic (its supporters become the team); None if it was not proposed any more."""
        return await self._transition(
            topic_id,
            from_status=TopicStatus.PROPOSED,
            values={"status": TopicStatus.APPROVED.value, "approved_at": at},
        )

    async def lapse(self, topic_id: int, *, at: datetime) -> Topic | None:
        """Let a proposed topic lapse; None if it was not proposed any more."""
        return await self._transition(
            topic_id,
            from_status=TopicStatus.PROPOSED,
            values={"status": TopicStatus.LAPSED.value, "closed_at": at},
        )

    async def withdraw(self, topic_id: int, *, reason: str, at: datetime) -> Topic | None:
        """Withdraw a proposed topic; None if it was not proposed any more (approved meanwhile, or lapsed)."""
        return await self._transition(
            topic_id,
            from_status=TopicStatus.PROPOSED,
            values={"status": TopicStatus.WITHDRAWN.value, "closed_at": at, "conclusion": reason or None},
        )

    async def conclude(self, topic_id: int, *, text: str, at: datetime) -> Topic | None:
        """Close an approved topic with its result; None if it was not approved (or already concluded)."""
        return await self._transition(
            topic_id,
            from_status=TopicStatus.APPROVED,
            values={"status": TopicStatus.CONCLUDED.value, "closed_at": at, "conclusion": text},
        )

    async def mark_reminded(self, topic_id: int, *, at: datetime) -> bool:
        """Claim the deadline reminder of a proposed topic; False if it was already sent (or claimed)."""
        statement = (
            update(Topic)
            .where(
                col(Topic.id) == topic_id,
                col(Topic.status) == TopicStatus.PROPOSED.value,
                col(Topic.reminded_at).is_(None),
            )
            .values(reminded_at=at)
            .returning(col(Topic.id))
        )
        async with self._sessions() as session, session.begin():
            return (await session.exec(statement)).scalars().first() is not None

    async def proposed(self) -> list[Topic]:
        """Topics still gathering support, oldest deadline first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(Topic)
                .where(Topic.status == TopicStatus.PROPOSED.value)
                .order_by(col(Topic.deadline), col(Topic.id))
            )
            return list(rows.all())

    async def add_member(self, topic_id: int, *, studio_id: str, user_id: str, at: datetime) -> bool:
        """Put a studio on a topic's team; False if it is already on it."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    TopicMember(topic_id=topic_id, studio_id=studio_id, user_id=user_id, joined_at=at)
                )
        except IntegrityError:
            return False
        return True

    async def add_progress(self, entry: TopicProgress) -> TopicProgress:
        """Record a progress note."""
        async with self._sessions() as session, session.begin():
            session.add(entry)
        return entry

    async def progress_count(self, topic_id: int) -> int:
        """How many progress notes a topic has."""
        async with self._sessions() as session:
            return int(
                (
                    await session.exec(
                        select(func.count())
                        .select_from(TopicProgress)
                        .where(TopicProgress.topic_id == topic_id)
                    )
                ).one()
            )

    async def link_achievement(self, topic_id: int, achievement_id: int) -> None:
        """Remember the achievement a concluded topic produced."""
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(Topic)
                .where(col(Topic.id) == topic_id)
                .values(achievement_id=achievement_id)
            )


