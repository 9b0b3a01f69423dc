"""Scheduled jobs: exclusive firing across processes (two registries on one database), outcomes, /jobs."""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.app import BotApp
from bot.core.runtime import Runtime
from bot.core.scheduler import JobRegistry
from tests.conftest import ADMIN
from tests.harness import Chat


async def test_exclusive_job_runs_once_per_slot_across_registries(bot: BotApp) -> None:
    calls: list[datetime] = []

    async def job(runtime: Runtime, now: datetime) -> str:
        calls.append(now)
        return f"call {len(calls)}"

    other_process = JobRegistry(bot.runtime, AsyncIOScheduler(timezone=bot.settings.tz))
    for registry in (bot.jobs, other_process):
        registry.add("demo", CronTrigger(minute="*/5"), job, description="演示任务")
    now = bot.clock.now()
    assert await bot.jobs.fire("demo", now) == "call 1"
    assert await other_process.fire("demo", now + timedelta(seconds=20)) is None  # same minute slot
    assert await other_process.fire("demo", now + timedelta(minutes=5)) == "call 2"
    assert len(calls) == 2


async def test_failing_job_is_recorded_and_shown(bot: BotApp) -> None:
    async def broken(runtime: Runtime, now: datetime) -> str:
        raise RuntimeError("数据库连接断了")

    bot.jobs.add("broken", CronTrigger(hour=9, minute=0, timezone=bot.settings.tz), broken, description="会失败的任务")
    assert await bot.jobs.fire("broken") is None
    chat = Chat(bot)
    reply = await chat.say(ADMIN, "/jobs")
    assert "会失败的任务" in reply and "出错" in reply and "数据库连接断了" in reply
    assert "清理过期的消息去重记录" in reply and "尚未运行" in reply
    # next 09:00 after Tuesday 10:00 Shanghai is Wednesday 09:00
    assert "下次：11-25 09:00" in reply
    refused = await chat.say("someone", "/jobs")
    assert "需要「管理员」" in refused


async def test_prune_job_removes_old_ids(bot: BotApp) -> None:
    old = bot.clock.now() - timedelta(days=30)
    await bot.store.dedupe.claim("x:old", old)
    await bot.store.dedupe.claim("x:new", bot.clock.now())
    assert await bot.jobs.fire("prune-processed-messages") == "removed 1"
    assert not await bot.store.dedupe.claim("x:new")


async def test_grant_role(chat: Chat) -> None:
    assert "用法" in await chat.say(ADMIN, "/grant wang")
    assert "不认识的角色" in await chat.say(ADMIN, "/grant wang 大王")
    assert "请指定联盟" in await chat.say(ADMIN, "/授权 wang 联盟负责人")
    assert "已将 wang 设为「联盟负责人」：隧道联盟" in await chat.say(ADMIN, "/授权 wang 联盟负责人 隧道")
    assert "身份：联盟负责人" in await chat.say("wang", "/whoami")
    assert "需要「管理员」" in await chat.say("wang", "/grant x 管理员")
