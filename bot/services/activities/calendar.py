"""iCalendar (RFC 5545) feeds of the alliance's activities: ``/calendar.ics``, ``/calendar/{alliance}.ics``.

Each activity keeps one ``UID``; moves and cancellations raise its ``SEQUENCE`` and set ``STATUS`` so calendar
clients update or drop the entry instead of duplicating it. Cancelled activities stay in the feed for that reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from bot.services.activities.types import ActivityType
from bot.store.activities import Activity, ActivityRepo

# How long an activity lasts in a calendar; the bot only records the start.
DURATIONS: Mapping[str, timedelta] = {
    ActivityType.ANNUAL.value: timedelta(hours=4),
    ActivityType.VISIT.value: timedelta(hours=4),
    ActivityType.TRAINING.value: timedelta(hours=3),
}
DEFAULT_DURATION = timedelta(hours=2)
# Past activities kept in a feed, so a subscriber's recent history stays visible.
HISTORY = timedelta(days=180)
PRODID = "-//alliance-bot//工作室联盟活动日历//ZH"
UID_DOMAIN = "alliance-bot"


def activity_uid(activity_id: int) -> str:
    """The iCalendar UID of an activity (stable across moves and cancellation)."""
    return f"event-{activity_id}@{UID_DOMAIN}"


def render_calendar(
    activities: Sequence[Activity], *, name: str, tz: ZoneInfo, alliance_names: Mapping[str, str]
) -> bytes:
    """An RFC 5545 calendar with one ``VEVENT`` per activity, times in ``tz`` with its ``VTIMEZONE``."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", str(tz.key))
    for activity in activities:
        assert activity.id is not None
        entry = Event()
        entry.add("uid", activity_uid(activity.id))
        entry.add("dtstamp", activity.updated_at)
        entry.add("created", activity.created_at)
        entry.add("last-modified", activity.updated_at)
        start = activity.start.astimezone(tz)
        entry.add("dtstart", start)
        default_end = start + DURATIONS.get(activity.type, DEFAULT_DURATION)
        end = activity.ends_at.astimezone(tz) if activity.ends_at else default_end
        entry.add("dtend", end)
        entry.add("summary", f"【{activity.type}】{activity.title}")
        if activity.place:
            entry.add("location", activity.place)
        host = alliance_names.get(activity.alliance_id or "", "全体联盟")
        description = f"{host}·{activity.type}。报名：在企业微信中发送 /报名 {activity.id}"
        if activity.cancelled and activity.note:
            description += f"\n取消原因：{activity.note}"
        entry.add("description", description)
        entry.add("categories", [activity.type])
        entry.add("sequence", activity.sequence)
        entry.add("status", "CANCELLED" if activity.cancelled else "CONFIRMED")
        entry.add("transp", "TRANSPARENT" if activity.cancelled else "OPAQUE")
        calendar.add_component(entry)
    calendar.add_missing_timezones()
    return calendar.to_ical()


async def calendar_feed(
    repo: ActivityRepo,
    *,
    now: datetime,
    tz: ZoneInfo,
    alliance_id: str | None,
    name: str,
    alliance_names: Mapping[str, str],
) -> bytes:
    """The feed for every activity (``alliance_id=None``) or one alliance's (with joint activities)."""
    activities = await repo.for_calendar(now - HISTORY, alliance_id=alliance_id)
    return render_calendar(activities, name=name, tz=tz, alliance_names=alliance_names)










