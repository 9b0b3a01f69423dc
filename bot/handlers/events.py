"""Events: ``/event`` (add, details, move, cancel), ``/events``, ``/join`` and ``/leave``; the feature's setup.

``setup`` registers the router, the ``EventService``, the reminder sweep and the charter-duty jobs, and the
iCalendar routes. The date phrases are read by ``bot.timeparse`` in ``BOT_TIMEZONE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.dispatcher import Caller, Context, Role, Router, UsageError, UserError
from bot.duties import check_annual_meetings, check_lead_rotation, weekly_digest
from bot.event_service import ALL_ALLIANCES, SWEEP_JOB, EventService, type_label
from bot.event_types import TYPE_NAMES, EventType, offset_label
from bot.middleware import dedupe_key
from bot.services import Services
from bot.store.events import AttendeeStatus, CalendarEvent, EventReminder
from bot.store.models import Alliance
from bot.timeparse import WhenError, format_when, parse_when, split_when

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("活动")

MAX_CAPACITY = 10_000
EVENT_USAGE = (
    "/活动 添加 类型 时间 标题 [@联盟] [地点 地点] [名额 人数]，"
    "例如 /活动 添加 讲座 下周三下午3点 盾构施工新技术 @隧道 地点 郑州会议中心 名额 50；"
    "/活动 编号 查看详情；/活动 改期 编号 新时间；/活动 取消 编号 [原因]。"
    f"类型：{TYPE_NAMES}"
)
_SUBCOMMANDS = {
    "add": "add",
    "new": "add",
    "添加": "add",
    "新增": "add",
    "发布": "add",
    "cancel": "cancel",
    "取消": "cancel",
    "move": "move",
    "reschedule": "move",
    "改期": "move",
    "改时间": "move",
    "list": "list",
    "列表": "list",
}


def _not_topic(args: str) -> bool:
    # ``/join T-3`` belongs to research topics; ``/join 3`` to events
    return not args.strip().upper().startswith("T")


def service_of(ctx: Context) -> EventService:
    """The events service."""
    return ctx.services.feature(EventService)


# -- parsing ---------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class AddRequest:
    """``/event add`` arguments, before the time phrase is read."""

    type: EventType
    body: str  # WHEN TITLE
    alliance: str | None
    place: str | None
    capacity: int | None


_ALLIANCE_OPT = re.compile(r"(?:^|\s)@(\S+)")
_CAPACITY_OPT = re.compile(
    r"(?:^|\s)(?:名额|限额|人数|capacity|cap)\s*:?\s*(\d+)\s*人?(?=\s|$)", re.IGNORECASE
)
_PLACE_OPT = re.compile(r"(?:^|\s)(?:地点|place)\s*:?\s*(.*)$", re.IGNORECASE)


def parse_add(args: str) -> AddRequest:
    """Split ``TYPE WHEN TITLE [@ALLIANCE] [地点 PLACE] [名额 N]``; raises ``UsageError``."""
    word, _, body = args.strip().partition(" ")
    if not word:
        raise UsageError("请写明活动类型、时间和标题。")
    try:
        kind = EventType.parse(word)
    except ValueError:
        raise UsageError(f"不认识的活动类型「{word}」，可用：{TYPE_NAMES}。") from None
    alliance = None
    match = _ALLIANCE_OPT.search(body)
    if match:
        alliance = match.group(1)
        body = body[: match.start()] + " " + body[match.end() :]
    capacity = None
    match = _CAPACITY_OPT.search(body)
    if match:
        capacity = int(match.group(1))
        body = body[: match.start()] + " " + body[match.end() :]
    place = None
    match = _PLACE_OPT.search(body)
    if match:
        place = match.group(1).strip()
        body = body[: match.start()]
        if not place:
            raise UsageError("「地点」后面请写上地点。")
    if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
        raise UsageError(f"名额应在 1 到 {MAX_CAPACITY} 之间。")
    return AddRequest(kind, " ".join(body.split()), alliance, place, capacity)


def parse_event_id(text: str) -> int:
    """``3`` or ``#3`` → 3; raises ``UsageError``."""
    word = text.strip().split(" ", 1)[0].lstrip("#")
    if not word.isdigit() or len(word) > 9:
        raise UsageError("请写活动编号（数字），例如 3。发送 /活动列表 查看编号。")
    return int(word)


def short_when(when: datetime) -> str:
    """``11月25日 15:00``."""
    return f"{when.month}月{when.day}日 {when:%H:%M}"


