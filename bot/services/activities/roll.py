"""An activity's attendee list for the people who run it: names, units and places, and its XLSX export."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.dispatcher import Caller, Role
from bot.services.studios import display_names
from bot.store import Store
from bot.store.activities import Activity, ActivityAttendee, Roll
from bot.store.talent import Attendance


@dataclass(slots=True, frozen=True)
class AttendeeRow:
    """One person on the list: seat or waiting place, name, account, unit and studio, and whether they were
    present (签到 themselves, or marked by the organiser: 补记)."""

    place: str  # 已报名 | 候补 N | 未报名 (present without signing up)
    name: str
    user_id: str
    unit: str
    studio: str
    joined_at: datetime | None
    attended_at: datetime | None = None
    attendance: str = ""  # 本人签到 | 补记 | ""


def _presence_text(presence: Attendance) -> str:
    return "本人签到" if presence.marked_by == presence.person else "补记"


def roll_refusal(caller: Caller, activity: Activity) -> str | None:
    """Why ``caller`` may not see an activity's names (None: they may): its organizer, an alliance lead or an
    admin (the list names people and their units)."""
    if caller.user_id == activity.organizer or caller.at_least(Role.ALLIANCE_LEAD):
        return None
    return "只有活动发起人、联盟负责人或管理员可以查看和导出报名名单。"


async def attendee_rows(store: Store, roll: Roll, presences: Sequence[Attendance] = ()) -> list[AttendeeRow]:
    """The seats, then the waiting list, then those present without signing up, with each person's name and
    unit from the roster and their presence (``presences``: the activity's attendance)."""
    people: list[tuple[str, ActivityAttendee]] = [("已报名", a) for a in roll.going]
    people += [(f"候补 {n}", a) for n, a in enumerate(roll.waiting, start=1)]
    present = {p.person: p for p in presences}
    signed_up = {a.user_id for _, a in people}
    walk_ins = [p for p in presences if p.person not in signed_up]
    names = await display_names(store, [a.user_id for _, a in people] + [p.person for p in walk_ins])
    studios = await store.studios.all()
    alliances = {a.id: a for a in await store.alliances.all()}
    led = {s.lead_userid: s for s in studios}
    leads = {a.lead_userid: a for a in alliances.values() if a.lead_userid}
    rows = []
    entries: list[tuple[str, str, datetime | None]] = [(place, a.user_id, a.joined_at) for place, a in people]
    entries += [("未报名", p.person, None) for p in walk_ins]
    for place, user_id, joined_at in entries:
        studio = led.get(user_id)
        alliance = leads.get(user_id)
        unit = studio.unit if studio else (f"{alliance.name}（牵头）" if alliance else "—")
        presence = present.get(user_id)
        rows.append(
            AttendeeRow(
                place=place,
                name=names[user_id],
                user_id=user_id,
                unit=unit,
                studio=f"{studio.name}（{studio.id}）" if studio else "—",
                joined_at=joined_at,
                attended_at=presence.at if presence else None,
                attendance=_presence_text(presence) if presence else "",
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
    sheet.append(["序号", "状态", "姓名", "企业微信账号", "单位", "工作室", "报名时间", "签到", "签到时间"])
    for cell in sheet[2]:
        cell.font = Font(bold=True)

    def local(when: datetime | None) -> str:
        return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when is not None else ""

    for number, row in enumerate(rows, start=1):
        sheet.append(
            [
                number,
                row.place,
                row.name,
                row.user_id,
                row.unit,
                row.studio,
                local(row.joined_at),
                row.attendance or "未签到",
                local(row.attended_at),
            ]
        )
    for column, width in zip("ABCDEFGHI", (6, 10, 12, 16, 30, 36, 18, 10, 18), strict=True):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
