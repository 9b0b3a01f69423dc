"""Scheduled jobs' records: one row per firing of an exclusive job (claimed once), one row per sweep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class JobRun(SQLModel, table=True):
    """One firing of a scheduled job: who ran it, when, and how it went."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("name", "slot", name="uq_job_run_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    slot: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    outcome: str = Field(default="running", max_length=16)
    detail: str = ""
    worker: str = Field(default="", max_length=100)


class JobRunRepo:
    """Claims of job firings and their outcomes."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def claim(self, run: JobRun) -> bool:
        """Claim ``run``'s firing slot; False when another process already has it."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(run)
        except IntegrityError:
            return False
        return True

    async def finish(self, run: JobRun, *, exclusive: bool, at: datetime, outcome: str, detail: str) -> None:
        """Record how a firing went (an exclusive one on its claimed row; a sweep on its one row)."""
        async with self._sessions() as session, session.begin():
            if exclusive:
                await session.exec(
                    update(JobRun)
                    .where(col(JobRun.name) == run.name, col(JobRun.slot) == run.slot)
                    .values(finished_at=at, outcome=outcome, detail=detail[:2000])
                )
                return
            # sweeps run often and claim their own items; keep one row per job and update it
            existing = (
                await session.exec(select(JobRun).where(JobRun.name == run.name).order_by(col(JobRun.id).desc()))
            ).first()
            if existing is None:
                existing = JobRun(name=run.name, slot=run.slot, worker=run.worker)
                session.add(existing)
            existing.slot, existing.started_at = run.slot, run.started_at
            existing.finished_at, existing.outcome, existing.detail = at, outcome, detail[:2000]

    async def last(self, name: str) -> JobRun | None:
        """The latest run of job ``name``."""
        async with self._sessions() as session:
            return (
                await session.exec(
                    select(JobRun).where(JobRun.name == name).order_by(col(JobRun.started_at).desc())
                )
            ).first()

    async def prune(self, before: datetime) -> None:
        """Forget runs started before ``before``."""
        async with self._sessions() as session, session.begin():
            await session.exec(delete(JobRun).where(col(JobRun.started_at) < before))
