"""Evaluations (``/评选``): open a round, nominate, score, close; and the studios' "八有" checklist (``/八有``).
The studio record (``/工作室 T1 档案``) is answered here too, reached from the ``/studio`` command."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.cron import CronTrigger

from bot.core.dispatcher import Context, Role, Router, UsageError, UserError, first_word, fold
from bot.core.middleware import dedupe_key
from bot.services.achievements.amounts import parse_amount
from bot.services.activities.dates import WhenError, read_when
from bot.services.evaluations import (
    KIND_NAMES,
    STAR_WORDS,
    EvaluationService,
    Kind,
    criteria_text,
    panel_members,
    parse_criteria,
    round_label,
    sweep_evaluations,
)
from bot.services.records import EIGHT, RecordService, checklist_item
from bot.services.studios import display_names
from bot.store.evaluations import OPEN, ROSTER_ORIGIN

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("评选")

SWEEP_JOB = "evaluation-sweep"
EVALUATION_USAGE = (
    "/评选 查看全部评选；/评选 编号 查看详情；"
    "/评选 发起 类型 [联盟] 评委=甲,乙,丙 申报截止=12月10日 评分截止=12月20日 [标准=创新性:40,效益:30,推广价值:30] "
    "[名额=3] [奖金=20000] [入选线=60] [超范围]；"
    "/评选 申报 评选编号 工作室编号或成果编号 [五星]；/评选 评分 评选编号 申报号 分数…（按标准顺序）；"
    f"/评选 结束 评选编号。类型：{KIND_NAMES}"
)
_SUBCOMMANDS = {
    "发起": "open",
    "新建": "open",
    "open": "open",
    "申报": "nominate",
    "推荐": "nominate",
    "nominate": "nominate",
    "评分": "score",
    "打分": "score",
    "score": "score",
    "结束": "close",
    "截止": "close",
    "close": "close",
}
_STARS = {
    "三星": 3,
    "四星": 4,
    "五星": 5,
    "3星": 3,
    "4星": 4,
    "5星": 5,
    "三星级": 3,
    "四星级": 4,
    "五星级": 5,
}
_OVERRIDE = ("超范围", "override")


def service_of(ctx: Context) -> EvaluationService:
    """The evaluations service."""
    return ctx.runtime.feature(EvaluationService)


def message_key(ctx: Context, step: str) -> str | None:
    """The key of the causing message for one step (None for channels without message ids)."""
    key = dedupe_key(ctx.event)
    return f"{key}:{step}" if key else None


def _number(word: str, what: str) -> int:
    folded = fold(word).lstrip("#")
    if not folded.isdigit() or len(folded) > 9:
        raise UsageError(f"请写{what}（数字）。")
    return int(folded)


@router.command(
    "evaluation",
    "评选",
    "评鉴",
    summary="评选：星级工作室评定、优秀创新成果评选、优秀联盟成员（发起、申报、评分、结果）",
    usage=EVALUATION_USAGE,
)
async def handle_evaluation(ctx: Context) -> str:
    """``/评选`` with a sub-command or a round number."""
    word, rest = first_word(ctx.args)
    if not word:
        return await _list(ctx)
    sub = _SUBCOMMANDS.get(word.lower())
    if sub == "open":
        return await _open(ctx, rest)
    if sub == "nominate":
        return await _nominate(ctx, rest)
    if sub == "score":
        return await _score(ctx, rest)
    if sub == "close":
        return await _close(ctx, rest)
    if word.lstrip("#").isdigit() and len(word.lstrip("#")) <= 9:
        return await _details(ctx, int(word.lstrip("#")))
    raise UsageError(f"不认识的子命令「{word}」。")


async def _list(ctx: Context) -> str:
    service = service_of(ctx)
    rounds = await service.repo.rounds()
    if not rounds:
        return "还没有评选。管理员或联盟负责人可发送 /评选 发起 … 发起一轮评选（发送 /帮助 评选 查看用法）。"
    lines = [f"评选共 {len(rounds)} 轮："]
    for evaluation in rounds[:20]:
        state = "进行中" if evaluation.state == OPEN else "已结束"
        lines.append(
            f"· {round_label(evaluation)}（{state}，评分截止 {service.when(evaluation.score_until)}）"
        )
    lines.append("发送 /评选 编号 查看详情。")
    return "\n".join(lines)


def _deadline(text: str, now: datetime) -> datetime:
    try:
        match = read_when(text, now=now)
    except WhenError as exc:
        raise UserError(f"截止时间：{exc}") from None
    if not match.has_time:  # a date alone is the whole of that day
        return match.start.replace(hour=23, minute=59)
    return match.start


async def _open(ctx: Context, args: str) -> str:
    if not ctx.caller.at_least(Role.ALLIANCE_LEAD):
        raise UserError("只有管理员或联盟负责人可以发起评选。")
    word, rest = first_word(args)
    if not word:
        raise UsageError(f"请写明评选类型：{KIND_NAMES}。")
    try:
        kind = Kind.parse(word)
    except ValueError:
        raise UsageError(f"不认识的评选类型「{word}」，可用：{KIND_NAMES}。") from None
    now = ctx.runtime.local_now()
    store = ctx.runtime.store
    options: dict[str, str] = {}
    alliance_id: str | None = None
    override = False
    scope_given = False
    for token in rest.split():
        folded = fold(token)
        if "=" in folded:
            key, _, value = folded.partition("=")
            options[key.strip()] = value.strip()
        elif folded in _OVERRIDE:
            override = True
        elif folded in ("全部", "全联盟", "所有联盟"):
            scope_given = True
        else:
            alliance = await store.alliances.find(folded)
            if alliance is None:
                raise UserError(f"「{token}」看不懂：不是联盟，也不是 名称=值 的写法。")
            alliance_id, scope_given = alliance.id, True
    if not scope_given and not ctx.caller.at_least(Role.ADMIN) and len(ctx.caller.alliances) == 1:
        alliance_id = ctx.caller.alliances[0]
    known = {"评委", "评鉴团", "申报截止", "评分截止", "标准", "名额", "奖金", "金额", "入选线"}
    unknown = [k for k in options if k not in known]
    if unknown:
        raise UserError(f"不认识的设置「{'、'.join(unknown)}」。可用：{'、'.join(sorted(known))}。")
    for needed in ("申报截止", "评分截止"):
        if needed not in options:
            raise UsageError(f"请写明{needed}，例如 {needed}=12月20日。")
    panel = await panel_members(store, options.get("评委") or options.get("评鉴团") or "")
    amount_text = options.get("奖金") or options.get("金额")
    try:
        amount = parse_amount(amount_text) if amount_text else None
    except ValueError as exc:
        raise UserError(f"{exc}。") from None
    quota = _number(options["名额"], "名额") if "名额" in options else None
    passing = _number(options["入选线"], "入选线") if "入选线" in options else 60
    if quota is not None and quota < 1:
        raise UserError("名额至少为 1。")
    if passing > 100:
        raise UserError("入选线应在 0 到 100 分之间。")
    service = service_of(ctx)
    evaluation = await service.open(
        caller=ctx.caller,
        kind=kind,
        alliance_id=alliance_id,
        criteria=parse_criteria(options["标准"]) if "标准" in options else None,
        panel=panel,
        nominate_until=_deadline(options["申报截止"], now),
        score_until=_deadline(options["评分截止"], now),
        quota=quota,
        amount=amount,
        override=override,
        passing=passing,
        message_key=message_key(ctx, "evaluation-open"),
    )
    names = await service.names(evaluation.panel)
    scope = (await store.alliances.get(alliance_id)).name if alliance_id else "全部联盟"  # type: ignore[union-attr]
    lines = [
        f"已发起{round_label(evaluation)}（{scope}）",
        f"评分标准：{criteria_text(evaluation)}；入选线 {evaluation.passing} 分"
        + (f"，名额 {evaluation.quota}" if evaluation.quota else ""),
        f"评鉴团：{'、'.join(names[p] for p in evaluation.panel)}",
        f"申报截止：{service.when(evaluation.nominate_until)}；评分截止：{service.when(evaluation.score_until)}",
    ]
    if evaluation.amount:
        lines.append(
            f"奖励：每项 {evaluation.amount:,} 元{'（超出章程范围，管理员确认）' if evaluation.override else ''}"
        )
    lines.append("已通知各联盟群和评鉴团成员。")
    return "\n".join(lines)


async def _nominate(ctx: Context, args: str) -> str:
    if not ctx.caller.at_least(Role.STUDIO_LEAD):
        raise UserError("只有工作室负责人或联盟负责人可以申报。")
    tokens = args.split()
    if len(tokens) < 2:
        raise UsageError("请写评选编号和申报对象，例如 /评选 申报 1 T1。")
    round_id = _number(tokens[0], "评选编号")
    stars = None
    if len(tokens) > 2:
        stars = _STARS.get(fold(tokens[2]))
        if stars is None:
            raise UserError(f"「{tokens[2]}」看不懂，星级请写 三星、四星或五星。")
    service = service_of(ctx)
    nominee = await service.nominate(
        round_id,
        fold(tokens[1]),
        caller=ctx.caller,
        target_stars=stars,
        message_key=message_key(ctx, "nominate"),
    )
    evaluation = await service.get(round_id)
    return (
        f"已申报{round_label(evaluation)}：{await service.nominee_label(nominee)}。"
        f"评鉴团将在 {service.when(evaluation.score_until)} 前评分。"
    )


async def _score(ctx: Context, args: str) -> str:
    tokens = args.split()
    if len(tokens) < 3:
        raise UsageError("请写评选编号、申报号和分数，例如 /评选 评分 1 2 90 85 80。")
    round_id = _number(tokens[0], "评选编号")
    nominee_id = _number(tokens[1], "申报号")
    service = service_of(ctx)
    outcome = await service.score(
        round_id,
        nominee_id,
        [fold(t) for t in tokens[2:]],
        caller=ctx.caller,
        message_key=message_key(ctx, "score"),
    )
    verb = "已更新评分" if outcome.replaced else "已评分"
    return f"{verb}：{await service.nominee_label(outcome.nominee)}，加权得分 {outcome.total:g}。"


async def _close(ctx: Context, args: str) -> str:
    if not args.strip():
        raise UsageError("请写评选编号，例如 /评选 结束 1。")
    round_id = _number(first_word(args)[0], "评选编号")
    service = service_of(ctx)
    standings = await service.close(round_id, caller=ctx.caller)
    evaluation = await service.get(round_id)
    if standings is None:
        return f"{round_label(evaluation)} 已经结束了，发送 /评选 {round_id} 查看结果。"
    winners = sum(1 for s in standings if s.nominee.result == "winner")
    return (
        f"{round_label(evaluation)} 已结束：{len(standings)} 个申报对象，{winners} 个入选。结果已发到联盟群。"
    )


async def _details(ctx: Context, round_id: int) -> str:
    service = service_of(ctx)
    evaluation = await service.get(round_id)
    studios = await service.studios()
    scope = "全部联盟"
    if evaluation.alliance_id:
        alliance = await ctx.runtime.store.alliances.get(evaluation.alliance_id)
        scope = alliance.name if alliance else evaluation.alliance_id
    state = "进行中" if evaluation.state == OPEN else "已结束"
    names = await service.names(evaluation.panel)
    lines = [
        f"{round_label(evaluation)}（{scope}，{state}）",
        f"评分标准：{criteria_text(evaluation)}；入选线 {evaluation.passing} 分"
        + (f"，名额 {evaluation.quota}" if evaluation.quota else ""),
        f"申报截止：{service.when(evaluation.nominate_until)}；评分截止：{service.when(evaluation.score_until)}",
        f"评鉴团：{'、'.join(names[p] for p in evaluation.panel)}",
    ]
    standings = await service.standings(evaluation)
    if not standings:
        lines.append("还没有申报对象。")
    me = ctx.caller.user_id
    scored = {(s.panelist, s.nominee_id) for s in await service.repo.scores(round_id)}
    for standing in standings:
        nominee = standing.nominee
        line = f"· {await service.nominee_label(nominee, studios)}：{standing.scored} 人已评分"
        if evaluation.state != OPEN:
            result = {"winner": "入选", "not_selected": "未入选", "unscored": "无人评分"}.get(
                nominee.result, ""
            )
            score = f"{nominee.score:g} 分，第 {nominee.rank} 名，" if nominee.score is not None else ""
            line += f"，{score}{result}"
        conflicted = [p for p in evaluation.panel if await service.conflicted(p, nominee)]
        if conflicted:
            line += f"（回避：{'、'.join(names[p] for p in conflicted)}）"
        if me in evaluation.panel and evaluation.state == OPEN:
            if me in conflicted:
                line += " — 您需回避"
            elif (me, nominee.id) in scored:
                line += " — 您已评分"
            else:
                line += " — 待您评分"
        lines.append(line)
    if evaluation.state == OPEN and me in evaluation.panel:
        lines.append(
            f"评分：/评选 评分 {round_id} 申报号 分数…（依次为 {'、'.join(c['name'] for c in evaluation.criteria)}）"
        )
    return "\n".join(lines)


# -- the studio record and the "八有" checklist ------------------------------------------------------

CHECKLIST_USAGE = (
    "/八有 工作室编号 查看；/八有 工作室编号 确认 条件 [备注]（联盟负责人、管理员），"
    f"例如 /八有 T1 确认 有场所设备 实验室已验收。条件：{'、'.join(EIGHT)}"
)
RECORD_WORDS = ("档案", "record")


_ORIGIN_WORDS = {ROSTER_ORIGIN: "名册导入"}


def _hours_text(value: float | None) -> str:
    return f"{value:g} 小时" if value is not None else "—"


async def handle_record(ctx: Context, word: str) -> str:
    """``/工作室 T1 档案``: the studio's record, year by year, with its "八有" checklist."""
    service = ctx.runtime.feature(RecordService)
    studio = await service.studio(word)
    record = await service.record(studio)
    lines = [f"【{studio.name}（{studio.id}）档案】当前星级：{STAR_WORDS.get(studio.stars, studio.stars)}"]
    for year in record.years.values():
        kinds = "、".join(f"{k} {n}" for k, n in year.achievements.items()) or "0"
        lines.append(
            f"{year.year}年：问题 被请求 {year.asked}、认领 {year.claimed}、答复 {year.answered}、解决 {year.solved}；"
            f"认领用时中位 {_hours_text(year.median_claim_hours)}，解决用时中位 {_hours_text(year.median_solve_hours)}；"
            f"课题 提出 {year.topics_proposed}、参与 {year.topics_joined}；成果 {kinds}；"
            f"奖励 {year.awards} 项 {year.award_yuan:,} 元；活动 主办 {year.hosted}（其中培训 {year.trainings}）、参加 {year.attended}"
        )
        lines.extend(f"  · {e}" for e in year.evaluations)
    if record.stars:
        tz = ctx.runtime.settings.tz
        names = await display_names(ctx.runtime.store, [c.actor for c in record.stars])
        for change in record.stars:
            where = f"评选 #{change.round_id}" if change.round_id else _ORIGIN_WORDS.get(change.origin, "手工调整")
            lines.append(
                f"星级变更：{change.at.astimezone(tz):%Y-%m-%d} {STAR_WORDS.get(change.before, change.before)}"
                f"→{STAR_WORDS.get(change.after, change.after)}（{where}，{names.get(change.actor, change.actor)}）"
            )
    lines.append(await _checklist_text(ctx, record.checklist))
    return "\n".join(lines)


