"""Activities: ``/event`` (add, details, move, cancel), ``/events``, ``/join`` and ``/leave``; the feature's setup.

``setup`` registers the router, the ``ActivityService``, the reminder sweep and the charter-duty jobs, and the
iCalendar routes. The date phrases are read by ``bot.services.activities.dates`` in ``BOT_TIMEZONE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.dispatcher import Caller, Context, Role, Router, UsageError, UserError, first_word, fold
from bot.core.middleware import dedupe_key
from bot.core.runtime import Runtime
from bot.services.activities.dates import WhenError, format_when, read_when, split_when
from bot.services.activities.duties import check_annual_meetings, check_lead_rotation, weekly_digest
from bot.services.activities.service import ALL_ALLIANCES, SWEEP_JOB, ActivityService, type_label
from bot.services.activities.types import TYPE_NAMES, ActivityType, offset_label
from bot.services.studios import display_names, roster_names
from bot.store.activities import Activity, ActivityAudience, ActivityReminder, AttendeeStatus
from bot.store.studios import Alliance

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("活动")

MAX_CAPACITY = 10_000
EVENT_USAGE = (
    "/活动 添加 类型 时间 标题 [@联盟] [地点 地点] [名额 人数] [对象 全体|负责人] [邀请 账号或姓名,…]，"
    "例如 /活动 添加 讲座 下周三下午3点 盾构施工新技术 @隧道 地点 郑州会议中心 名额 50；"
    "负责人会议加「对象 负责人」，只请部分人加「邀请 陈掘进,shibaopo」；"
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
    # ``/join T-3`` belongs to research topics; ``/join 3`` to activities
    return not args.strip().upper().startswith("T")


def service_of(ctx: Context) -> ActivityService:
    """The activities service."""
    return ctx.runtime.feature(ActivityService)


# -- parsing ---------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class AddRequest:
    """``/event add`` arguments, before the time phrase is read."""

    type: ActivityType
    body: str  # WHEN TITLE
    alliance: str | None
    place: str | None
    capacity: int | None
    audience: ActivityAudience = ActivityAudience.ALL
    invited: tuple[str, ...] = ()


_ALLIANCE_OPT = re.compile(r"(?:^|\s)[@＠](\S+)")
_CAPACITY_OPT = re.compile(
    r"(?:^|\s)(?:名额|限额|人数|capacity|cap)\s*[:：]?\s*(\d+)\s*人?(?=\s|$)", re.IGNORECASE
)
_AUDIENCE_OPT = re.compile(r"(?:^|\s)(?:对象|范围|audience)(?:\s*[:：]\s*|\s+)(\S+)", re.IGNORECASE)
_INVITE_OPT = re.compile(r"(?:^|\s)(?:邀请|invite)(?:\s*[:：]\s*|\s+)(\S+)", re.IGNORECASE)
_AUDIENCE_WORDS = {
    "全体": ActivityAudience.ALL,
    "全员": ActivityAudience.ALL,
    "所有人": ActivityAudience.ALL,
    "all": ActivityAudience.ALL,
    "负责人": ActivityAudience.LEADS,
    "仅负责人": ActivityAudience.LEADS,
    "leads": ActivityAudience.LEADS,
    "邀请": ActivityAudience.INVITED,
    "受邀": ActivityAudience.INVITED,
    "invited": ActivityAudience.INVITED,
}
_LIST_SEPARATORS = re.compile(r"[,，、;；]+")
_PLACE_OPT = re.compile(r"(?:^|\s)(?:地点|place)\s*[:：]?\s*(.*)$", re.IGNORECASE)


def parse_add(args: str) -> AddRequest:
    """Split ``TYPE WHEN TITLE [@ALLIANCE] [地点 PLACE] [名额 N]``; raises ``UsageError``."""
    word, body = first_word(args)
    if not word:
        raise UsageError("请写明活动类型、时间和标题。")
    try:
        kind = ActivityType.parse(word)
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
    invited: tuple[str, ...] = ()
    match = _INVITE_OPT.search(body)
    if match:
        invited = tuple(w for w in _LIST_SEPARATORS.split(match.group(1)) if w)
        body = body[: match.start()] + " " + body[match.end() :]
    audience = ActivityAudience.INVITED if invited else ActivityAudience.ALL
    match = _AUDIENCE_OPT.search(body)
    if match:
        word = fold(match.group(1)).lower()
        if word not in _AUDIENCE_WORDS:
            raise UsageError(f"「对象」请写 全体 或 负责人（只请部分人时用「邀请 姓名,…」），「{match.group(1)}」看不懂。")
        audience = _AUDIENCE_WORDS[word]
        body = body[: match.start()] + " " + body[match.end() :]
    if audience == ActivityAudience.INVITED and not invited:
        raise UsageError("只请部分人参加时，请用「邀请 姓名或账号,…」写明邀请谁，例如 邀请 陈掘进,shibaopo。")
    place = None
    match = _PLACE_OPT.search(body)
    if match:
        place = match.group(1).strip()
        body = body[: match.start()]
        if not place:
            raise UsageError("「地点」后面请写上地点。")
    if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
        raise UsageError(f"名额应在 1 到 {MAX_CAPACITY} 之间。")
    return AddRequest(kind, " ".join(body.split()), alliance, place, capacity, audience, invited)


def parse_activity_id(text: str) -> int:
    """``3`` or ``#3`` → 3; raises ``UsageError``."""
    word = first_word(text)[0].lstrip("#")
    if not word.isdigit() or len(word) > 9:
        raise UsageError("请写活动编号（数字），例如 3。发送 /活动列表 查看编号。")
    return int(word)


