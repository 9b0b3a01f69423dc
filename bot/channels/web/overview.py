"""The overview page: health, live channels, the outbox, scheduled jobs, today's problems and activities."""

from __future__ import annotations

from aiohttp import web

from bot.channels.web.auth import bot_of, page, studios_by_id, viewer_of
from bot.core.dispatcher import Role
from bot.core.scheduler import JobRegistry
from bot.services.activities.service import ActivityService
from bot.services.problems import ProblemService, local_day_bounds
from bot.store.engine import calls_of

OUTCOMES = {"ok": "成功", "error": "出错", "running": "进行中"}


async def handle_overview(request: web.Request) -> web.Response:
    """``GET /console/``."""
    bot = bot_of(request)
    now = bot.clock.now()
    start, end = local_day_bounds(now, bot.settings.tz)
    try:
        counts = await bot.store.outbox.counts()
        database = {"ok": True, "dialect": bot.store.dialect, "calls": calls_of(bot.store.engine).as_dict()}
    except Exception as exc:  # the page still shows what it can
        counts, database = {}, {"ok": False, "dialect": bot.store.dialect, "error": type(exc).__name__}
    problems = bot.runtime.feature(ProblemService)
    today_problems = [
        p for p in await problems.repo.find(created_before=end, limit=200) if p.created_at >= start
    ]
    activities = bot.runtime.feature(ActivityService)
    today_activities = [a for a in await activities.repo.for_calendar(start) if a.start < end]
    # the outbox and the jobs are what /发件箱 and /定时任务 show: admins only, as in chat
    admin = viewer_of(request).at_least(Role.ADMIN)
    jobs = await bot.runtime.feature(JobRegistry).status() if admin else []
    return page(
        request,
        "overview.html",
        {
            "active": "overview",
            "database": database,
            "channels": bot.live_channels,
            "outbox": {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)},
            "jobs": jobs,
            "admin": admin,
            "outcomes": OUTCOMES,
            "today_problems": today_problems,
            "today_activities": today_activities,
            "studios": await studios_by_id(request),
        },
    )


def add_routes(console: web.Application) -> None:
    """Mount the overview."""
    console.router.add_get("/", handle_overview, name="overview")