async def resolve_alliance(ctx: Context, word: str) -> Alliance | None:
    """``@隧道`` → the alliance; ``全体``/``all`` → None (joint event); raises ``UserError`` when unknown."""
    if word.lower() in ("all", "全体", "全体联盟", "全部"):
        return None
    alliance = await ctx.services.store.alliances.find(word)
    if alliance is None:
        names = "、".join(a.name for a in await ctx.services.store.alliances.all())
        raise UserError(f"没有找到联盟「{word}」。现有联盟：{names}")
    return alliance


def may_manage(caller: Caller, event: CalendarEvent) -> bool:
    """Admins, the organiser, and leads of the event's alliance may change an event."""
    if caller.role >= Role.ADMIN or caller.user_id == event.organizer:
        return True
    return caller.role >= Role.ALLIANCE_LEAD and event.alliance_id in caller.alliances


def _need_lead(ctx: Context, sub: str) -> None:
    if not ctx.caller.at_least(Role.ALLIANCE_LEAD):
        raise UserError(
            f"抱歉，/{ctx.command_word} {sub} 需要「{Role.ALLIANCE_LEAD.label}」及以上权限，"
            f"您当前是「{ctx.caller.role.label}」。"
        )


async def _event_or_error(ctx: Context, event_id: int) -> CalendarEvent:
    event = await service_of(ctx).repo.get(event_id)
    if event is None:
        raise UserError(f"没有编号为 {event_id} 的活动。发送 /活动列表 查看近期活动。")
    return event


async def display_names(ctx: Context, user_ids: list[str]) -> dict[str, str]:
    """Names for user ids, from the roster (studio and alliance leads) and members; the id otherwise."""
    store = ctx.services.store
    names: dict[str, str] = {}
    for alliance in await store.alliances.all():
        if alliance.lead_userid and alliance.lead_name:
            names[alliance.lead_userid] = alliance.lead_name
    for studio in await store.studios.all():
        names.setdefault(studio.lead_userid, studio.lead_name)
    for user_id in user_ids:
        if user_id not in names:
            member = await store.members.get(user_id)
            if member is not None and member.name:
                names[user_id] = member.name
    return {u: names.get(u, u) for u in user_ids}


def calendar_base(ctx: Context) -> str:
    """Where the calendar feeds are served (``BOT_PUBLIC_URL`` or ``http://HOST:PORT``)."""
    settings = ctx.services.settings
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


# -- commands --------------------------------------------------------------------------------------


@router.command("event", "活动", summary="活动：查看详情、添加、改期、取消", usage=EVENT_USAGE)
async def handle_event(ctx: Context) -> str:
    """``/event`` with a sub-command (add, cancel, move, list) or an event number."""
    word, _, rest = ctx.args.strip().partition(" ")
    if not word:
        return await _listing(ctx, "")
    sub = _SUBCOMMANDS.get(word.lower())
    if sub == "add":
        return await _add(ctx, rest)
    if sub == "cancel":
        return await _cancel(ctx, rest)
    if sub == "move":
        return await _move(ctx, rest)
    if sub == "list":
        return await _listing(ctx, rest)
    if word.lstrip("#").isdigit():
        return await _details(ctx, parse_event_id(word))
    raise UsageError(f"不认识的子命令「{word}」。")


@router.command(
    "events",
    "活动列表",
    "近期活动",
    summary="查看近期活动（可按联盟筛选）",
    usage="/活动列表 [联盟]，例如 /活动列表 隧道",
)
async def handle_events(ctx: Context) -> str:
    """Upcoming events, optionally of one alliance."""
    return await _listing(ctx, ctx.args)


@router.command(
    "join",
    "报名",
    summary="报名参加活动（名额满时进入候补）",
    usage="/报名 活动编号，例如 /报名 3",
    accepts=_not_topic,
)
async def handle_join(ctx: Context) -> str:
    """Take a seat, or a waiting-list place."""
    if not ctx.args.strip():
        raise UsageError()
    event = await _event_or_error(ctx, parse_event_id(ctx.args))
    service = service_of(ctx)
    if event.cancelled:
        raise UserError(f"活动 #{event.id}「{event.title}」已取消，无法报名。")
    if event.start <= ctx.services.clock.now():
        raise UserError(f"活动 #{event.id}「{event.title}」已经开始或结束，无法报名。")
    result = await service.join(event, ctx.caller.user_id)
    what = f"{type_label(event.type)}「{event.title}」（#{event.id}）"
    when = format_when(service.local(event.start))
    if result.status == AttendeeStatus.GOING:
        if result.already:
            return f"您已经报名了{what}，时间 {when}。"
        offsets = "、".join(offset_label(o) for o in service.plan(event.type).attendee)
        return (
            f"报名成功：{what}\n时间：{when}"
            + (f"\n地点：{event.place}" if event.place else "")
            + (f"\n开始前{offsets}会私信提醒您；如不能参加，请发送 /取消报名 {event.id}。")
        )
    if result.already:
        return f"您已在{what}的候补名单上，排第 {result.position} 位。"
    return (
        f"{what}的名额（{event.capacity} 人）已满，您已进入候补名单，排第 {result.position} 位。"
        "有人取消报名时会自动递补并私信通知您。"
    )


