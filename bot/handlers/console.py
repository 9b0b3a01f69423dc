"""The web console from chat: ``/console`` (``/后台``) in a 1:1 chat answers with a one-time sign-in link.
Also the feature's setup: the console service, the nightly clean-up job and the ``/console`` pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apscheduler.triggers.cron import CronTrigger

from bot.core.dispatcher import Context, Router
from bot.services.console import LINK_MINUTES, ConsoleService

if TYPE_CHECKING:
    from datetime import datetime

    from bot.app import BotApp
    from bot.core.runtime import Runtime

router = Router("网页后台")
PRUNE_JOB = "console-prune"


@router.command("console", "后台", "网页后台", summary="获取网页后台的一次性登录链接（请私聊机器人发送）")
async def handle_console(ctx: Context) -> str:
    """A sign-in link, only in a 1:1 chat: in a group everyone would see it."""
    if ctx.event.in_group:
        return "登录链接只能发给您本人：请私聊我发送 /后台。"
    link = await ctx.runtime.feature(ConsoleService).link(ctx.caller.user_id)
    return (
        f"网页后台登录链接（{LINK_MINUTES} 分钟内有效，只能使用一次，请勿转发）：\n{link}\n"
        f"当前身份：{ctx.caller.role.label}，后台只显示该身份可查看和操作的内容。"
    )


async def _prune(runtime: Runtime, now: datetime) -> str:
    return await runtime.feature(ConsoleService).prune(now)


async def setup(bot: BotApp) -> None:
    """Register ``/后台``, the console service, its clean-up job and the web pages."""
    from bot.channels.web import add_routes

    bot.runtime.add_feature(ConsoleService(bot.runtime))
    bot.add_router(router)
    bot.jobs.add(
        PRUNE_JOB,
        CronTrigger(hour=3, minute=41, timezone=bot.settings.tz),
        _prune,
        description="清理过期的网页后台会话和登录链接记录",
    )
    bot.web_setups.append(add_routes)
