"""The evaluations feature's tables and repository: evaluation rounds (评选), their nominees and the panel's
scores, star-rating history, and the "八有" checklist confirmations of each studio.

Every row a message creates carries that message's key (unique), and a round is closed by a conditional
update (``state`` open → closed), so retries, a recovery takeover and several processes never double a
nomination, a score or a round's results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, Index, UniqueConstraint, update
from sqlmodel import Field, SQLModel, col, select

from bot.store.achievements import Achievement  # noqa: F401  (registers the table nominees refer to)
from bot.store.engine import Sessions
from bot.store.studios import Studio  # noqa: F401  (registers the table nominees refer to)
from bot.store.types import UTCDateTime, utcnow

OPEN = "open"
CLOSED = "closed"

Row = TypeVar("Row", bound=SQLModel)


class EvaluationRound(SQLModel, table=True):
    """One evaluation round: its kind, scope, criteria with weights, panel (评鉴团) and deadlines."""

    __tablename__ = "evaluation_round"
    __table_args__ = (Index("uq_evaluation_round_message_key", "message_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # 星级工作室评定 | 优秀创新成果评选 | 优秀联盟成员
    alliance_id: str | None = Field(default=None, max_length=64, foreign_key="alliance.id")  # None: all
    criteria: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    panel: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    nominate_until: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    score_until: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    passing: int = 60  # the lowest combined score that wins
    quota: int | None = None  # at most this many winners
    amount: int | None = None  # prize per winner (yuan); None: the charter's default
    override: bool = False  # an admin allowed an amount outside the charter's range
    state: str = Field(default=OPEN, max_length=16, index=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    closed_by: str = Field(default="", max_length=64)
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    message_key: str | None = Field(default=None, max_length=255)


class Nominee(SQLModel, table=True):
    """A studio or an achievement put forward in a round (申报), and its result once the round closes."""

    __tablename__ = "evaluation_nominee"
    __table_args__ = (
        UniqueConstraint("round_id", "subject", name="uq_evaluation_nominee_subject"),
        Index("uq_evaluation_nominee_message_key", "message_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="evaluation_round.id", index=True)
    subject: str = Field(max_length=80)  # studio:T1 | achievement:5
    studio_id: str = Field(foreign_key="studio.id", max_length=64, index=True)
    achievement_id: int | None = Field(default=None, foreign_key="achievement.id")
    target_stars: int | None = None
    nominated_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    message_key: str | None = Field(default=None, max_length=255)
    score: float | None = None  # combined at the close
    rank: int | None = None
    result: str = Field(default="", max_length=16)  # winner | not_selected | unscored
    award_id: int | None = Field(default=None, foreign_key="award.id")


class Score(SQLModel, table=True):
    """One panel member's scores of one nominee, per criterion, and their weighted total."""

    __tablename__ = "evaluation_score"
    __table_args__ = (
        UniqueConstraint("nominee_id", "panelist", name="uq_evaluation_score_panelist"),
        Index("uq_evaluation_score_message_key", "message_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="evaluation_round.id", index=True)
    nominee_id: int = Field(foreign_key="evaluation_nominee.id", index=True)
    panelist: str = Field(max_length=64)
    scores: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    total: float
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    message_key: str | None = Field(default=None, max_length=255)


ROUND_ORIGIN = "round"  # StarChange.origin: set at the close of an evaluation round
ROSTER_ORIGIN = "roster"  # StarChange.origin: set by a roster import (CLI or console)
EDIT_ORIGIN = "edit"  # StarChange.origin: one studio edited in the console


class StarChange(SQLModel, table=True):
    """A studio's star rating changed: from, to, by whom, when, in which round, and where the change came from
    (``origin``: ``round``, ``roster`` or ``edit``)."""

    __tablename__ = "star_history"

    id: int | None = Field(default=None, primary_key=True)
    studio_id: str = Field(foreign_key="studio.id", max_length=64, index=True)
    before: int
    after: int
    round_id: int | None = Field(default=None, foreign_key="evaluation_round.id")
    actor: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    origin: str = Field(default="", max_length=16)


class ChecklistItem(SQLModel, table=True):
    """One of a studio's "八有" conditions, confirmed by an alliance lead or an admin."""

    __tablename__ = "studio_checklist"

    studio_id: str = Field(foreign_key="studio.id", max_length=64, primary_key=True)
    item: str = Field(max_length=16, primary_key=True)
    confirmed_by: str = Field(max_length=64)
    confirmed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    note: str = ""


class EvaluationRepo:
    """Rounds, nominees, scores, star history and checklist confirmations."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def _by_key(self, table: type[Row], key: str | None) -> Row | None:
        if not key:
            return None
        async with self._sessions() as session:
            return (await session.exec(select(table).where(table.message_key == key))).first()  # type: ignore[attr-defined]

    async def add(self, row: Row) -> Row:
        """Store a new round, nominee or score; when the message that creates it (``message_key``) already did,
        the stored row is returned instead."""
        found = await self._by_key(type(row), getattr(row, "message_key", None))
        if found is not None:
            return found
        async with self._sessions() as session, session.begin():
            session.add(row)
        return row

    async def round(self, round_id: int) -> EvaluationRound | None:
        """One round."""
        async with self._sessions() as session:
            return await session.get(EvaluationRound, round_id)

    async def rounds(self, *, state: str | None = None) -> list[EvaluationRound]:
        """Rounds, newest first."""
        query = select(EvaluationRound).order_by(col(EvaluationRound.id).desc())
        if state is not None:
            query = query.where(EvaluationRound.state == state)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def nominees(self, round_id: int | None = None, *, studio_id: str | None = None) -> list[Nominee]:
        """A round's nominees (or a studio's, in every round), in order of nomination."""
        query = select(Nominee).order_by(col(Nominee.id))
        if round_id is not None:
            query = query.where(Nominee.round_id == round_id)
        if studio_id is not None:
            query = query.where(Nominee.studio_id == studio_id)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def nominee(self, nominee_id: int) -> Nominee | None:
        """One nominee."""
        async with self._sessions() as session:
            return await session.get(Nominee, nominee_id)

    async def scores(self, round_id: int) -> list[Score]:
        """A round's scores."""
        async with self._sessions() as session:
            rows = await session.exec(select(Score).where(Score.round_id == round_id).order_by(col(Score.id)))
            return list(rows.all())

    async def put_score(self, score: Score) -> tuple[Score, bool]:
        """Record a panel member's scores of a nominee, replacing their earlier ones; (score, replaced).
        A message already recorded (``message_key``) changes nothing."""
        found = await self._by_key(Score, score.message_key)
        if found is not None:
            return found, False
        async with self._sessions() as session, session.begin():
            earlier = (
                await session.exec(
                    select(Score).where(
                        Score.nominee_id == score.nominee_id, Score.panelist == score.panelist
                    )
                )
            ).first()
            if earlier is None:
                session.add(score)
                return score, False
            earlier.scores, earlier.total = score.scores, score.total
            earlier.at, earlier.message_key = score.at, score.message_key
            session.add(earlier)
            return earlier, True

    async def close(self, round_id: int, *, actor: str, at: datetime) -> bool:
        """Mark a round closed unless it already is: True for the one caller that closed it."""
        async with self._sessions() as session, session.begin():
            result = await session.exec(
                update(EvaluationRound)
                .where(col(EvaluationRound.id) == round_id, col(EvaluationRound.state) == OPEN)
                .values(state=CLOSED, closed_by=actor, closed_at=at)
            )
            return bool(result.rowcount)

    async def save(self, rows: Sequence[SQLModel]) -> None:
        """Write changed rows (inside the caller's unit of work)."""
        async with self._sessions() as session, session.begin():
            for row in rows:
                await session.merge(row)

    async def star_history(self, studio_id: str | None = None) -> list[StarChange]:
        """Star changes, oldest first, of one studio or all."""
        query = select(StarChange).order_by(col(StarChange.id))
        if studio_id is not None:
            query = query.where(StarChange.studio_id == studio_id)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def checklist(self, studio_id: str) -> list[ChecklistItem]:
        """A studio's confirmed "八有" items."""
        async with self._sessions() as session:
            rows = await session.exec(select(ChecklistItem).where(ChecklistItem.studio_id == studio_id))
            return list(rows.all())

    async def confirm_item(self, item: ChecklistItem) -> ChecklistItem | None:
        """Confirm one item; the earlier confirmation when it already was (None when new)."""
        async with self._sessions() as session, session.begin():
            earlier = await session.get(ChecklistItem, (item.studio_id, item.item))
            if earlier is not None:
                return earlier
            session.add(item)
            return None


class RecordRepo:
    """What a studio's record (档案) reads from the other features' tables: problems it was asked, claimed,
    answered and solved, topics it proposed and joined, activities its people hosted and attended."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def problems(self, studio_id: str) -> tuple[list[Any], list[Any]]:
        """(the requests to the studio, the problems it claimed)."""
        from bot.store.problems import Problem, ProblemRequest

        async with self._sessions() as session:
            requests = (
                await session.exec(select(ProblemRequest).where(ProblemRequest.studio_id == studio_id))
            ).all()
            claimed = (await session.exec(select(Problem).where(Problem.studio_id == studio_id))).all()
        return list(requests), list(claimed)

    async def topics(self, studio_id: str) -> tuple[list[Any], list[Any]]:
        """(topics the studio proposed, topics it joined as a team member or supporter, with the time)."""
        from bot.store.topics import Topic, TopicMember, TopicSupport

        async with self._sessions() as session:
            proposed = (await session.exec(select(Topic).where(Topic.studio_id == studio_id))).all()
            joined = list(
                (await session.exec(select(TopicMember).where(TopicMember.studio_id == studio_id))).all()
            )
            supports = (
                await session.exec(select(TopicSupport).where(TopicSupport.studio_id == studio_id))
            ).all()
        return list(proposed), [(m.topic_id, m.joined_at) for m in joined] + [
            (s.topic_id, s.created_at) for s in supports
        ]

    async def activities(self, people: set[str]) -> tuple[list[Any], list[tuple[Any, str]]]:
        """(activities organised by these people, (activity, person) for each of them who signed up)."""
        from bot.store.activities import Activity, ActivityAttendee

        if not people:
            return [], []
        async with self._sessions() as session:
            hosted = (await session.exec(select(Activity).where(col(Activity.organizer).in_(people)))).all()
            rows = (
                await session.exec(
                    select(Activity, ActivityAttendee)
                    .join(ActivityAttendee, col(ActivityAttendee.activity_id) == col(Activity.id))
                    .where(col(ActivityAttendee.user_id).in_(people))
                )
            ).all()
        return [a for a in hosted if not a.cancelled], [
            (a, att.user_id) for a, att in rows if not a.cancelled
        ]

    async def members_of(self, studio_id: str) -> list[str]:
        """The user ids recorded as members of a studio."""
        from bot.store.studios import Member

        async with self._sessions() as session:
            rows = await session.exec(select(Member).where(Member.studio_id == studio_id))
            return [m.user_id for m in rows.all()]
