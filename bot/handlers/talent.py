"""Talent development in chat: ``/checkin`` (``/签到``) at an activity and the organiser's 补记, and ``/talent``
(``/人才``): the summary, mentorships (带徒, 出师) and titles (称号). The rules are the talent service's."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.core.dispatcher import Context, Router, UsageError, UserError, first_word, fold
from bot.core.middleware import dedupe_key
from bot.services.funds import Refusal, now_date, parse_day
from bot.services.studios import display_names
from bot.services.talent import TITLE_NAMES, TalentService, figures_text

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("经费与人才")

CHECKIN_USAGE = (
    "/签到 活动编号；组织者补记：/签到 活动编号 补记 姓名或账号…，例如 /签到 12、/签到 12 补记 陈掘进 lisi"
)
TALENT_USAGE = (
    "/人才 [联盟|工作室] [年份] 查看人才培养；"
    "/人才 带徒 师傅 徒弟 [@工作室] [开始日期] [培养目标]；/人才 出师 编号 成果；"
    f"/人才 称号 姓名 称号 [日期] [@工作室] 证明材料（称号：{TITLE_NAMES}）。"
    "例如 /人才 称号 陈掘进 省级工匠 2026-05-01 @T1 省总工会文件 2026-12号"
)
_YEAR = re.compile(r"^((?:19|20)\d\d)年?$")
_MARK = ("补记", "补签", "mark")


def service_of(ctx: Context) -> TalentService:
    """The talent service."""
    return ctx.runtime.feature(TalentService)


def _number(word: str, what: str) -> int:
    number = fold(word).lstrip("#")
    if not (number.isdigit() and len(number) <= 9):
        raise UsageError(f"请写{what}编号（数字）。")
    return int(number)


@router.command("checkin", "签到", summary="活动签到；组织者可在活动后补记", usage=CHECKIN_USAGE)
async def handle_checkin(ctx: Context) -> str:
    """Check in at an activity, or (``补记``) mark others present."""
    word, rest = first_word(ctx.args)
    if not word:
        raise UsageError("请写活动编号。")
    activity_id = _number(word, "活动")
    service = service_of(ctx)
    try:
        mark_word, people_words = first_word(rest)
        if mark_word in _MARK:
            people = await service.resolve_people(people_words.replace("、", " ").replace("，", " ").split())
            if not people:
                raise UsageError("请写要补记的人（姓名或企业微信账号）。")
            activity, added, present = await service.mark(ctx.caller, activity_id, people)
            names = await display_names(ctx.runtime.store, added)
            already = len(people) - len(added)
            return (
                f"已为活动 #{activity_id}「{activity.title}」补记 {len(added)} 人"
                + (f"：{'、'.join(names[p] for p in added)}" if added else "")
                + (f"（{already} 人已签到过）" if already else "")
                + f"；共 {present} 人参加。"
            )
        if rest:
            raise UsageError(f"「{rest}」看不懂。")
        done = await service.check_in(ctx.caller, activity_id)
    except Refusal as exc:
        raise UserError(str(exc)) from None
    if not done.new:
        return f"您已签到过活动 #{activity_id}「{done.activity.title}」。"
    return f"签到成功：活动 #{activity_id}「{done.activity.title}」，您是第 {done.present} 位。"


@router.command("talent", "人才", summary="人才培养：培训人次、名师带徒、称号荣誉", usage=TALENT_USAGE)
async def handle_talent(ctx: Context) -> str:
    """``/人才`` with a sub-command, or the summary."""
    word, rest = first_word(ctx.args)
    try:
        if word in ("带徒", "师徒", "mentor"):
            return await _mentor(ctx, rest)
        if word in ("出师", "结业"):
            return await _conclude(ctx, rest)
        if word in ("称号", "荣誉", "title"):
            return await _honour(ctx, rest)
        return await _summary(ctx, ctx.args)
    except Refusal as exc:
        raise UserError(str(exc)) from None


async def _summary(ctx: Context, args: str) -> str:
    store = ctx.runtime.store
    year = ctx.runtime.local_now().year
    alliance = studio = None
    for word in args.split():
        match = _YEAR.match(fold(word))
        if match:
            year = int(match.group(1))
            continue
        studio = await store.studios.get(fold(word).lstrip("@"))
        if studio is None:
            alliance = await store.alliances.find(word)
            if alliance is None:
                studio = await store.studios.find(word)
        if alliance is None and studio is None:
            raise UsageError(f"「{word}」既不是年份，也不是联盟或工作室。")
    service = service_of(ctx)
    if studio is not None:
        figures = await service.figures(year=year, studio_id=studio.id)
        return figures_text(f"{studio.name}{year}年", figures, studio=True)
    figures = await service.figures(year=year, alliance_id=alliance.id if alliance else None)
    return figures_text(f"{alliance.name if alliance else '全部联盟'}{year}年", figures)


def _split_options(tokens: list[str], ctx: Context) -> tuple[str | None, object, list[str]]:
    """``@工作室`` and the first date among ``tokens``; the rest kept in order."""
    studio_word = None
    day = None
    rest = []
    for token in tokens:
        folded = fold(token)
        if folded.startswith("@") and studio_word is None:
            studio_word = folded[1:]
            continue
        if day is None:
            try:
                day = parse_day(folded, today=now_date(ctx.runtime))
            except ValueError as exc:
                raise UsageError(f"{exc}。") from None
            if day is not None:
                continue
        rest.append(token)
    return studio_word, day, rest


async def _mentor(ctx: Context, args: str) -> str:
    tokens = args.split()
    if len(tokens) < 2:
        raise UsageError("请写师傅和徒弟。")
    service = service_of(ctx)
    master, apprentice = await service.resolve_people(tokens[:2], unique=False)
    studio_word, day, rest = _split_options(tokens[2:], ctx)
    studio = await service.studio(ctx.caller, studio_word)
    mentorship = await service.add_mentorship(
        ctx.caller,
        master=master,
        apprentice=apprentice,
        studio=studio,
        started_on=day or now_date(ctx.runtime),  # type: ignore[arg-type]
        goal=" ".join(rest),
        message_key=dedupe_key(ctx.event),
    )
    names = await display_names(ctx.runtime.store, [master, apprentice])
    return (
        f"已登记名师带徒 #{mentorship.id}：{studio.name} 师傅 {names[master]}、徒弟 {names[apprentice]}，"
        f"{mentorship.started_on.isoformat()} 起"
        + (f"；目标：{mentorship.goal}" if mentorship.goal else "")
        + f"。出师后发送 /人才 出师 {mentorship.id} 成果。"
    )


async def _conclude(ctx: Context, args: str) -> str:
    word, outcome = first_word(args)
    if not word:
        raise UsageError("请写师徒编号和成果。")
    mentorship = await service_of(ctx).conclude_mentorship(
        ctx.caller, _number(word, "师徒"), outcome, now_date(ctx.runtime)
    )
    return f"已登记师徒 #{mentorship.id} 出师：{mentorship.outcome}"


async def _honour(ctx: Context, args: str) -> str:
    tokens = args.split()
    if len(tokens) < 2:
        raise UsageError("请写姓名和称号。")
    service = service_of(ctx)
    (person,) = await service.resolve_people(tokens[:1])
    studio_word, day, rest = _split_options(tokens[2:], ctx)
    studio = await service.studio(ctx.caller, studio_word) if studio_word else None
    honour = await service.add_honour(
        ctx.caller,
        person=person,
        title_word=tokens[1],
        on=day or now_date(ctx.runtime),  # type: ignore[arg-type]
        studio=studio,
        alliance_id=None,
        evidence=" ".join(rest),
        message_key=dedupe_key(ctx.event),
    )
    name = (await display_names(ctx.runtime.store, [person]))[person]
    where = f"（{studio.name}）" if studio else ""
    return f"已登记：{name}{where} {honour.on.isoformat()} 获「{honour.title}」（{honour.grade}），证明：{honour.evidence}"


async def setup(bot: BotApp) -> None:
    """Register ``/签到``, ``/人才`` and the talent service."""
    bot.runtime.add_feature(TalentService(bot.runtime))
    bot.add_router(router)