def short_when(when: datetime) -> str:
    """``11月25日 15:00``."""
    return f"{when.month}月{when.day}日 {when:%H:%M}"


async def resolve_alliance(ctx: Context, word: str) -> Alliance | None:
    """``@隧道`` → the alliance; ``全体``/``all`` → None (joint activity); raises ``UserError`` when unknown."""
    if word.lower() in ("all", "全体", "全体联盟", "全部"):
        return None
    alliance = await ctx.runtime.store.alliances.find(word)
    if alliance is None:
        names = "、".join(a.name for a in await ctx.runtime.store.alliances.all())
        raise UserError(f"没有找到联盟「{word}」。现有联盟：{names}")
    return alliance


def may_manage(caller: Caller, activity: Activity) -> bool:
    """Admins, the organiser, and leads of the activity's alliance may change an activity."""
    if caller.role >= Role.ADMIN or caller.user_id == activity.organizer:
        return True
    return caller.role >= Role.ALLIANCE_LEAD and activity.alliance_id in caller.alliances


def _need_lead(ctx: Context, sub: str) -> None:
    if not ctx.caller.at_least(Role.ALLIANCE_LEAD):
        raise UserError(
            f"抱歉，/{ctx.command_word} {sub} 需要「{Role.ALLIANCE_LEAD.label}」及以上权限，"
            f"您当前是「{ctx.caller.role.label}」。"
        )


async def _activity_or_error(ctx: Context, activity_id: int) -> Activity:
    activity = await service_of(ctx).repo.get(activity_id)
    if activity is None:
        raise UserError(f"没有编号为 {activity_id} 的活动。发送 /活动列表 查看近期活动。")
    return activity


_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


async def resolve_people(ctx: Context, words: tuple[str, ...]) -> list[str]:
    """Accounts for invitees written as accounts, lead names from the roster, or a studio (its lead);
    raises ``UserError`` naming who could not be found."""
    store = ctx.runtime.store
    by_name = {name: user_id for user_id, name in (await roster_names(store)).items()}
    found: list[str] = []
    unknown: list[str] = []
    for word in words:
        folded = fold(word).lstrip("@")
        if folded in by_name:
            found.append(by_name[folded])
        elif (named := await store.studios.get(folded)) is not None:
            found.append(named.lead_userid)
        elif _ACCOUNT.match(folded):
            found.append(folded)
        else:
            unknown.append(word)
    if unknown:
        raise UserError(
            f"花名册里没有找到「{'、'.join(unknown)}」。请写企业微信账号（如 chenjuejin）或花名册里负责人的姓名。"
        )
    return list(dict.fromkeys(found))


def calendar_base(ctx: Context) -> str:
    """Where the calendar feeds are served (``BOT_PUBLIC_URL`` or ``http://HOST:PORT``)."""
    settings = ctx.runtime.settings
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


# -- commands --------------------------------------------------------------------------------------


@router.command("event", "活动", summary="活动：查看详情、添加、改期、取消", usage=EVENT_USAGE)
async def handle_event(ctx: Context) -> str:
    """``/event`` with a sub-command (add, cancel, move, list) or an activity number."""
    word, rest = first_word(ctx.args)
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
        return await _details(ctx, parse_activity_id(word))
    raise UsageError(f"不认识的子命令「{word}」。")


