"""A feature module for scale-out tests: exclusive probe jobs that fire a few seconds after start-up.

A serve process loads it when started through ``LAUNCHER`` (``bot.app.FEATURES`` plus this module, then the
real ``alliance-bot`` CLI). ``PROBE_JOBS_AT`` (epoch seconds) is when the first probe fires; each probe fires
once, one second after the previous one. Every process logs each firing its scheduler makes (``probe fired``);
only the process that claims the firing in ``job_run`` runs the job, which sends one unkeyed message, so a
double firing would show as a second message.

``PROBE_ESCALATE_AT`` (epoch seconds), when set, also runs the problem escalation sweep at that instant in every
process at once (a non-exclusive job): each problem must still be escalated once, by one process.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.triggers.date import DateTrigger

from bot.app import BotApp
from bot.core.runtime import Runtime

log = logging.getLogger("bot.probe")
PROBES = ("probe-1", "probe-2", "probe-3")
ESCALATE = "probe-escalate"
LAUNCHER = (
    "-c",
    "import sys, bot.app as app; app.FEATURES += ('tests.probe_job',); "
    "from bot.cli.main import main; raise SystemExit(main(sys.argv[1:]))",
)


async def _probe(runtime: Runtime, now: datetime) -> str:
    await runtime.outbox.notify_user("admin1", f"探针任务执行 {now.isoformat()} 进程 {os.getpid()}")
    return f"sent by {os.getpid()}"


async def _escalate(runtime: Runtime, now: datetime) -> str:
    from bot.services.problems import ProblemService

    return await runtime.feature(ProblemService).escalate_due(now)


async def setup(bot: BotApp) -> None:
    """Register the probe jobs (exclusive, like every cluster-wide job) and the concurrent escalation sweep."""
    if "PROBE_ESCALATE_AT" in os.environ:
        bot.jobs.add(
            ESCALATE,
            DateTrigger(
                run_date=datetime.fromtimestamp(float(os.environ["PROBE_ESCALATE_AT"]), UTC),
                timezone=bot.settings.tz,
            ),
            _escalate,
            description="扩展测试：各进程同时升级问题",
            exclusive=False,
        )
    first = datetime.fromtimestamp(float(os.environ["PROBE_JOBS_AT"]), UTC)
    for index, name in enumerate(PROBES):
        bot.jobs.add(
            name,
            DateTrigger(run_date=first + timedelta(seconds=index), timezone=bot.settings.tz),
            _probe,
            description=f"扩展测试探针 {index + 1}",
        )

    def executed(event: JobExecutionEvent) -> None:
        if event.job_id in (*PROBES, ESCALATE):
            outcome = "failed" if event.exception is not None else "fired"
            log.warning("probe %s: %s in %d (%r)", outcome, event.job_id, os.getpid(), event.exception)

    bot.scheduler.add_listener(executed, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
