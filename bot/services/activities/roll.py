"""An activity's attendee list for the people who run it: names, units and places, and its XLSX export."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.dispatcher import Caller, Role
from bot.services.studios import display_names
from bot.store import Store
from bot.store.activities import Activity, ActivityAttendee, Roll


@dataclass(slots=True, frozen=True)
class AttendeeRow:
    """One person on the list: seat or waiting place, name, account, unit and studio."""

    place: str  # 已报名 | 候补 N
    name: str
    user_id: str
    unit: str
    studio: str
    joined_at: datetime


def roll_refusal(caller: Caller, activity: Activity) -> str | None:
    """Why ``caller`` may not see an activity's names (None: they may): its organizer, an alliance lead or an
    admin (the list names people and their units)."""
    if caller.user_id == activity.organizer or caller.at_least(Role.ALLIANCE_LEAD):
        return None
    return "只有活动发起人、联盟负责人或管理员可以查看和导出报名名单。"


async def attendee_rows(store: Store, roll: Roll) -> list[AttendeeRow]:
    """The seats, then the waiting list, with each person's name and unit from the roster."""
    people: list[tuple[str, ActivityAttendee]] = [("已报名", a) for a in roll.going]
    people += [(f"候补 {n}", a) for n, a in enumerate(roll.waiting, start=1)]
    names = await display_names(store, [a.user_id for _, a in people])
    studios = await store.studios.all()
    alliances = {a.id: a for a in await store.alliances.all()}
    led = {s.lead_userid: s for s in studios}
    leads = {a.lead_userid: a for a in alliances.values() if a.lead_userid}
    rows = []
    for place, attendee in people:
        studio = led.get(attendee.user_id)
        alliance = leads.get(attendee.user_id)
        unit = studio.unit if studio else (f"{alliance.name}（牵头）" if alliance else "—")
        rows.append(
            AttendeeRow(
                place=place,
                name=names[attendee.user_id],
                user_id=attendee.user_id,
                unit=unit,
                studio=f"{studio.name}（{studio.id}）" if studio else "—",
                joined_at=attendee.joined_at,
            )
        )
    return rows


def attendees_workbook(activity: Activity, rows: list[AttendeeRow], tz: ZoneInfo) -> bytes:
    """The attendee list as an XLSX workbook (one sheet, a title row, then one row per person)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "报名名单"
    start = activity.start.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    sheet.append([f"{activity.title}（{start}{'，' + activity.place if activity.place else ''}）"])
    sheet["A1"].font = Font(bold=True)
    sheet.append(["序号", "状态", "姓名", "企业微信账号", "单位", "工作室", "报名时间"])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for number, row in enumerate(rows, start=1):
        joined = row.joined_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        sheet.append([number, row.place, row.name, row.user_id, row.unit, row.studio, joined])
    for column, width in zip("ABCDEFG", (6, 10, 12, 16, 30, 36, 18), strict=True):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