@router.command(
    "leave",
    "取消报名",
    "退出活动",
    summary="取消活动报名（候补会自动递补）",
    usage="/取消报名 活动编号，例如 /取消报名 3",
    accepts=_not_topic,
)
async def handle_leave(ctx: Context) -> str:
    """Give up a seat or a waiting-list place."""
    if not ctx.args.strip():
        raise UsageError()
    event = await _event_or_error(ctx, parse_event_id(ctx.args))
    result = await service_of(ctx).leave(event, ctx.caller.user_id)
    what = f"{type_label(event.type)}「{event.title}」（#{event.id}）"
    if not result.left:
        return f"您没有报名{what}。"
    text = f"已取消报名{what}。" if result.was_going else f"已退出{what}的候补名单。"
    if result.promoted is not None:
        text += "空出的名额已由候补第一位递补。"
    return text


# -- sub-commands ----------------------------------------------------------------------------------


async def _add(ctx: Context, args: str) -> str:
    _need_lead(ctx, "添加")
    request = parse_add(args)
    service = service_of(ctx)
    alliance: Alliance | None
    if request.alliance is not None:
        alliance = await resolve_alliance(ctx, request.alliance)
        if not ctx.caller.at_least(Role.ADMIN) and (
            alliance is None or alliance.id not in ctx.caller.alliances
        ):
            raise UserError("您只能为自己牵头的联盟添加活动；全体联盟的活动请联系管理员添加。")
    elif ctx.caller.at_least(Role.ADMIN):
        alliance = None
    elif len(ctx.caller.alliances) == 1:
        alliance = await ctx.services.store.alliances.get(ctx.caller.alliances[0])
    else:
        raise UsageError("您牵头多个联盟，请用 @联盟 指明是哪个联盟的活动。")
    if not request.body:
        raise UsageError("请写上活动时间和标题。")
    try:
        when = split_when(request.body, now=ctx.services.local_now())
    except WhenError as exc:
        raise UserError(f"{exc}\n完整写法：/活动 添加 讲座 下周三下午3点 标题") from None
    title = when.rest.strip()
    if not title:
        raise UsageError("请在时间后面写上活动标题。")
    if len(title) > 200 or (request.place is not None and len(request.place) > 200):
        raise UsageError("标题和地点请各不超过 200 字。")
    event = CalendarEvent(
        type=request.type.value,
        title=title,
        alliance_id=alliance.id if alliance else None,
        start=when.start,
        place=request.place,
        capacity=request.capacity,
        organizer=ctx.caller.user_id,
        message_key=dedupe_key(ctx.event),
    )
    event, reminders = await service.create(event)
    lines = [
        f"已添加活动 #{event.id}：{type_label(event.type)}「{event.title}」",
        f"时间：{format_when(service.local(event.start))}"
        + ("（未写具体时刻，按 9:00 安排）" if not when.has_time else ""),
        f"联盟：{alliance.name if alliance else ALL_ALLIANCES}",
    ]
    if event.place:
        lines.append(f"地点：{event.place}")
    lines.append(f"名额：{event.capacity} 人" if event.capacity else "名额：不限")
    lines.append(_reminder_summary(service, event, reminders))
    lines.append(
        f"请核对时间；如有误，发送 /活动 改期 {event.id} 正确时间。已通知联盟群，成员发送 /报名 {event.id} 即可报名。"
    )
    return "\n".join(lines)


def _reminder_summary(service: EventService, event: CalendarEvent, reminders: list[EventReminder]) -> str:
    group_times = sorted({r.due for r in reminders if r.kind.startswith("group:")})
    attendee = "、".join(offset_label(o) for o in service.plan(event.type).attendee)
    if group_times:
        times = "、".join(short_when(service.local(t)) for t in group_times)
        return f"提醒：{times} 发到联盟群；报名者在开始前{attendee}收到私信提醒。"
    return f"提醒：活动临近，不再发群提醒；报名者在开始前{attendee}收到私信提醒（如时间未过）。"