async def _checklist_text(ctx: Context, checklist: dict[str, Any]) -> str:
    names = await display_names(ctx.runtime.store, [c.confirmed_by for c in checklist.values()])
    tz = ctx.runtime.settings.tz
    parts = []
    for item in EIGHT:
        confirmed = checklist.get(item)
        if confirmed is None:
            parts.append(f"☐ {item}")
        else:
            note = f"，{confirmed.note}" if confirmed.note else ""
            parts.append(
                f"☑ {item}（{names[confirmed.confirmed_by]} {confirmed.confirmed_at.astimezone(tz):%Y-%m-%d} 确认{note}）"
            )
    done = sum(1 for item in EIGHT if item in checklist)
    return f"「八有」{done}/8：\n" + "\n".join(f"  {p}" for p in parts)


@router.command("checklist", "八有", summary="工作室「八有」条件：查看、确认", usage=CHECKLIST_USAGE)
async def handle_checklist(ctx: Context) -> str:
    """Show a studio's "八有" checklist, or confirm one item."""
    word, rest = first_word(ctx.args)
    if not word:
        raise UsageError()
    service = ctx.runtime.feature(RecordService)
    studio = await service.studio(word)
    action, rest = first_word(rest)
    if not action:
        checklist = {c.item: c for c in await service.evaluations.checklist(studio.id)}
        return f"{studio.name}（{studio.id}）" + await _checklist_text(ctx, checklist)
    if action not in ("确认", "confirm"):
        raise UsageError(f"不认识的操作「{action}」。")
    item_word, note = first_word(rest)
    if not item_word:
        raise UsageError("请写明要确认哪一条。")
    item = checklist_item(item_word)
    if item is None:
        raise UsageError(f"没有「{item_word}」这一条。")
    earlier = await service.confirm(studio, item, caller=ctx.caller, note=note[:200])
    if earlier is not None:
        names = await display_names(ctx.runtime.store, [earlier.confirmed_by])
        when = earlier.confirmed_at.astimezone(ctx.runtime.settings.tz)
        return f"{studio.name}的「{item}」已由{names[earlier.confirmed_by]}于 {when:%Y-%m-%d} 确认过。"
    return f"已确认{studio.name}（{studio.id}）的「{item}」。发送 /八有 {studio.id} 查看全部。"


async def setup(bot: BotApp) -> None:
    """Register the evaluation commands, the services and the reminder/close job."""
    bot.runtime.add_feature(EvaluationService(bot.runtime))
    bot.runtime.add_feature(RecordService(bot.runtime))
    bot.add_router(router)
    bot.jobs.add(
        SWEEP_JOB,
        CronTrigger(minute="*/30", timezone=bot.settings.tz),
        sweep_evaluations,
        description="评选：截止前提醒未申报、未评分的人，评分截止后结束评选并公布结果",
    )
