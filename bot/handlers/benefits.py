"""The benefit chain in chat: ``/benefit`` (``/效益``) records where an achievement was applied and its direct
economic benefit, its patents and its 推广 status; ``/成果 N`` and ``/课题 N`` show the chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.dispatcher import Context, Role, Router, UsageError, UserError, first_word, fold
from bot.core.middleware import dedupe_key
from bot.services.benefits import PROMOTION, BenefitService, chain_lines, wan
from bot.services.funds import Refusal, now_date, parse_day, parse_yuan

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("创新成果")

USAGE = (
    "/效益 成果编号 应用 项目 [单位] [日期] 效益金额 [说明]；/效益 成果编号 专利 专利号…；"
    f"/效益 成果编号 推广 {'|'.join(PROMOTION)}；/效益 成果编号 查看。"
    "例如 /效益 3 应用 郑州地铁5号线 中铁隧道局 2026-05-01 120万"
)


def service_of(ctx: Context) -> BenefitService:
    """The benefits service."""
    return ctx.runtime.feature(BenefitService)


@router.command(
    "benefit",
    "效益",
    summary="成果转化：应用项目、直接经济效益、专利号、推广",
    usage=USAGE,
    role=Role.STUDIO_LEAD,
)
async def handle_benefit(ctx: Context) -> str:
    """``/效益 N 应用|专利|推广 …`` or ``/效益 N``."""
    word, rest = first_word(ctx.args)
    number = word.lstrip("#").removeprefix("成果")
    if not (number.isdigit() and len(number) <= 9):
        raise UsageError("请先写成果编号。")
    achievement_id = int(number)
    sub, rest = first_word(rest)
    service = service_of(ctx)
    try:
        if sub in ("应用", "apply"):
            return await _apply(ctx, achievement_id, rest)
        if sub in ("专利", "patent"):
            protection = await service.add_patents(
                ctx.caller, achievement_id, rest.replace("、", " ").split()
            )
            return f"成果 #{achievement_id} 专利号：{'、'.join(protection.patents)}"
        if sub in ("推广", "promotion"):
            protection = await service.set_promotion(ctx.caller, achievement_id, fold(rest))
            return f"成果 #{achievement_id} 推广状态：{protection.promotion}"
        if sub in ("", "查看"):
            achievement = await service.achievements.get(achievement_id)
            if achievement is None:
                raise Refusal(f"没有编号为 {achievement_id} 的成果。")
            chain = await service.chain(achievement)
            shown = chain_lines(chain) or ["尚未登记应用、效益或专利。"]
            return "\n".join([f"成果 #{achievement_id}「{achievement.title}」的转化与效益：", *shown])
    except Refusal as exc:
        raise UserError(str(exc)) from None
    raise UsageError(f"不认识的子命令「{sub}」。")


async def _apply(ctx: Context, achievement_id: int, args: str) -> str:
    today = now_date(ctx.runtime)
    on = None
    benefit = None
    words: list[str] = []
    for token in args.split():
        folded = fold(token)
        if on is None:
            try:
                day = parse_day(folded, today=today)
            except ValueError as exc:
                raise UsageError(f"{exc}。") from None
            if day is not None:
                on = day
                continue
        if benefit is None and folded[:1].isdigit() and len(words) >= 1:
            try:
                benefit = parse_yuan(folded)
                continue
            except ValueError:
                pass
        words.append(token)
    if not words:
        raise UsageError("请写上应用的项目。")
    if benefit is None:
        raise UsageError("请写上直接经济效益（元），例如 120万；没有直接效益写 0 元请用 /效益 编号 推广。")
    project, unit, note = words[0], words[1] if len(words) > 1 else "", " ".join(words[2:])
    application = await service_of(ctx).add_application(
        ctx.caller,
        achievement_id,
        project=project,
        unit=unit,
        on=on or today,
        benefit=benefit,
        note=note,
        message_key=dedupe_key(ctx.event),
    )
    where = "、".join(p for p in (application.project, application.unit) if p)
    return (
        f"已登记成果 #{achievement_id} 的应用：{application.applied_on.isoformat()} {where}，"
        f"直接经济效益 {wan(application.benefit)}。发送 /成果 {achievement_id} 查看转化链。"
    )


async def setup(bot: BotApp) -> None:
    """Register ``/效益`` and the benefits service."""
    bot.runtime.add_feature(BenefitService(bot.runtime))
    bot.add_router(router)