async def _cancel(ctx: Context, args: str) -> str:
    _need_lead(ctx, "取消")
    if not args.strip():
        raise UsageError("请写要取消的活动编号。")
    event_id = parse_event_id(args)
    reason = args.strip().partition(" ")[2].strip()
    event = await _event_or_error(ctx, event_id)
    if not may_manage(ctx.caller, event):
        raise UserError("只有活动的发布者、该联盟负责人或管理员可以取消这个活动。")
    if event.cancelled:
        return f"活动 #{event.id}「{event.title}」已经取消过了。"
    if event.start <= ctx.services.clock.now():
        raise UserError(f"活动 #{event.id}「{event.title}」已经开始或结束，不能再取消。")
    cancelled = await service_of(ctx).cancel(event_id, reason)
    if cancelled is None:
        return f"活动 #{event.id} 已经取消过了。"
    roll = await service_of(ctx).repo.roll(event_id)
    told = len(roll.going) + len(roll.waiting)
    return f"已取消活动 #{event.id}「{event.title}」，已通知联盟群和 {told} 位报名者。"


async def _move(ctx: Context, args: str) -> str:
    _need_lead(ctx, "改期")
    event_id_text, _, phrase = args.strip().partition(" ")
    if not event_id_text or not phrase.strip():
        raise UsageError("请写活动编号和新时间，例如 /活动 改期 3 12月8日 14:00。")
    event = await _event_or_error(ctx, parse_event_id(event_id_text))
    if not may_manage(ctx.caller, event):
        raise UserError("只有活动的发布者、该联盟负责人或管理员可以改期这个活动。")
    if event.cancelled:
        raise UserError(f"活动 #{event.id} 已取消，不能改期；请重新添加。")
    service = service_of(ctx)
    try:
        start = parse_when(phrase, now=ctx.services.local_now())
    except WhenError as exc:
        raise UserError(str(exc)) from None
    if start == event.start:
        return f"新时间与原时间相同（{format_when(service.local(start))}），没有改动。"
    assert event.id is not None
    moved = await service.move(event.id, start)
    if moved is None:
        raise UserError(f"活动 #{event.id} 已取消，不能改期。")
    old, event = moved
    assert event.id is not None
    reminders = [r for r in await service.repo.reminders_of(event.id) if r.sequence == event.sequence]
    roll = await service.repo.roll(event.id)
    return "\n".join(
        [
            f"已将活动 #{event.id}「{event.title}」改期：",
            f"原定：{format_when(service.local(old))}",
            f"改为：{format_when(service.local(event.start))}",
            _reminder_summary(service, event, reminders),
            f"已通知联盟群和 {len(roll.going) + len(roll.waiting)} 位报名者。",
        ]
    )


async def _listing(ctx: Context, args: str) -> str:
    service = service_of(ctx)
    alliance = None
    if args.strip():
        alliance = await resolve_alliance(ctx, args.strip())
    events = await service.repo.upcoming(
        ctx.services.clock.now(), alliance_id=alliance.id if alliance else None, limit=30
    )
    scope = f"（{alliance.name}）" if alliance else ""
    if not events:
        return f"近期没有安排活动{scope}。联盟负责人可发送 /活动 添加 … 发布活动。"
    names = {a.id: a.name for a in await ctx.services.store.alliances.all()}
    counts = await service.repo.going_counts(e.id for e in events if e.id is not None)
    lines = [f"近期活动{scope}："]
    for event in events:
        assert event.id is not None
        going = counts.get(event.id, 0)
        seats = f"{going}/{event.capacity}" if event.capacity else f"{going}"
        lines.append(
            f"#{event.id} {format_when(service.local(event.start))} {type_label(event.type)}「{event.title}」"
            f"· {names.get(event.alliance_id or '', ALL_ALLIANCES)} · 已报名 {seats}"
        )
    lines.append("发送 /活动 编号 查看详情，/报名 编号 报名。")
    return "\n".join(lines)


