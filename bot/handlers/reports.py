"""The year's figures in chat: ``/stats`` (``/统计``), the year report's summary sheet as a short text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.dispatcher import Context, Router, UsageError
from bot.handlers.achievements import parse_year

if TYPE_CHECKING:
    from bot.app import BotApp

# the same group as the achievements commands, so /help lists /统计 where it always has
router = Router("创新成果")


@router.command(
    "stats",
    "统计",
    summary="联盟年度统计：问题、满意度、活动、课题、成果、奖励",
    usage="/统计 [年份] [联盟]，例如 /统计 2026、/统计 2026 隧道",
)
async def handle_stats(ctx: Context) -> str:
    """The year's summary (the report's first sheet) as a short text."""
    from bot.services.reports import collect, summary_text

    year = ctx.runtime.local_now().year
    alliance_id = None
    for word in ctx.args.split():
        if parse_year(word) is not None:
            year = parse_year(word) or year
            continue
        alliance = await ctx.runtime.store.alliances.find(word)
        if alliance is None:
            raise UsageError(f"「{word}」既不是年份也不是联盟。")
        alliance_id = alliance.id
    report = await collect(
        ctx.runtime.store,
        year=year,
        tz=ctx.runtime.settings.tz,
        now=ctx.runtime.clock.now(),
        alliance_id=alliance_id,
    )
    return summary_text(report) + "\n完整报表（XLSX 工作簿和图表）：联盟负责人和管理员发送 /报表 年份 获取。"


async def setup(bot: BotApp) -> None:
    """Register ``/stats``."""
    bot.add_router(router)
