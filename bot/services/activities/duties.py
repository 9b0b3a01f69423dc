"""Duties from the alliance charter, as scheduled checks, and the weekly digest.

- every alliance holds an annual meeting (年会) each calendar year: from 1 October, while none is scheduled for
  the year, the alliance lead and the admins are reminded every Monday;
- the lead unit rotates every 3 years: admins are told 60 days before the current term (``lead_since``) ends;
- every Monday 09:00 each alliance group gets a digest: problems of last week, open problems, coming activities.

Each check is idempotent per period (``duty_notice`` rows and outbox dedupe keys), so a second process or a
re-run of the same firing sends nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.core.runtime import Runtime
from bot.services.activities.service import ActivityService, type_label
from bot.services.activities.types import ActivityType
from bot.store.problems import ProblemRepo
from bot.store.studios import Alliance

log = logging.getLogger(__name__)

ANNUAL_FROM = (10, 1)  # month, day: the annual-meeting check starts on 1 October
TERM_YEARS = 3
ROTATION_NOTICE = timedelta(days=60)
DIGEST_EVENTS_AHEAD = timedelta(days=14)
WEEKDAYS = "一二三四五六日"


async def admins_of(runtime: Runtime) -> list[str]:
    """Admins from settings and those granted with ``/grant``, each once."""
    granted = await runtime.feature(ActivityService).repo.granted_admins()
    return list(dict.fromkeys([*runtime.settings.admins, *granted]))


def term_end(lead_since: date) -> date:
    """When a lead unit's three-year term ends (29 February → 28 February)."""
    try:
        return lead_since.replace(year=lead_since.year + TERM_YEARS)
    except ValueError:
        return lead_since.replace(year=lead_since.year + TERM_YEARS, day=28)


def cn_date(day: date) -> str:
    """``2026年12月15日（星期二）``."""
    return f"{day.year}年{day.month}月{day.day}日（星期{WEEKDAYS[day.weekday()]}）"


async def check_annual_meetings(runtime: Runtime, now: datetime) -> str:
    """From 1 October, remind each alliance without a 年会 this year (lead and admins), once per Monday."""
    local = now.astimezone(runtime.settings.tz)
    today = local.date()
    if today < date(today.year, *ANNUAL_FROM):
        return "before 1 October: nothing to check"
    tz = runtime.settings.tz
    year_start = datetime.combine(date(today.year, 1, 1), time(), tzinfo=tz)
    year_end = datetime.combine(date(today.year + 1, 1, 1), time(), tzinfo=tz)
    repo = runtime.feature(ActivityService).repo
    admins = await admins_of(runtime)
    week = (today - timedelta(days=today.weekday())).isoformat()
    reminded: list[str] = []
    for alliance in await runtime.store.alliances.all():
        if await repo.exists(
            activity_type=ActivityType.ANNUAL.value, alliance_id=alliance.id, since=year_start, until=year_end
        ):
            continue
        recipients = list(dict.fromkeys([*([alliance.lead_userid] if alliance.lead_userid else []), *admins]))
        if not recipients:
            log.warning("annual meeting of %s is missing but nobody can be reminded", alliance.id)
            continue
        if not await repo.record_duty(
            kind="annual_meeting", alliance_id=alliance.id, period=week, at=now, detail=",".join(recipients)
        ):
            continue
        text = (
            f"【年会提醒】按联盟章程，{alliance.name}每个自然年至少召开一次年会，{today.year}年的年会还没有安排。\n"
            f"请联盟负责人尽快确定时间并发送：/活动 添加 年会 时间 标题 @{alliance.id}，"
            f"例如 /活动 添加 年会 12月18日 9:00 {today.year}年{alliance.name}年会 @{alliance.id}\n"
            "（在年会安排好之前，每周一提醒一次。）"
        )
        for user_id in recipients:
            await runtime.outbox.notify_user(
                user_id, text, dedupe_key=f"duty:annual:{alliance.id}:{week}:{user_id}"
            )
        reminded.append(alliance.id)
    return f"reminded {', '.join(reminded)}" if reminded else "every alliance has its annual meeting"


async def check_lead_rotation(runtime: Runtime, now: datetime) -> str:
    """Tell admins, once per term, when a lead unit's three-year term ends within 60 days (or has ended)."""
    today = now.astimezone(runtime.settings.tz).date()
    repo = runtime.feature(ActivityService).repo
    admins = await admins_of(runtime)
    told: list[str] = []
    for alliance in await runtime.store.alliances.all():
        if alliance.lead_since is None:
            continue
        ends = term_end(alliance.lead_since)
        if today < ends - ROTATION_NOTICE:
            continue
        if not admins:
            log.warning("lead term of %s ends %s but no admin is configured", alliance.id, ends)
            continue
        if not await repo.record_duty(
            kind="lead_rotation", alliance_id=alliance.id, period=ends.isoformat(), at=now
        ):
            continue
        text = _rotation_text(alliance, ends, today)
        for user_id in admins:
            await runtime.outbox.notify_user(
                user_id, text, dedupe_key=f"duty:rotation:{alliance.id}:{ends.isoformat()}:{user_id}"
            )
        told.append(alliance.id)
    return f"told admins about {', '.join(told)}" if told else "no lead term ends within 60 days"