async def _details(ctx: Context, event_id: int) -> str:
    service = service_of(ctx)
    event = await _event_or_error(ctx, event_id)
    roll = await service.repo.roll(event_id)
    names = await display_names(
        ctx, [event.organizer, *(a.user_id for a in roll.going), *(a.user_id for a in roll.waiting)]
    )
    alliance = await ctx.services.store.alliances.get(event.alliance_id) if event.alliance_id else None
    status = "（已取消）" if event.cancelled else ""
    if not event.cancelled and event.start <= ctx.services.clock.now():
        status = "（已开始或结束）"
    base = calendar_base(ctx)
    lines = [
        f"#{event.id} {type_label(event.type)}「{event.title}」{status}",
        f"时间：{format_when(service.local(event.start))}",
        f"联盟：{alliance.name if alliance else ALL_ALLIANCES}",
    ]
    if event.place:
        lines.append(f"地点：{event.place}")
    lines.append(f"发布者：{names[event.organizer]}")
    if event.cancelled and event.note:
        lines.append(f"取消原因：{event.note}")
    capacity = f"/{event.capacity}" if event.capacity else ""
    going = "、".join(names[a.user_id] for a in roll.going) or "暂无"
    lines.append(f"已报名（{len(roll.going)}{capacity}）：{going}")
    if roll.waiting:
        lines.append(
            f"候补（{len(roll.waiting)}）："
            + "、".join(f"{i}. {names[a.user_id]}" for i, a in enumerate(roll.waiting, start=1))
        )
    lines.append(f"日历：{base}/calendar/event/{event.id}.ics")
    feed = f"{base}/calendar/{event.alliance_id}.ics" if event.alliance_id else f"{base}/calendar.ics"
    lines.append(f"订阅联盟日历：{feed}")
    if not status:
        lines.append(f"发送 /报名 {event.id} 报名，/取消报名 {event.id} 取消。")
    return "\n".join(lines)


# -- /jobs note and set-up -------------------------------------------------------------------------


async def next_reminders_note(services: Services, *, limit: int = 5) -> str | None:
    """``接下来的提醒：…`` for ``/jobs``: the next pending reminders."""
    service = services.feature(EventService)
    pending = await service.repo.pending_reminders(limit=limit)
    if not pending:
        return "接下来的提醒：无"
    titles: dict[int, str] = {}
    for reminder in pending:
        if reminder.event_id not in titles:
            event = await service.repo.get(reminder.event_id)
            titles[reminder.event_id] = event.title if event else "?"
    names = {a.id: a.name for a in await services.store.alliances.all()}
    lines = ["接下来的提醒："]
    for reminder in pending:
        kind, _, address = reminder.target.partition(":")
        to = f"{names.get(address, address)}群" if kind == "alliance" else f"{address}（私信）"
        lines.append(
            f"· {service.local(reminder.due):%m-%d %H:%M} #{reminder.event_id}「{titles[reminder.event_id]}」→ {to}"
        )
    return "\n".join(lines)


async def _sweep_job(services: Services, now: datetime) -> str:
    return str(await services.feature(EventService).sweep(now))


async def setup(bot: BotApp) -> None:
    """Register the events feature: commands, service, jobs, calendar routes."""
    from bot.ical import add_routes

    service = EventService(bot.services, scheduler=bot.scheduler, jobs=bot.jobs)
    bot.services.add_feature(service)
    bot.add_router(router)
    tz = bot.settings.tz
    bot.jobs.add(
        SWEEP_JOB,
        IntervalTrigger(seconds=30, timezone=tz),
        _sweep_job,
        description="发送到期的活动提醒（按最早到期时间准时唤醒，另每 30 秒检查一次）",
        exclusive=False,
    )
    bot.jobs.add(
        "duty-annual-meeting",
        CronTrigger(day_of_week="mon", hour=9, minute=0, timezone=tz),
        check_annual_meetings,
        description="年会检查：10月1日起，本年度未安排年会的联盟每周一提醒负责人和管理员",
    )
    bot.jobs.add(
        "duty-lead-rotation",
        CronTrigger(hour=9, minute=5, timezone=tz),
        check_lead_rotation,
        description="牵头单位轮换：三年任期届满前 60 天提醒管理员",
    )
    bot.jobs.add(
        "weekly-digest",
        CronTrigger(day_of_week="mon", hour=9, minute=0, timezone=tz),
        weekly_digest,
        description="联盟周报：每周一 9:00 向各联盟群发送上周问题和未来 14 天活动",
    )
    bot.jobs.notes.append(lambda: next_reminders_note(bot.services))
    bot.web_setups.append(add_routes)

    def on_start(_event: SchedulerEvent) -> None:
        # rebuild the schedule from the database: one date job for the earliest pending reminder (a reminder
        # that fell due while the bot was down fires at once, or is dropped if its event already started)
        bot.spawn(service.arm(), name="arm-reminders")

    bot.scheduler.add_listener(on_start, EVENT_SCHEDULER_STARTED)
