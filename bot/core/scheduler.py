"""Scheduled jobs: APScheduler 3 drives them; the database decides who runs each firing and records outcomes.

Jobs are plain coroutines ``func(runtime, now) -> str | None`` (the string is a short outcome detail), so tests
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
from sqlalchemy.exc import IntegrityError

from bot.core.middleware import DATABASE_ERRORS, is_outage
from bot.core.runtime import Runtime
from bot.store.jobs import JobRun

log = logging.getLogger(__name__)

JobFunc = Callable[[Runtime, datetime], Awaitable[str | None]]
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


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

    def __init__(self, runtime: Runtime, scheduler: AsyncIOScheduler) -> None:
        self._runtime = runtime
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
        now = now or self._runtime.clock.now()
        slot = now.replace(second=0, microsecond=0)
        run = JobRun(name=name, slot=slot, started_at=now, worker=WORKER_ID)
        if spec.exclusive and not await self._runtime.store.jobs.claim(run):
            log.debug("job %s slot %s already claimed", name, slot)
            return None
        outcome, detail = "ok", ""
        try:
            detail = await spec.func(self._runtime, now) or ""
        except DATABASE_ERRORS as exc:
            if not is_outage(exc):
                log.exception("job %s failed", name)
            else:  # not a bug: the next firing (or a retry of this slot's run) does the work
                log.warning("job %s: the database is unavailable (%s)", name, type(exc).__name__)
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("job %s failed", name)
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
        try:
            await self._record(run, spec, outcome, detail)
        except DATABASE_ERRORS as exc:
            if not is_outage(exc):
                raise
            log.warning("job %s: its outcome could not be recorded (%s)", name, type(exc).__name__)
        return detail if outcome == "ok" else None

    async def _record(self, run: JobRun, spec: JobSpec, outcome: str, detail: str) -> None:
        finished = self._runtime.clock.now()
        jobs = self._runtime.store.jobs
        try:
            await jobs.finish(run, exclusive=spec.exclusive, at=finished, outcome=outcome, detail=detail)
        except IntegrityError:
            # another process recorded the same sweep's first run at the same moment: now there is a row
            await jobs.finish(run, exclusive=spec.exclusive, at=finished, outcome=outcome, detail=detail)

    async def status(self) -> list[JobStatus]:
        """Each job's next firing and last run."""
        now = self._runtime.clock.now()
        statuses = []
        for spec in self.specs.values():
            last = await self._runtime.store.jobs.last(spec.name)
            next_run = spec.trigger.get_next_fire_time(None, now.astimezone(self._runtime.settings.tz))
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
        await self._runtime.store.jobs.prune(self._runtime.clock.now() - older_than)
