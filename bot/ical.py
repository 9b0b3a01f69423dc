"""iCalendar (RFC 5545) feeds of the alliance's events: ``/calendar.ics``, ``/calendar/{alliance}.ics``.

Each event keeps one ``UID``; moves and cancellations raise its ``SEQUENCE`` and set ``STATUS`` so calendar
clients update or drop the entry instead of duplicating it. Cancelled events stay in the feed for that reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from icalendar import Calendar, Event

from bot.event_types import EventType
from bot.store.events import CalendarEvent, EventRepo

# How long an event lasts in a calendar; the bot only records the start.
DURATIONS: Mapping[str, timedelta] = {
    EventType.ANNUAL.value: timedelta(hours=4),
    EventType.VISIT.value: timedelta(hours=4),
    EventType.TRAINING.value: timedelta(hours=3),
}
DEFAULT_DURATION = timedelta(hours=2)
# Past events kept in a feed, so a subscriber's recent history stays visible.
HISTORY = timedelta(days=180)
PRODID = "-//alliance-bot//工作室联盟活动日历//ZH"
UID_DOMAIN = "alliance-bot"


def event_uid(event_id: int) -> str:
    """The iCalendar UID of an event (stable across moves and cancellation)."""
    return f"event-{event_id}@{UID_DOMAIN}"


def render_calendar(
    events: Sequence[CalendarEvent], *, name: str, tz: ZoneInfo, alliance_names: Mapping[str, str]
) -> bytes:
    """An RFC 5545 calendar with one ``VEVENT`` per event, times in ``tz`` with its ``VTIMEZONE``."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", str(tz.key))
    for event in events:
        assert event.id is not None
        entry = Event()
        entry.add("uid", event_uid(event.id))
        entry.add("dtstamp", event.updated_at)
        entry.add("created", event.created_at)
        entry.add("last-modified", event.updated_at)
        start = event.start.astimezone(tz)
        entry.add("dtstart", start)
        entry.add("dtend", start + DURATIONS.get(event.type, DEFAULT_DURATION))
        entry.add("summary", f"【{event.type}】{event.title}")
        if event.place:
            entry.add("location", event.place)
        host = alliance_names.get(event.alliance_id or "", "全体联盟")
        description = f"{host}·{event.type}。报名：在企业微信中发送 /报名 {event.id}"
        if event.cancelled and event.note:
            description += f"\n取消原因：{event.note}"
        entry.add("description", description)
        entry.add("categories", [event.type])
        entry.add("sequence", event.sequence)
        entry.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
        entry.add("transp", "TRANSPARENT" if event.cancelled else "OPAQUE")
        calendar.add_component(entry)
    calendar.add_missing_timezones()
    return calendar.to_ical()


async def calendar_feed(
    repo: EventRepo,
    *,
    now: datetime,
    tz: ZoneInfo,
    alliance_id: str | None,
    name: str,
    alliance_names: Mapping[str, str],
) -> bytes:
    """The feed for every event (``alliance_id=None``) or one alliance's (with joint events)."""
    events = await repo.for_calendar(now - HISTORY, alliance_id=alliance_id)
    return render_calendar(events, name=name, tz=tz, alliance_names=alliance_names)


def ics_response(body: bytes, filename: str) -> web.Response:
    """An HTTP response carrying a calendar."""
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "max-age=300"},
    )


async def handle_calendar(request: web.Request) -> web.Response:
    """``GET /calendar.ics``: every alliance's events."""
    from bot.app import BOT_KEY
    from bot.event_service import EventService

    bot = request.app[BOT_KEY]
    service = bot.services.feature(EventService)
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
    """``GET /calendar/{alliance}.ics``: one alliance's events and the joint ones; 404 for an unknown one."""
    from bot.app import BOT_KEY
    from bot.event_service import EventService

    bot = request.app[BOT_KEY]
    alliance = await bot.store.alliances.get(request.match_info["alliance"])
    if alliance is None:
        raise web.HTTPNotFound(text="没有这个联盟")
    service = bot.services.feature(EventService)
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


async def handle_event_calendar(request: web.Request) -> web.Response:
    """``GET /calendar/event/{id}.ics``: one event, to add it to a personal calendar."""
    from bot.app import BOT_KEY
    from bot.event_service import EventService

    bot = request.app[BOT_KEY]
    raw = request.match_info["id"]
    service = bot.services.feature(EventService)
    event = await service.repo.get(int(raw)) if raw.isdigit() else None
    if event is None:
        raise web.HTTPNotFound(text="没有这个活动")
    names = {a.id: a.name for a in await bot.store.alliances.all()}
    body = render_calendar([event], name=event.title, tz=bot.settings.tz, alliance_names=names)
    return ics_response(body, f"event-{event.id}.ics")


def add_routes(app: web.Application) -> None:
    """Mount the calendar feeds."""
    app.router.add_get("/calendar.ics", handle_calendar)
    app.router.add_get("/calendar/event/{id}.ics", handle_event_calendar)
    app.router.add_get("/calendar/{alliance}.ics", handle_alliance_calendar)