def _rotation_text(alliance: Alliance, ends: date, today: date) -> str:
    assert alliance.lead_since is not None
    lead = f"（现牵头单位负责人：{alliance.lead_name}）" if alliance.lead_name else ""
    days = (ends - today).days
    when = f"将于 {cn_date(ends)} 届满，还有 {days} 天" if days > 0 else f"已于 {cn_date(ends)} 届满"
    return (
        f"【牵头单位轮换提醒】{alliance.name}牵头单位{lead}自 {cn_date(alliance.lead_since)} 起任期 {TERM_YEARS} 年，"
        f"{when}。\n请按章程组织轮换，确定新的牵头单位后，在花名册中更新该联盟的 lead 和 lead_since 并重新导入。"
    )


@dataclass(slots=True, frozen=True)
class ProblemNumbers:
    """Problem counts for the digest."""

    logged: int
    solved: int
    open: int


async def problem_numbers(
    runtime: Runtime, *, alliance_id: str, since: datetime, until: datetime
) -> ProblemNumbers | None:
    """Problem counts through the problems feature's ``ProblemRepo.stats``; None if they cannot be read."""
    try:
        stats = await ProblemRepo(runtime.store.sessions).stats(
            alliance_id=alliance_id, since=since, until=until
        )
        return ProblemNumbers(logged=stats.logged, solved=stats.solved, open=stats.open)
    except Exception:  # the digest still goes out with its activities if the problem numbers fail
        log.exception("problem statistics for the digest of %s failed", alliance_id)
        return None


async def weekly_digest(runtime: Runtime, now: datetime) -> str:
    """Each alliance group: last week's problems (logged, solved), open problems, activities in the next 14 days."""
    tz = runtime.settings.tz
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    week_start = datetime.combine(monday - timedelta(days=7), time(), tzinfo=tz)
    week_end = datetime.combine(monday, time(), tzinfo=tz)
    service = runtime.feature(ActivityService)
    sent = 0
    for alliance in await runtime.store.alliances.all():
        text = await digest_text(
            runtime, service, alliance, now=now, week_start=week_start, week_end=week_end
        )
        sent += await runtime.outbox.announce(
            alliance.id, text, dedupe_key=f"digest:{alliance.id}:{monday.isoformat()}"
        )
    return f"queued {sent} digest messages"


async def digest_text(
    runtime: Runtime,
    service: ActivityService,
    alliance: Alliance,
    *,
    now: datetime,
    week_start: datetime,
    week_end: datetime,
) -> str:
    """One alliance's weekly digest."""
    last_day = (week_end - timedelta(days=1)).date()
    lines = [
        f"【{alliance.name}周报】{week_start.month}月{week_start.day}日—{last_day.month}月{last_day.day}日",
    ]
    numbers = await problem_numbers(runtime, alliance_id=alliance.id, since=week_start, until=week_end)
    if numbers is None:
        lines.append("问题：问题统计暂不可用。")
    else:
        lines.append(
            f"问题：上周新登记 {numbers.logged} 个，解决 {numbers.solved} 个；目前仍未解决 {numbers.open} 个。"
        )
    activities = await service.repo.upcoming(now, alliance_id=alliance.id, until=now + DIGEST_EVENTS_AHEAD)
    if activities:
        counts = await service.repo.going_counts(e.id for e in activities if e.id is not None)
        lines.append(f"未来 14 天的活动（{len(activities)} 项）：")
        for activity in activities:
            assert activity.id is not None
            start = activity.start.astimezone(runtime.settings.tz)
            seats = (
                f"{counts.get(activity.id, 0)}/{activity.capacity}"
                if activity.capacity
                else str(counts.get(activity.id, 0))
            )
            lines.append(
                f"· {start.month}月{start.day}日（星期{WEEKDAYS[start.weekday()]}）{start:%H:%M} "
                f"{type_label(activity.type)}「{activity.title}」#{activity.id}，已报名 {seats} 人"
            )
        lines.append("发送 /报名 编号 报名，/活动 编号 查看详情。")
    else:
        lines.append("未来 14 天没有安排活动。")
    return "\n".join(lines)
