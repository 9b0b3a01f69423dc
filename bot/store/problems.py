"""Technical problems (技术问题): the problem, its history of changes and the studios asked to take it.

A problem ``#N`` (N is the id) moves open → routed → claimed → answered → solved, or is closed without a
solution; solved and closed problems can be reopened. Every change is a conditional ``UPDATE … WHERE status IN
…`` so that when two people (or a person and the escalation job) act at once exactly one of them wins, and each
change is recorded in ``problem_event`` with who and when. ``problem_request`` rows are the studios asked to take
a problem (in rank order); they drive escalation and the per-studio daily cap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.engine import Sessions, offloaded
from bot.store.types import UTCDateTime, utcnow


class ProblemStatus(StrEnum):
    """Life of a technical problem."""

    OPEN = "open"  # logged, no studio asked yet (e.g. no roster)
    ROUTED = "routed"  # studios asked, none has taken it
    CLAIMED = "claimed"  # a studio took it
    ANSWERED = "answered"  # the studio answered; the asker has not confirmed
    SOLVED = "solved"
    CLOSED = "closed"  # closed without a solution

    @property
    def label(self) -> str:
        """The status in Chinese."""
        return _STATUS_LABELS[self]

    @property
    def final(self) -> bool:
        """Solved or closed."""
        return self in (ProblemStatus.SOLVED, ProblemStatus.CLOSED)


_STATUS_LABELS = {
    ProblemStatus.OPEN: "待分派",
    ProblemStatus.ROUTED: "待认领",
    ProblemStatus.CLAIMED: "已认领",
    ProblemStatus.ANSWERED: "已答复",
    ProblemStatus.SOLVED: "已解决",
    ProblemStatus.CLOSED: "已关闭",
}
UNCLAIMED = (ProblemStatus.OPEN, ProblemStatus.ROUTED)
ACTIVE = (ProblemStatus.OPEN, ProblemStatus.ROUTED, ProblemStatus.CLAIMED, ProblemStatus.ANSWERED)


class Problem(SQLModel, table=True):
    """A technical problem ``#N`` posted by a member (or imported from past records)."""

    __tablename__ = "problem"
    __table_args__ = (
        UniqueConstraint("ref", name="uq_problem_ref"),
        Index("uq_problem_message_key", "message_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str | None = Field(default=None, max_length=100)  # external id of an imported problem
    # the message that logged it (``channel:msgid``): a retry of that message finds it instead of logging again
    message_key: str | None = Field(default=None, max_length=255)
    text: str = Field(sa_column=Column(Text, nullable=False))
    asker: str = Field(max_length=64, index=True)
    group: str | None = Field(default=None, max_length=255)  # chat id (console: group name); None for 1:1
    alliance_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=ProblemStatus.OPEN.value, max_length=16, index=True)
    studio_id: str | None = Field(default=None, max_length=64, index=True)  # the claiming studio
    claimed_by: str | None = Field(default=None, max_length=64)
    answer: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    answered_by: str | None = Field(default=None, max_length=64)
    close_reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    source: str = Field(default="chat", max_length=16)  # chat | import
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    routed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    solved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def state(self) -> ProblemStatus:
        """The status as an enum."""
        return ProblemStatus(self.status)


class ProblemEvent(SQLModel, table=True):
    """One change to a problem: what happened, who did it, when, and details."""

    __tablename__ = "problem_event"

    id: int | None = Field(default=None, primary_key=True)
    problem_id: int = Field(foreign_key="problem.id", index=True)
    action: str = Field(max_length=32)
    actor: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class RequestOutcome(StrEnum):
    """What became of asking a studio to take a problem."""

    PENDING = "pending"
    CLAIMED = "claimed"  # this studio took it
    EXPIRED = "expired"  # not taken in time; the next studio was asked
    RELEASED = "released"  # another studio took it, or the problem ended


class ProblemRequest(SQLModel, table=True):
    """A studio asked to take a problem: its rank among the recommendations, when, and the outcome."""

    __tablename__ = "problem_request"
    __table_args__ = (UniqueConstraint("problem_id", "studio_id", name="uq_problem_request"),)

    id: int | None = Field(default=None, primary_key=True)
    problem_id: int = Field(foreign_key="problem.id", index=True)
    studio_id: str = Field(max_length=64, index=True)
    rank: int
    asked_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    outcome: str = Field(default=RequestOutcome.PENDING.value, max_length=16)


class StudioAskDay(SQLModel, table=True):
    """How many problems a studio was asked to take on one local day, kept with each request: the daily cap
    reads one row per studio instead of counting the day's requests."""

    __tablename__ = "studio_ask_day"

    studio_id: str = Field(max_length=64, primary_key=True)
    day: str = Field(max_length=10, primary_key=True)  # local date, ISO (BOT_TIMEZONE)
    asked: int = Field(default=0)


async def _count_asks(session: AsyncSession, asks: Counter[tuple[str, str]]) -> None:
    """Add ``asks`` ((studio, local day) → requests) to the per-day counts, in the caller's transaction."""
    if not asks:
        return
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for (studio_id, day), n in sorted(asks.items()):
        statement = insert(StudioAskDay).values(studio_id=studio_id, day=day, asked=n)
        statement = statement.on_conflict_do_update(
            index_elements=["studio_id", "day"], set_={"asked": col(StudioAskDay.asked) + n}
        )
        await session.exec(statement)


@dataclass(slots=True, frozen=True)
class ProblemStats:
    """Problem counts of an alliance: logged and solved in a period, and open now."""

    logged: int
    solved: int
    open: int


@dataclass(slots=True, frozen=True)
class ProblemDetail:
    """A problem with its history (oldest first) and the studios asked."""

    problem: Problem
    events: list[ProblemEvent]
    requests: list[ProblemRequest]


class ProblemRepo:
    """Problems, their history and the studios asked."""

    def __init__(self, sessions: Sessions, *, tz: tzinfo = UTC) -> None:
        self._sessions = sessions
        self._tz = tz  # the local day of the per-day ask counts

    def _day(self, at: datetime) -> str:
        return at.astimezone(self._tz).date().isoformat()

    async def create(
        self,
        problem: Problem,
        *,
        requests: Sequence[tuple[str, int]] = (),
        events: Sequence[tuple[str, str, str]] = (),
    ) -> Problem:
        """Store a new problem with the studios asked (studio id, rank) and its first history entries
        (action, actor, detail), all at ``problem.created_at``, in one transaction. If the message that logs it
        (``message_key``) already logged a problem, that problem is returned instead."""
        if problem.message_key:
            async with self._sessions() as session:
                query = select(Problem).where(Problem.message_key == problem.message_key)
                found = (await session.exec(query)).first()
            if found is not None:
                return found
        async with self._sessions() as session, session.begin():
            session.add(problem)
            await session.flush()
            assert problem.id is not None
            for action, actor, detail in events:
                session.add(
                    ProblemEvent(
                        problem_id=problem.id,
                        action=action,
                        actor=actor,
                        at=problem.created_at,
                        detail=detail,
                    )
                )
            for studio_id, rank in requests:
                session.add(
                    ProblemRequest(
                        problem_id=problem.id, studio_id=studio_id, rank=rank, asked_at=problem.created_at
                    )
                )
            day = self._day(problem.created_at)
            await _count_asks(session, Counter((studio_id, day) for studio_id, _ in requests))
        return problem

    async def add_imported(self, problems: Sequence[Problem]) -> None:
        """Store imported problems, each with an ``imported`` history entry, in one transaction."""
        async with self._sessions() as session, session.begin():
            session.add_all(problems)
            await session.flush()
            for problem in problems:
                assert problem.id is not None
                session.add(
                    ProblemEvent(
                        problem_id=problem.id,
                        action="imported",
                        actor="import",
                        at=problem.created_at,
                        detail=f"外部编号 {problem.ref}" if problem.ref else "",
                    )
                )

    async def get(self, problem_id: int) -> Problem | None:
        """One problem by number."""
        async with self._sessions() as session:
            return await session.get(Problem, problem_id)

    async def detail(self, problem_id: int) -> ProblemDetail | None:
        """A problem with its full history and requests."""
        async with self._sessions() as session:
            problem = await session.get(Problem, problem_id)
            if problem is None:
                return None
            events = (
                await session.exec(
                    select(ProblemEvent)
                    .where(ProblemEvent.problem_id == problem_id)
                    .order_by(col(ProblemEvent.at), col(ProblemEvent.id))
                )
            ).all()
            requests = (
                await session.exec(
                    select(ProblemRequest)
                    .where(ProblemRequest.problem_id == problem_id)
                    .order_by(col(ProblemRequest.rank), col(ProblemRequest.id))
                )
            ).all()
        return ProblemDetail(problem, list(events), list(requests))

    async def requests_of(self, problem_id: int) -> list[ProblemRequest]:
        """The studios asked to take a problem, in rank order."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(ProblemRequest)
                .where(ProblemRequest.problem_id == problem_id)
                .order_by(col(ProblemRequest.rank), col(ProblemRequest.id))
            )
            return list(rows.all())

    async def existing_refs(self, refs: Iterable[str]) -> set[str]:
        """Which of ``refs`` are already stored."""
        wanted = list(dict.fromkeys(refs))
        found: set[str] = set()
        async with self._sessions() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = await session.exec(select(Problem.ref).where(col(Problem.ref).in_(chunk)))
                found.update(r for r in rows.all() if r is not None)
        return found

    async def imported_keys(self) -> set[tuple[str, str]]:
        """(studio, text) of imported problems without a reference, so re-importing them is a no-op."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(Problem.studio_id, Problem.text).where(
                    Problem.source == "import", col(Problem.ref).is_(None)
                )
            )
            return {(s or "", t) for s, t in rows.all()}

    async def find(
        self,
        *,
        statuses: Iterable[ProblemStatus] | None = None,
        asker: str | None = None,
        studio_ids: Sequence[str] | None = None,
        alliance_id: str | None = None,
        alliance_ids: Sequence[str] | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[Problem]:
        """Problems, newest first; filters combine. ``studio_ids`` matches the claiming studio or a studio
        asked; ``asker``, ``studio_ids`` and ``alliance_ids`` together return problems matching any of them
        (``/problems mine``: what I asked, what my studios were asked, my alliances' problems)."""
        query = select(Problem).order_by(col(Problem.id).desc())
        if statuses is not None:
            query = query.where(col(Problem.status).in_([s.value for s in statuses]))
        if alliance_id is not None:
            query = query.where(Problem.alliance_id == alliance_id)
        if created_before is not None:
            query = query.where(col(Problem.created_at) < created_before)
        conditions: list[Any] = []
        if asker is not None:
            conditions.append(col(Problem.asker) == asker)
        if studio_ids is not None:
            ids = list(studio_ids)
            asked = select(ProblemRequest.problem_id).where(col(ProblemRequest.studio_id).in_(ids))
            conditions.append(col(Problem.studio_id).in_(ids))
            conditions.append(col(Problem.id).in_(asked))
        if alliance_ids is not None:
            conditions.append(col(Problem.alliance_id).in_(list(alliance_ids)))
        if conditions:
            condition = conditions[0]
            for other in conditions[1:]:
                condition = condition | other
            query = query.where(condition)
        if limit is not None:
            query = query.limit(limit)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def board(
        self,
        *,
        statuses: Iterable[ProblemStatus] | None = None,
        alliance_id: str | None = None,
        studio_id: str | None = None,
        created_before: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[int, list[Problem]]:
        """One page of problems, newest first, and how many match in all (the console's board). ``studio_id``
        matches the claiming studio or a studio asked."""
        conditions: list[Any] = []
        if statuses is not None:
            conditions.append(col(Problem.status).in_([s.value for s in statuses]))
        if alliance_id is not None:
            conditions.append(col(Problem.alliance_id) == alliance_id)
        if created_before is not None:
            conditions.append(col(Problem.created_at) < created_before)
        if studio_id is not None:
            asked = select(ProblemRequest.problem_id).where(col(ProblemRequest.studio_id) == studio_id)
            conditions.append((col(Problem.studio_id) == studio_id) | col(Problem.id).in_(asked))
        counted = select(func.count()).select_from(Problem)
        query = select(Problem).order_by(col(Problem.id).desc()).offset(offset).limit(limit)
        for condition in conditions:
            counted, query = counted.where(condition), query.where(condition)
        async with self._sessions() as session:
            total = (await session.exec(counted)).one()
            return int(total), list((await session.exec(query)).all())

    async def load(self) -> dict[str, tuple[int, int]]:
        """Per studio, how many unclaimed problems it was asked to take and how many active ones it holds."""
        async with self._sessions() as session:
            asked = await session.exec(
                select(ProblemRequest.studio_id, func.count())
                .join(Problem, col(Problem.id) == col(ProblemRequest.problem_id))
                .where(
                    col(ProblemRequest.outcome) == RequestOutcome.PENDING.value,
                    col(Problem.status).in_([s.value for s in UNCLAIMED]),
                )
                .group_by(col(ProblemRequest.studio_id))
            )
            held = await session.exec(
                select(Problem.studio_id, func.count())
                .where(
                    col(Problem.status).in_([ProblemStatus.CLAIMED.value, ProblemStatus.ANSWERED.value]),
                    col(Problem.studio_id).is_not(None),
                )
                .group_by(col(Problem.studio_id))
            )
            pending = {str(k): int(v) for k, v in asked.all()}
            holding = {str(k): int(v) for k, v in held.all()}
        return {k: (pending.get(k, 0), holding.get(k, 0)) for k in set(pending) | set(holding)}

    async def todo(self) -> tuple[dict[str, list[Problem]], dict[str, list[Problem]]]:
        """Per studio, the problems it was asked and has not taken (still unclaimed), and those it claimed and
        has not answered; oldest first."""
        async with self._sessions() as session:
            asked = await session.exec(
                select(ProblemRequest.studio_id, Problem)
                .join(Problem, col(Problem.id) == col(ProblemRequest.problem_id))
                .where(
                    col(ProblemRequest.outcome) == RequestOutcome.PENDING.value,
                    col(Problem.status).in_([s.value for s in UNCLAIMED]),
                )
                .order_by(col(Problem.id))
            )
            to_claim: dict[str, list[Problem]] = {}
            for studio_id, problem in asked.all():
                to_claim.setdefault(studio_id, []).append(problem)
            claimed = await session.exec(
                select(Problem)
                .where(
                    col(Problem.status) == ProblemStatus.CLAIMED.value, col(Problem.studio_id).is_not(None)
                )
                .order_by(col(Problem.id))
            )
            to_answer: dict[str, list[Problem]] = {}
            for problem in claimed.all():
                assert problem.studio_id is not None
                to_answer.setdefault(problem.studio_id, []).append(problem)
        return to_claim, to_answer

    async def solved(self) -> list[Problem]:
        """Every solved problem with a studio (the routing history), oldest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(Problem)
                .where(Problem.status == ProblemStatus.SOLVED.value, col(Problem.studio_id).is_not(None))
                .order_by(col(Problem.id))
            )
            return list(rows.all())

    async def solved_ids(self) -> set[int]:
        """Ids of solved problems with a studio."""
        with offloaded():  # up to every solved problem: read in the driver's thread
            async with self._sessions() as session:
                rows = await session.stream_scalars(
                    sa_select(col(Problem.id)).where(
                        col(Problem.status) == ProblemStatus.SOLVED.value, col(Problem.studio_id).is_not(None)
                    )
                )
                ids: set[int] = set()
                async for part in rows.partitions(5000):  # each fetched off the loop, the loop free between
                    ids.update(i for i in part if i is not None)
                return ids

    async def solved_signature(self) -> tuple[int, datetime | None]:
        """How many problems are solved and the latest solve: changes whenever the routing history does."""
        with offloaded():  # a scan of every solved problem (tens of ms at 100,000): not on the event loop
            async with self._sessions() as session:
                row = (
                    await session.exec(
                        select(func.count(), func.max(Problem.solved_at)).where(
                            Problem.status == ProblemStatus.SOLVED.value, col(Problem.studio_id).is_not(None)
                        )
                    )
                ).one()
        count, latest = row
        if isinstance(latest, str):  # SQLite aggregates bypass the column type
            latest = datetime.fromisoformat(latest)
        return int(count), latest

    async def solved_history(self, *, after: int = 0, limit: int = 2000) -> list[tuple[int, str | None, str, str, str]]:
        """One page of the routing history as plain rows ``(id, ref, studio_id, text, answer)``, by id after
        ``after``: the start-up build reads 100,000 solved problems a page at a time, without ORM objects."""
        columns = (col(Problem.id), col(Problem.ref), col(Problem.studio_id), col(Problem.text), col(Problem.answer))
        query = (
            sa_select(*columns)
            .where(
                col(Problem.status) == ProblemStatus.SOLVED.value,
                col(Problem.studio_id).is_not(None),
                col(Problem.id) > after,
            )
            .order_by(col(Problem.id))
            .limit(limit)
        )
        with offloaded():  # thousands of rows: read in the driver's thread, not on the event loop
            async with self._sessions() as session:
                rows = (await session.exec(query)).all()  # type: ignore[call-overload]  # a plain Core select
        return [(int(i), ref, str(sid), text, answer or "") for i, ref, sid, text, answer in rows]

    async def by_ids(self, ids: Iterable[int]) -> list[Problem]:
        """Problems by number."""
        wanted = list(ids)
        found: list[Problem] = []
        async with self._sessions() as session:
            for start in range(0, len(wanted), 500):
                rows = await session.exec(
                    select(Problem).where(col(Problem.id).in_(wanted[start : start + 500]))
                )
                found.extend(rows.all())
        return found

    async def transition(
        self,
        problem_id: int,
        *,
        from_statuses: Iterable[ProblemStatus],
        values: dict[str, Any],
        action: str,
        actor: str,
        at: datetime,
        detail: str = "",
        extra_where: Sequence[Any] = (),
    ) -> Problem | None:
        """Change a problem if it is in one of ``from_statuses`` and record the change; None if it was not."""
        statement = (
            update(Problem)
            .where(
                col(Problem.id) == problem_id,
                col(Problem.status).in_([s.value for s in from_statuses]),
                *extra_where,
            )
            .values(**values)
            .returning(col(Problem.id))
        )
        async with self._sessions() as session, session.begin():
            won = (await session.exec(statement)).scalars().first()
            if won is None:
                return None
            session.add(ProblemEvent(problem_id=problem_id, action=action, actor=actor, at=at, detail=detail))
            problem = await session.get(Problem, problem_id)
            assert problem is not None
            await session.refresh(problem)
            return problem

    async def add_event(
        self, problem_id: int, *, action: str, actor: str, at: datetime, detail: str = ""
    ) -> None:
        """Record a history entry that changes nothing else (e.g. a reminder)."""
        async with self._sessions() as session, session.begin():
            session.add(ProblemEvent(problem_id=problem_id, action=action, actor=actor, at=at, detail=detail))

    async def settle_requests(self, problem_id: int, *, claimed_by: str | None) -> None:
        """Mark the claiming studio's request claimed (adding one if it was not asked) and release the others."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.exec(select(ProblemRequest).where(ProblemRequest.problem_id == problem_id))
            ).all()
            for row in rows:
                if row.studio_id == claimed_by:
                    row.outcome = RequestOutcome.CLAIMED.value
                elif row.outcome == RequestOutcome.PENDING.value:
                    row.outcome = RequestOutcome.RELEASED.value
                session.add(row)

    async def escalate(
        self,
        problem_id: int,
        *,
        routed_at: datetime | None,
        studio_id: str | None,
        rank: int,
        at: datetime,
        detail: str,
        action: str = "escalated",
        actor: str = "system",
    ) -> bool:
        """Expire the pending requests and ask ``studio_id`` (if any), if nobody claimed or escalated the
        problem since ``routed_at``; False when another process got there first. Also a transfer by a lead
        (``action="transferred"``)."""
        condition = (
            col(Problem.routed_at).is_(None) if routed_at is None else col(Problem.routed_at) == routed_at
        )
        values: dict[str, Any] = {"routed_at": at}
        if studio_id is not None:
            values["status"] = ProblemStatus.ROUTED.value
        statement = (
            update(Problem)
            .where(
                col(Problem.id) == problem_id,
                col(Problem.status).in_([s.value for s in UNCLAIMED]),
                condition,
            )
            .values(**values)
            .returning(col(Problem.id))
        )
        async with self._sessions() as session, session.begin():
            won = (await session.exec(statement)).scalars().first()
            if won is None:
                return False
            rows = (
                await session.exec(
                    select(ProblemRequest).where(
                        ProblemRequest.problem_id == problem_id,
                        ProblemRequest.outcome == RequestOutcome.PENDING.value,
                    )
                )
            ).all()
            for row in rows:
                row.outcome = RequestOutcome.EXPIRED.value
                session.add(row)
            if studio_id is not None:
                session.add(
                    ProblemRequest(problem_id=problem_id, studio_id=studio_id, rank=rank, asked_at=at)
                )
                await _count_asks(session, Counter({(studio_id, self._day(at)): 1}))
            session.add(ProblemEvent(problem_id=problem_id, action=action, actor=actor, at=at, detail=detail))
        return True

    async def asked_on(self, at: datetime) -> dict[str, int]:
        """How many problems each studio was asked to take on the local day of ``at`` (one row per studio)."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(StudioAskDay.studio_id, StudioAskDay.asked).where(StudioAskDay.day == self._day(at))
            )
            return {studio_id: int(asked) for studio_id, asked in rows.all()}

    async def asked_counts(self, since: datetime, until: datetime) -> dict[str, int]:
        """How many problems each studio was asked to take in ``[since, until)``."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(ProblemRequest.studio_id, func.count())
                .where(col(ProblemRequest.asked_at) >= since, col(ProblemRequest.asked_at) < until)
                .group_by(col(ProblemRequest.studio_id))
            )
            return {studio_id: int(count) for studio_id, count in rows.all()}

    async def response_history(
        self, since: datetime, until: datetime
    ) -> tuple[list[tuple[int, str, datetime]], list[tuple[int, datetime, str]]]:
        """What first-response times are measured from: the requests made in ``[since, until)`` as ``(problem,
        studio, asked_at)``, and every ``claimed`` history entry of those problems as ``(problem, at, detail)``
        (the detail names the claiming studio), oldest first."""
        asked = (
            select(ProblemRequest.problem_id, ProblemRequest.studio_id, ProblemRequest.asked_at)
            .where(col(ProblemRequest.asked_at) >= since, col(ProblemRequest.asked_at) < until)
            .order_by(col(ProblemRequest.asked_at), col(ProblemRequest.id))
        )
        in_period = select(ProblemRequest.problem_id).where(
            col(ProblemRequest.asked_at) >= since, col(ProblemRequest.asked_at) < until
        )
        claims = (
            select(ProblemEvent.problem_id, ProblemEvent.at, ProblemEvent.detail)
            .where(col(ProblemEvent.action) == "claimed", col(ProblemEvent.problem_id).in_(in_period))
            .order_by(col(ProblemEvent.at), col(ProblemEvent.id))
        )
        async with self._sessions() as session:
            requests = [(int(p), str(s), a) for p, s, a in (await session.exec(asked)).all()]
            claimed = [(int(p), a, d) for p, a, d in (await session.exec(claims)).all()]
        return requests, claimed

    async def due_for_escalation(self, before: datetime) -> list[Problem]:
        """Unclaimed problems last routed (or logged) before ``before``, oldest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(Problem)
                .where(
                    col(Problem.status).in_([s.value for s in UNCLAIMED]),
                    func.coalesce(col(Problem.routed_at), col(Problem.created_at)) < before,
                )
                .order_by(col(Problem.id))
            )
            return list(rows.all())

    async def stats(self, *, alliance_id: str, since: datetime, until: datetime) -> ProblemStats:
        """An alliance's problems logged and solved in ``[since, until)`` and open (created before ``until``)."""
        async with self._sessions() as session:

            async def count(*conditions: Any) -> int:
                query = select(func.count()).select_from(Problem).where(Problem.alliance_id == alliance_id)
                return int((await session.exec(query.where(*conditions))).one())

            logged = await count(col(Problem.created_at) >= since, col(Problem.created_at) < until)
            solved = await count(col(Problem.solved_at) >= since, col(Problem.solved_at) < until)
            still_open = await count(
                col(Problem.status).in_([s.value for s in ACTIVE]), col(Problem.created_at) < until
            )
        return ProblemStats(logged=logged, solved=solved, open=still_open)
