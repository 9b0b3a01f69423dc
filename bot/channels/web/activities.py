"""Console pages of activities: a month calendar, an activity's page (seats, waiting list, attendance) and its
attendee list as XLSX (names, units, attendance; for the organizer, alliance leads and admins); the organiser,
the activity's alliance lead or an admin marks people present afterwards (``TalentService.mark``, as
``/签到 N 补记 …``)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.channels.web.auth import Refused, bot_of, page, redirect, viewer_of
from bot.services.activities.roll import attendee_rows, attendees_workbook, roll_refusal
from bot.services.activities.service import ActivityService
from bot.services.funds import Refusal
from bot.services.studios import display_names
from bot.services.talent import TalentService, mark_refusal
from bot.store.activities import Activity

WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")
MAX_MARKED = 200  # people marked present in one form


def _month(value: str | None, today: date) -> date:
    try:
        year, month = (value or "").split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        return today.replace(day=1)


async def handle_calendar(request: web.Request) -> web.Response:
    """``GET /console/activities?month=YYYY-MM``: the month's activities, a week a row."""
    bot = bot_of(request)
    tz = bot.settings.tz
    today = bot.runtime.local_now().date()
    first = _month(request.query.get("month"), today)
    days_in = calendar.monthrange(first.year, first.month)[1]
    start = datetime.combine(first, time(), tzinfo=tz)
    end = start + timedelta(days=days_in)
    service = bot.runtime.feature(ActivityService)
    activities = [a for a in await service.repo.for_calendar(start) if a.start < end]
    by_day: dict[date, list[Activity]] = {}
    for activity in activities:
        by_day.setdefault(activity.start.astimezone(tz).date(), []).append(activity)
    grid_start = first - timedelta(days=first.weekday())
    weeks = []
    day = grid_start
    while day < first + timedelta(days=days_in) or day.weekday() != 0:
        week = []
        for _ in range(7):
            week.append(
                {"date": day, "in_month": day.month == first.month, "activities": by_day.get(day, [])}
            )
            day += timedelta(days=1)
        weeks.append(week)
    previous = (first - timedelta(days=1)).replace(day=1)
    following = first + timedelta(days=days_in)
    going = await service.repo.going_counts([a.id for a in activities if a.id is not None])
    return page(
        request,
        "activities.html",
        {
            "active": "activities",
            "month": first,
            "weeks": weeks,
            "weekdays": WEEKDAYS,
            "today": today,
            "previous": f"{previous:%Y-%m}",
            "next": f"{following:%Y-%m}",
            "activities": activities,
            "going": going,
        },
    )


async def _activity(request: web.Request) -> Activity:
    raw = request.match_info["id"]
    service = bot_of(request).runtime.feature(ActivityService)
    valid = raw.isascii() and raw.isdigit() and len(raw) <= 9
    activity = await service.repo.get(int(raw)) if valid else None
    if activity is None:
        raise Refused("没有这个活动。", status=404)
    return activity


async def handle_activity(request: web.Request) -> web.Response:
    """``GET /console/activities/{id}``: details, seats and the waiting list."""
    bot = bot_of(request)
    activity = await _activity(request)
    assert activity.id is not None
    caller = viewer_of(request).caller
    roll = await bot.runtime.feature(ActivityService).repo.roll(activity.id)
    presences = await bot.runtime.feature(TalentService).talent.attendance([activity.id])
    may_see = roll_refusal(caller, activity) is None
    rows = await attendee_rows(bot.store, roll, presences) if may_see else []
    alliance = await bot.store.alliances.get(activity.alliance_id) if activity.alliance_id else None
    started = bot.clock.now() >= activity.start
    return page(
        request,
        "activity.html",
        {
            "active": "activities",
            "activity": activity,
            "alliance": alliance,
            "going": len(roll.going),
            "waiting": len(roll.waiting),
            "rows": rows,
            "may_see": may_see,
            "present": len(presences),
            "can_mark": may_see
            and started
            and not activity.cancelled
            and mark_refusal(caller, activity) is None,
            "started": started,
            "notice": request.query.get("done", ""),
        },
    )


async def handle_mark(request: web.Request) -> web.StreamResponse:
    """``POST /console/activities/{id}/attendance``: mark the ticked people (and any named) present."""
    bot = bot_of(request)
    activity = await _activity(request)
    assert activity.id is not None
    caller = viewer_of(request).caller
    allowed = mark_refusal(caller, activity) is None
    form = await request.post()
    words = [str(v) for v in form.getall("person", [])]
    words += str(form.get("others", "")).replace("、", " ").replace("，", " ").replace(",", " ").split()
    service = bot.runtime.feature(TalentService)
    people = await service.resolve_people(words)
    if allowed and not people:
        raise Refused("请勾选或填写要补记签到的人（姓名或企业微信账号）。", status=400)
    if len(people) > MAX_MARKED:
        raise Refused(f"一次最多补记 {MAX_MARKED} 人。", status=400)
    try:
        _, added, present = await service.mark(caller, activity.id, people)
    except Refusal as exc:
        raise Refused(str(exc), status=400 if allowed else 403) from None
    names = await display_names(bot.store, added)
    already = len(people) - len(added)
    notice = (
        f"已为活动 #{activity.id}「{activity.title}」补记 {len(added)} 人"
        + (f"：{'、'.join(names[p] for p in added)}" if added else "")
        + (f"（{already} 人已签到过）" if already else "")
        + f"；共 {present} 人参加。"
    )
    return redirect(f"/console/activities/{activity.id}?{urlencode({'done': notice})}")


async def handle_export(request: web.Request) -> web.Response:
    """``GET /console/activities/{id}/attendees.xlsx``: the attendee list as a workbook."""
    bot = bot_of(request)
    activity = await _activity(request)
    assert activity.id is not None
    refusal = roll_refusal(viewer_of(request).caller, activity)
    if refusal:
        raise Refused(refusal)
    roll = await bot.runtime.feature(ActivityService).repo.roll(activity.id)
    presences = await bot.runtime.feature(TalentService).talent.attendance([activity.id])
    rows = await attendee_rows(bot.store, roll, presences)
    body = attendees_workbook(activity, rows, bot.settings.tz)
    filename = f"活动{activity.id}-报名名单.xlsx"
    return web.Response(
        body=body,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f"attachment; filename=\"activity-{activity.id}.xlsx\"; filename*=UTF-8''{quote(filename)}"
        },
    )


def add_routes(console: web.Application) -> None:
    """Mount the activity pages."""
    console.router.add_get("/activities", handle_calendar, name="activities")
    console.router.add_get("/activities/{id}", handle_activity, name="activity")
    console.router.add_get("/activities/{id}/attendees.xlsx", handle_export, name="activity-export")
    console.router.add_post("/activities/{id}/attendance", handle_mark, name="activity-attendance")