@router.command(
    "events",
    "活动列表",
    "近期活动",
    summary="查看近期活动（可按联盟筛选）",
    usage="/活动列表 [联盟]，例如 /活动列表 隧道",
)
async def handle_events(ctx: Context) -> str:
    """Upcoming activities, optionally of one alliance."""
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
    activity = await _activity_or_error(ctx, parse_activity_id(ctx.args))
    service = service_of(ctx)
    if activity.cancelled:
        raise UserError(f"活动 #{activity.id}「{activity.title}」已取消，无法报名。")
    if activity.start <= ctx.runtime.clock.now():
        raise UserError(f"活动 #{activity.id}「{activity.title}」已经开始或结束，无法报名。")
    if not await service.may_join(activity, ctx.caller.user_id, is_lead=ctx.caller.at_least(Role.STUDIO_LEAD)):
        raise UserError(
            f"活动 #{activity.id}「{activity.title}」面向{activity.for_whom.label}，您不在其中，无法报名。"
            "如需参加，请联系组织者。"
        )
    result = await service.join(activity, ctx.caller.user_id)
    what = f"{type_label(activity.type)}「{activity.title}」（#{activity.id}）"
    when = format_when(service.local(activity.start))
    if result.status == AttendeeStatus.GOING:
        if result.already:
            return f"您已经报名了{what}，时间 {when}。"
        offsets = "、".join(offset_label(o) for o in service.plan(activity.type).attendee)
        return (
            f"报名成功：{what}\n时间：{when}"
            + (f"\n地点：{activity.place}" if activity.place else "")
            + (f"\n开始前{offsets}会私信提醒您；如不能参加，请发送 /取消报名 {activity.id}。")
        )
    if result.already:
        return f"您已在{what}的候补名单上，排第 {result.position} 位。"
    return (
        f"{what}的名额（{activity.capacity} 人）已满，您已进入候补名单，排第 {result.position} 位。"
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
    activity = await _activity_or_error(ctx, parse_activity_id(ctx.args))
    result = await service_of(ctx).leave(activity, ctx.caller.user_id)
    what = f"{type_label(activity.type)}「{activity.title}」（#{activity.id}）"
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
        alliance = await ctx.runtime.store.alliances.get(ctx.caller.alliances[0])
    else:
        raise UsageError("您牵头多个联盟，请用 @联盟 指明是哪个联盟的活动。")
    if not request.body:
        raise UsageError("请写上活动时间和标题。")
    try:
        when = split_when(request.body, now=ctx.runtime.local_now())
    except WhenError as exc:
        raise UserError(f"{exc}\n完整写法：/活动 添加 讲座 下周三下午3点 标题") from None
    title = when.rest.strip()
    if not title:
        raise UsageError("请在时间后面写上活动标题。")
    if len(title) > 200 or (request.place is not None and len(request.place) > 200):
        raise UsageError("标题和地点请各不超过 200 字。")
    invited = await resolve_people(ctx, request.invited) if request.invited else []
    activity = Activity(
        type=request.type.value,
        title=title,
        alliance_id=alliance.id if alliance else None,
        start=when.start,
        ends_at=when.end,
        place=request.place,
        capacity=request.capacity,
        audience=request.audience.value,
        invited=invited,
        organizer=ctx.caller.user_id,
        message_key=dedupe_key(ctx.event),
    )
    activity, reminders = await service.create(activity)
    lines = [
        f"已添加活动 #{activity.id}：{type_label(activity.type)}「{activity.title}」",
        f"时间：{service.when_text(activity)}"
        + ("（未写具体时刻，按 9:00 安排）" if not when.has_time else "")
        + (f"（{when.defaulted}）" if when.defaulted else ""),
        f"联盟：{alliance.name if alliance else ALL_ALLIANCES}",
    ]
    audience = await service.audience_users(activity)
    if activity.for_whom != ActivityAudience.ALL:
        lines.append(f"对象：{activity.for_whom.label}（{len(audience)} 人，已逐一私信通知，不在群里公布）")
    if activity.place:
        lines.append(f"地点：{activity.place}")
    lines.append(f"名额：{activity.capacity} 人" if activity.capacity else "名额：不限")
    lines.append(_reminder_summary(service, activity, reminders))
    told = "已通知联盟群，成员" if activity.for_whom == ActivityAudience.ALL else "受邀者"
    lines.append(
        f"请核对时间；如有误，发送 /活动 改期 {activity.id} 正确时间。{told}发送 /报名 {activity.id} 即可报名。"
    )
    return "\n".join(lines)


def _reminder_summary(service: ActivityService, activity: Activity, reminders: list[ActivityReminder]) -> str:
    group_times = sorted({r.due for r in reminders if r.kind.startswith("group:")})
    attendee = "、".join(offset_label(o) for o in service.plan(activity.type).attendee)
    if group_times:
        times = "、".join(short_when(service.local(t)) for t in group_times)
        return f"提醒：{times} 发到联盟群；报名者在开始前{attendee}收到私信提醒。"
    return f"提醒：活动临近，不再发群提醒；报名者在开始前{attendee}收到私信提醒（如时间未过）。"


async def _cancel(ctx: Context, args: str) -> str:
    _need_lead(ctx, "取消")
    if not args.strip():
        raise UsageError("请写要取消的活动编号。")
    activity_id = parse_activity_id(args)
    reason = first_word(args)[1]
    activity = await _activity_or_error(ctx, activity_id)
    if not may_manage(ctx.caller, activity):
        raise UserError("只有活动的发布者、该联盟负责人或管理员可以取消这个活动。")
    if activity.cancelled:
        return f"活动 #{activity.id}「{activity.title}」已经取消过了。"
    if activity.start <= ctx.runtime.clock.now():
        raise UserError(f"活动 #{activity.id}「{activity.title}」已经开始或结束，不能再取消。")
    cancelled = await service_of(ctx).cancel(activity_id, reason)
    if cancelled is None:
        return f"活动 #{activity.id} 已经取消过了。"
    roll = await service_of(ctx).repo.roll(activity_id)
    told = len(roll.going) + len(roll.waiting)
    return f"已取消活动 #{activity.id}「{activity.title}」，已通知联盟群和 {told} 位报名者。"


async def _move(ctx: Context, args: str) -> str:
    _need_lead(ctx, "改期")
    activity_id_text, phrase = first_word(args)
    if not activity_id_text or not phrase.strip():
        raise UsageError("请写活动编号和新时间，例如 /活动 改期 3 12月8日 14:00。")
    activity = await _activity_or_error(ctx, parse_activity_id(activity_id_text))
    if not may_manage(ctx.caller, activity):
        raise UserError("只有活动的发布者、该联盟负责人或管理员可以改期这个活动。")
    if activity.cancelled:
        raise UserError(f"活动 #{activity.id} 已取消，不能改期；请重新添加。")
    service = service_of(ctx)
    try:
        when = read_when(phrase, now=ctx.runtime.local_now())
    except WhenError as exc:
        raise UserError(str(exc)) from None
    start = when.start
    if start == activity.start and when.end in (None, activity.ends_at):
        return f"新时间与原时间相同（{format_when(service.local(start))}），没有改动。"
    assert activity.id is not None
    moved = await service.move(activity.id, start, when.end)
    if moved is None:
        raise UserError(f"活动 #{activity.id} 已取消，不能改期。")
    old, activity = moved
    assert activity.id is not None
    reminders = [r for r in await service.repo.reminders_of(activity.id) if r.sequence == activity.sequence]
    roll = await service.repo.roll(activity.id)
    return "\n".join(
        [
            f"已将活动 #{activity.id}「{activity.title}」改期：",
            f"原定：{format_when(service.local(old))}",
            f"改为：{service.when_text(activity)}" + (f"（{when.defaulted}）" if when.defaulted else ""),
            _reminder_summary(service, activity, reminders),
            f"已通知联盟群和 {len(roll.going) + len(roll.waiting)} 位报名者。",
        ]
    )


async def _listing(ctx: Context, args: str) -> str:
    service = service_of(ctx)
    alliance = None
    if args.strip():
        alliance = await resolve_alliance(ctx, args.strip())
    activities = await service.repo.upcoming(
        ctx.runtime.clock.now(), alliance_id=alliance.id if alliance else None, limit=30
    )
    scope = f"（{alliance.name}）" if alliance else ""
    if not activities:
        return f"近期没有安排活动{scope}。联盟负责人可发送 /活动 添加 … 发布活动。"
    names = {a.id: a.name for a in await ctx.runtime.store.alliances.all()}
    counts = await service.repo.going_counts(e.id for e in activities if e.id is not None)
    lines = [f"近期活动{scope}："]
    for activity in activities:
        assert activity.id is not None
        going = counts.get(activity.id, 0)
        seats = f"{going}/{activity.capacity}" if activity.capacity else f"{going}"
        lines.append(
            f"#{activity.id} {format_when(service.local(activity.start))} {type_label(activity.type)}「{activity.title}」"
            f"· {names.get(activity.alliance_id or '', ALL_ALLIANCES)} · 已报名 {seats}"
        )
    lines.append("发送 /活动 编号 查看详情，/报名 编号 报名。")
    return "\n".join(lines)


async def _details(ctx: Context, activity_id: int) -> str:
    service = service_of(ctx)
    activity = await _activity_or_error(ctx, activity_id)
    roll = await service.repo.roll(activity_id)
    names = await display_names(
        ctx.runtime.store, [activity.organizer, *(a.user_id for a in roll.going), *(a.user_id for a in roll.waiting)]
    )
    alliance = await ctx.runtime.store.alliances.get(activity.alliance_id) if activity.alliance_id else None
    status = "（已取消）" if activity.cancelled else ""
    if not activity.cancelled and activity.start <= ctx.runtime.clock.now():
        status = "（已开始或结束）"
    base = calendar_base(ctx)
    lines = [
        f"#{activity.id} {type_label(activity.type)}「{activity.title}」{status}",
        f"时间：{service.when_text(activity)}",
        f"联盟：{alliance.name if alliance else ALL_ALLIANCES}",
    ]
    if activity.place:
        lines.append(f"地点：{activity.place}")
    if activity.for_whom != ActivityAudience.ALL:
        lines.append(f"对象：{activity.for_whom.label}")
    lines.append(f"发布者：{names[activity.organizer]}")
    if activity.cancelled and activity.note:
        lines.append(f"取消原因：{activity.note}")
    capacity = f"/{activity.capacity}" if activity.capacity else ""
    going = "、".join(names[a.user_id] for a in roll.going) or "暂无"
    lines.append(f"已报名（{len(roll.going)}{capacity}）：{going}")
    if roll.waiting:
        lines.append(
            f"候补（{len(roll.waiting)}）："
            + "、".join(f"{i}. {names[a.user_id]}" for i, a in enumerate(roll.waiting, start=1))
        )
    lines.append(f"日历：{base}/calendar/event/{activity.id}.ics")
    feed = f"{base}/calendar/{activity.alliance_id}.ics" if activity.alliance_id else f"{base}/calendar.ics"
    lines.append(f"订阅联盟日历：{feed}")
    if not status:
        lines.append(f"发送 /报名 {activity.id} 报名，/取消报名 {activity.id} 取消。")
    return "\n".join(lines)


# -- /jobs note and set-up -------------------------------------------------------------------------


async def next_reminders_note(runtime: Runtime, *, limit: int = 5) -> str | None:
    """``接下来的提醒：…`` for ``/jobs``: the next pending reminders."""
    service = runtime.feature(ActivityService)
    pending = await service.repo.pending_reminders(limit=limit)
    if not pending:
        return "接下来的提醒：无"
    titles: dict[int, str] = {}
    for reminder in pending:
        if reminder.activity_id not in titles:
            activity = await service.repo.get(reminder.activity_id)
            titles[reminder.activity_id] = activity.title if activity else "?"
    names = {a.id: a.name for a in await runtime.store.alliances.all()}
    lines = ["接下来的提醒："]
    for reminder in pending:
        kind, _, address = reminder.target.partition(":")
        to = f"{names.get(address, address)}群" if kind == "alliance" else f"{address}（私信）"
        lines.append(
            f"· {service.local(reminder.due):%m-%d %H:%M} #{reminder.activity_id}「{titles[reminder.activity_id]}」→ {to}"
        )
    return "\n".join(lines)


async def _sweep_job(runtime: Runtime, now: datetime) -> str:
    return str(await runtime.feature(ActivityService).sweep(now))


async def setup(bot: BotApp) -> None:
    """Register the activities feature: commands, service, jobs, calendar routes."""
    from bot.channels.calendar import add_routes

    service = ActivityService(bot.runtime, scheduler=bot.scheduler, jobs=bot.jobs)
    bot.runtime.add_feature(service)
    bot.add_router(router)
    tz = bot.settings.tz
    bot.jobs.add(
        SWEEP_JOB,
        IntervalTrigger(seconds=bot.settings.reminder_sweep_seconds, timezone=tz),
        _sweep_job,
        description=(
            f"发送到期的活动提醒（按最早到期时间准时唤醒，另每 {bot.settings.reminder_sweep_seconds} 秒检查一次）"
        ),
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
    bot.jobs.notes.append(lambda: next_reminders_note(bot.runtime))
    bot.web_setups.append(add_routes)

    def on_start(_event: SchedulerEvent) -> None:
        # rebuild the schedule from the database: one date job for the earliest pending reminder (a reminder
        # that fell due while the bot was down fires at once, or is dropped if its activity already started)
        bot.spawn(service.arm(), name="arm-reminders")

    bot.scheduler.add_listener(on_start, EVENT_SCHEDULER_STARTED)
