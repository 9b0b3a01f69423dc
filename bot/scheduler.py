"""Scheduled jobs: APScheduler 3 drives them; the database decides who runs each firing and records outcomes.

Jobs are plain coroutines ``func(services, now) -> str | None`` (the string is a short outcome detail), so tests
call them directly with an injected time instead of sleeping. What must happen (reminders, escalations) lives
in feature tables; a job only sweeps what is due. An *exclusive* job claims its firing slot in ``job_run``
(unique per job and minute), so with several processes on one database each firing runs once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Column, UniqueConstraint, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from bot.services import Services
from bot.store.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

JobFunc = Callable[[Services, datetime], Awaitable[str | None]]
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


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


@dataclass(slots=True, frozen=True)
class JobSpec:
    """A registered job."""

    name: str
    description: str  # Chinese, shown by /jobs
    trigger: BaseTrigger
    func: JobFunc
    exclusive: bool = True


@dataclass(slots=True, frozen=True)
class JobStatus:
    """What ``/jobs`` shows about one job."""

    name: str
    description: str
    next_run: datetime | None
    last_run: JobRun | None


class JobRegistry:
    """Registers jobs with APScheduler and runs each firing through the database claim."""

    def __init__(self, services: Services, scheduler: AsyncIOScheduler) -> None:
        self._services = services
        self._scheduler = scheduler
        self.specs: dict[str, JobSpec] = {}
        # features add lines shown below the job table (e.g. the next reminders): async () -> str | None
        self.notes: list[Callable[[], Awaitable[str | None]]] = []

    def add(
        self, name: str, trigger: BaseTrigger, func: JobFunc, *, description: str, exclusive: bool = True
    ) -> None:
        """Register a job; it is scheduled when the scheduler starts (``install``)."""
        if name in self.specs:
            raise ValueError(f"job {name} registered twice")
        self.specs[name] = JobSpec(name, description, trigger, func, exclusive)

    def install(self) -> None:
        """Add every registered job to the APScheduler scheduler."""
        for spec in self.specs.values():
            self._scheduler.add_job(
                self.fire,
                trigger=spec.trigger,
                args=[spec.name],
                id=spec.name,
                name=spec.description,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=300,
            )

    async def fire(self, name: str, now: datetime | None = None) -> str | None:
        """Run one firing of ``name`` now (or at the injected ``now``) unless another process claimed it."""
        spec = self.specs[name]
        now = now or self._services.clock.now()
        slot = now.replace(second=0, microsecond=0)
        store = self._services.store
        run = JobRun(name=name, slot=slot, started_at=now, worker=WORKER_ID)
        if spec.exclusive:
            try:
                async with store.sessions() as session, session.begin():
                    session.add(run)
            except IntegrityError:
                log.debug("job %s slot %s already claimed", name, slot)
                return None
        outcome, detail = "ok", ""
        try:
            detail = await spec.func(self._services, now) or ""
        except Exception as exc:
            log.exception("job %s failed", name)
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
        await self._record(run, spec, outcome, detail)
        return detail if outcome == "ok" else None

    async def _record(self, run: JobRun, spec: JobSpec, outcome: str, detail: str) -> None:
        try:
            await self._write_record(run, spec, outcome, detail)
        except IntegrityError:
            # another process recorded the same sweep's first run at the same moment: now there is a row
            await self._write_record(run, spec, outcome, detail)

    async def _write_record(self, run: JobRun, spec: JobSpec, outcome: str, detail: str) -> None:
        finished = self._services.clock.now()
        async with self._services.store.sessions() as session, session.begin():
            if spec.exclusive:
                await session.exec(
                    update(JobRun)
                    .where(col(JobRun.name) == run.name, col(JobRun.slot) == run.slot)
                    .values(finished_at=finished, outcome=outcome, detail=detail[:2000])
                )
            else:
                # sweeps run often and claim their own items; keep one row per job and update it
                existing = (
                    await session.exec(
                        select(JobRun).where(JobRun.name == run.name).order_by(col(JobRun.id).desc())
                    )
                ).first()
                if existing is None:
                    existing = JobRun(name=run.name, slot=run.slot, worker=run.worker)
                    session.add(existing)
                existing.slot, existing.started_at = run.slot, run.started_at
                existing.finished_at, existing.outcome, existing.detail = finished, outcome, detail[:2000]

    async def status(self) -> list[JobStatus]:
        """Each job's next firing and last run."""
        now = self._services.clock.now()
        statuses = []
        async with self._services.store.sessions() as session:
            for spec in self.specs.values():
                last = (
                    await session.exec(
                        select(JobRun).where(JobRun.name == spec.name).order_by(col(JobRun.started_at).desc())
                    )
                ).first()
                next_run = spec.trigger.get_next_fire_time(None, now.astimezone(self._services.settings.tz))
                statuses.append(JobStatus(spec.name, spec.description, next_run, last))
        return statuses

    async def report(self) -> list[str]:
        """The features' notes for ``/jobs`` (a failing note is logged and left out)."""
        lines = []
        for note in self.notes:
            try:
                text = await note()
            except Exception:
                log.exception("job status note failed")
                continue
            if text:
                lines.append(text)
        return lines

    async def prune(self, older_than: timedelta = timedelta(days=90)) -> None:
        """Forget old exclusive-run records."""
        from sqlalchemy import delete

        cutoff = self._services.clock.now() - older_than
        async with self._services.store.sessions() as session, session.begin():
            await session.exec(delete(JobRun).where(col(JobRun.started_at) < cutoff))
