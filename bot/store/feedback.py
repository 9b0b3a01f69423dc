"""The asker's satisfaction with a problem's answer: 👍/👎 (WeCom's ``feedback_event``), one row per event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions, transaction
from bot.store.types import UTCDateTime, utcnow


class ProblemFeedback(SQLModel, table=True):
    """One 👍 (1), 👎 (-1) or withdrawal (0) of a user on a problem's answer."""

    __tablename__ = "problem_feedback"
    __table_args__ = (
        UniqueConstraint("event_key", name="uq_problem_feedback_event_key"),
        Index("ix_problem_feedback_problem", "problem_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    problem_id: int
    user_id: str = Field(max_length=64)
    rating: int
    event_key: str = Field(max_length=255)  # the event it came in: recorded once
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class FeedbackRepo:
    """Feedback rows and each problem's tally (every user's latest rating counts)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def record(self, feedback: ProblemFeedback) -> bool:
        """Record one feedback event; False when it was recorded already."""
        table = ProblemFeedback.__table__  # type: ignore[attr-defined]
        engine = self._sessions.kw["bind"]
        insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        statement = insert(table).values(**feedback.model_dump(exclude={"id"})).on_conflict_do_nothing()
        async with transaction(engine) as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def tally(self, problem_id: int) -> tuple[int, int]:
        """(👍, 👎) for a problem, each user counted by their latest rating."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(ProblemFeedback)
                .where(col(ProblemFeedback.problem_id) == problem_id)
                .order_by(col(ProblemFeedback.id))
            )
            latest = {row.user_id: row.rating for row in rows.all()}
        return sum(1 for r in latest.values() if r > 0), sum(1 for r in latest.values() if r < 0)

    async def asker_ratings(self, since: datetime, until: datetime) -> list[tuple[int, str, int]]:
        """``(problem, studio, rating)`` of every problem with a studio whose asker's latest rating (👍/已解决 1,
        👎/还没解决 -1; a withdrawal 0 leaves it unrated) was given in ``[since, until)``. Only the asker's
        ratings count: the satisfaction is the asker's."""
        from bot.store.problems import Problem

        query = (
            select(
                ProblemFeedback.problem_id,
                Problem.studio_id,
                ProblemFeedback.rating,
                ProblemFeedback.created_at,
            )
            .join(Problem, col(Problem.id) == col(ProblemFeedback.problem_id))
            .where(col(ProblemFeedback.user_id) == col(Problem.asker), col(Problem.studio_id).is_not(None))
            .order_by(col(ProblemFeedback.id))
        )
        async with self._sessions() as session:
            rows = (await session.exec(query)).all()
        latest: dict[int, tuple[str, int, datetime]] = {}
        for problem_id, studio_id, rating, at in rows:
            latest[int(problem_id)] = (str(studio_id), int(rating), at)
        return [
            (problem_id, studio_id, rating)
            for problem_id, (studio_id, rating, at) in sorted(latest.items())
            if rating != 0 and since <= at < until
        ]
