"""The calendar feeds over HTTP (RFC 5545): ``GET /calendar.ics``, ``/calendar/{alliance}.ics``, ``/calendar/event/{id}.ics``."""

from __future__ import annotations

from aiohttp import web

from bot.services.activities.calendar import calendar_feed, render_calendar


def ics_response(body: bytes, filename: str) -> web.Response:
    """An HTTP response carrying a calendar."""
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "max-age=300"},
    )


async def handle_calendar(request: web.Request) -> web.Response:
    """``GET /calendar.ics``: every alliance's activities."""
    from bot.app import BOT_KEY
    from bot.services.activities.service import ActivityService

    bot = request.app[BOT_KEY]
    service = bot.runtime.feature(ActivityService)
    names = {a.id: a.name for a in await bot.store.alliances.all()}
    body = await calendar_feed(
        service.repo,
        now=bot.clock.now(),
        tz=bot.settings.tz,
        alliance_id=None,
        name="工作室联盟活动",
        alliance_names=names,
    )
    return ics_response(body, "calendar.ics")


async def handle_alliance_calendar(request: web.Request) -> web.Response:
    """``GET /calendar/{alliance}.ics``: one alliance's activities and the joint ones; 404 for an unknown one."""
    from bot.app import BOT_KEY
    from bot.services.activities.service import ActivityService

    bot = request.app[BOT_KEY]
    alliance = await bot.store.alliances.get(request.match_info["alliance"])
    if alliance is None:
        raise web.HTTPNotFound(text="没有这个联盟")
    service = bot.runtime.feature(ActivityService)
    names = {a.id: a.name for a in await bot.store.alliances.all()}
    body = await calendar_feed(
        service.repo,
        now=bot.clock.now(),
        tz=bot.settings.tz,
        alliance_id=alliance.id,
        name=f"{alliance.name}活动",
        alliance_names=names,
    )
    return ics_response(body, f"{alliance.id}.ics")


async def handle_activity_calendar(request: web.Request) -> web.Response:
    """``GET /calendar/event/{id}.ics``: one activity, to add it to a personal calendar."""
    from bot.app import BOT_KEY
    from bot.services.activities.service import ActivityService

    bot = request.app[BOT_KEY]
    raw = request.match_info["id"]
    service = bot.runtime.feature(ActivityService)
    valid = raw.isascii() and raw.isdigit() and len(raw) <= 9  # larger ids overflow the database's integers
    activity = await service.repo.get(int(raw)) if valid else None
    if activity is None:
        raise web.HTTPNotFound(text="没有这个活动")
    names = {a.id: a.name for a in await bot.store.alliances.all()}
    body = render_calendar([activity], name=activity.title, tz=bot.settings.tz, alliance_names=names)
    return ics_response(body, f"event-{activity.id}.ics")


def add_routes(app: web.Application) -> None:
    """Mount the calendar feeds."""
    app.router.add_get("/calendar.ics", handle_calendar)
    app.router.add_get("/calendar/event/{id}.ics", handle_activity_calendar)
    app.router.add_get("/calendar/{alliance}.ics", handle_alliance_calendar)
