"""iCalendar feeds: valid RFC 5545 read back with the ``icalendar`` library, updates and cancellations carried by
SEQUENCE and STATUS, served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from icalendar import Calendar

from bot.app import BOT_KEY, BotApp
from bot.channels.calendar import add_routes
from tests.conftest import ADMIN
from tests.harness import Chat

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app[BOT_KEY] = bot
    add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def fetch(client: TestClient[web.Request, web.Application], path: str) -> tuple[bytes, Calendar]:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/calendar" and response.charset == "utf-8"
    body = await response.read()
    return body, Calendar.from_ical(body)


def vevents(calendar: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def assert_rfc5545(body: bytes, calendar: Calendar) -> None:
    assert body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))  # folded lines, octets
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    for activity in calendar.walk("VEVENT"):
        for prop in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "SEQUENCE", "STATUS"):
            assert prop in activity, prop
        assert activity.decoded("DTEND") > activity.decoded("DTSTART")
    tzids = {str(e["DTSTART"].params.get("TZID")) for e in calendar.walk("VEVENT")}
    zones = {str(z["TZID"]) for z in calendar.walk("VTIMEZONE")}
    assert tzids <= zones  # every TZID used is defined


async def test_feed_is_valid_and_tracks_moves_and_cancellations(
    chat: Chat, client: TestClient[web.Request, web.Application]
) -> None:
    await chat.say("mushandong", "/活动 添加 讲座 下周三下午3点 盾构施工新技术 地点 郑州会议中心")
    await chat.say("gaojiaqiao", "/活动 添加 观摩 12月8日 9:00 转体桥现场观摩")
    await chat.say(ADMIN, "/活动 添加 会议 12月10日 14:00 联盟负责人会议")
    body, calendar = await fetch(client, "/calendar.ics")
    assert_rfc5545(body, calendar)
    activities = vevents(calendar)
    assert set(activities) == {"event-1@alliance-bot", "event-2@alliance-bot", "event-3@alliance-bot"}
    lecture = activities["event-1@alliance-bot"]
    assert lecture.decoded("DTSTART") == datetime(2026, 12, 2, 15, 0, tzinfo=SHANGHAI)  # type: ignore[attr-defined]
    assert str(lecture["SUMMARY"]) == "【讲座】盾构施工新技术"  # type: ignore[index]
    assert str(lecture["LOCATION"]) == "郑州会议中心"  # type: ignore[index]
    assert (int(lecture["SEQUENCE"]), str(lecture["STATUS"])) == (0, "CONFIRMED")  # type: ignore[index]

    await chat.say("mushandong", "/活动 改期 1 12月9日 14:00")
    await chat.say("gaojiaqiao", "/活动 取消 2 天气原因")
    body, calendar = await fetch(client, "/calendar.ics")
    assert_rfc5545(body, calendar)
    activities = vevents(calendar)
    moved, cancelled = activities["event-1@alliance-bot"], activities["event-2@alliance-bot"]
    assert moved.decoded("DTSTART") == datetime(2026, 12, 9, 14, 0, tzinfo=SHANGHAI)  # type: ignore[attr-defined]
    assert (int(moved["SEQUENCE"]), str(moved["STATUS"])) == (1, "CONFIRMED")  # type: ignore[index]
    assert (int(cancelled["SEQUENCE"]), str(cancelled["STATUS"])) == (1, "CANCELLED")  # type: ignore[index]
    assert "天气原因" in str(cancelled["DESCRIPTION"])  # type: ignore[index]


async def test_alliance_feed_and_single_event(
    chat: Chat, client: TestClient[web.Request, web.Application]
) -> None:
    await chat.say("mushandong", "/活动 添加 讲座 下周三下午3点 盾构施工新技术")
    await chat.say("gaojiaqiao", "/活动 添加 观摩 12月8日 9:00 转体桥现场观摩")
    await chat.say(ADMIN, "/活动 添加 会议 12月10日 14:00 联盟负责人会议")
    body, calendar = await fetch(client, "/calendar/tunnel.ics")
    assert_rfc5545(body, calendar)
    assert str(calendar["X-WR-CALNAME"]) == "隧道联盟活动"
    assert set(vevents(calendar)) == {"event-1@alliance-bot", "event-3@alliance-bot"}
    body, calendar = await fetch(client, "/calendar/event/2.ics")
    assert_rfc5545(body, calendar)
    assert set(vevents(calendar)) == {"event-2@alliance-bot"}
    for missing in ("/calendar/ocean.ics", "/calendar/event/99.ics", "/calendar/event/x.ics"):
        assert (await client.get(missing)).status == 404


async def test_empty_feed_is_still_a_calendar(client: TestClient[web.Request, web.Application]) -> None:
    body, calendar = await fetch(client, "/calendar.ics")
    assert_rfc5545(body, calendar)
    assert vevents(calendar) == {}


async def test_a_range_sets_the_end_in_the_reply_the_feed_and_a_move(
    chat: Chat, client: TestClient[web.Request, web.Application]
) -> None:
    reply = await chat.say("mushandong", "/活动 添加 讲座 下周三14:00-16:30 盾构施工新技术")
    assert "14:00–16:30" in reply, reply
    _, calendar = await fetch(client, "/calendar/event/1.ics")
    (entry,) = calendar.walk("VEVENT")
    start, end = entry.decoded("DTSTART"), entry.decoded("DTEND")
    assert (start.hour, start.minute, end.hour, end.minute) == (14, 0, 16, 30)
    moved = await chat.say("mushandong", "/活动 改期 1 下周四9点")  # keeps its length of 2.5 hours
    assert "改为：" in moved and "09:00–11:30" in moved, moved
    _, calendar = await fetch(client, "/calendar/event/1.ics")
    (entry,) = calendar.walk("VEVENT")
    assert (entry.decoded("DTEND") - entry.decoded("DTSTART")).seconds == 9000


async def test_a_period_word_alone_takes_a_stated_default(chat: Chat) -> None:
    reply = await chat.say("mushandong", "/活动 添加 讲座 后天下午 盾构施工新技术")
    assert "14:30" in reply and "下午未写几点，按 14:30" in reply, reply
