"""Quorum and lapse of research topics with an injected clock: the ``topics-quorum-sweep`` job reminds the proposer
three days before the deadline, lets an unsupported topic lapse, approves a topic whose quorum was lowered, and
two processes sweeping at once announce each change once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.services.studios import load_roster
from bot.services.topics import SWEEP_JOB, TopicService
from bot.settings import Settings
from bot.store.topics import TopicStatus
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, Chat

T1_LEAD, T2_LEAD, T3_LEAD, B2_LEAD = "chenjuejin", "shibaopo", "fangshuiqing", "xuanbining"
PROPOSAL = "/立项 盾构管片拼装质量控制 研究管片错台的成因"


def reminders(chat: Chat) -> list[str]:
    return [t for t in chat.to_user(T1_LEAD) if t.startswith("提醒：")]


def lapses(chat: Chat) -> list[str]:
    return [t for t in chat.to_user(T1_LEAD) if "已失效" in t]


async def test_reminder_three_days_before_then_lapse(bot: BotApp, chat: Chat, clock: ManualClock) -> None:
    start = clock.now()
    await chat.say(T1_LEAD, PROPOSAL)
    await chat.say(T2_LEAD, "/附议 T-1")
    clock.advance(days=10, hours=23)  # deadline 12月8日 10:00; not yet within three days
    assert await bot.jobs.fire(SWEEP_JOB) == "approved 0, lapsed 0, reminded 0"
    clock.set(start)
    clock.advance(days=11)  # exactly three days before
    assert await bot.jobs.fire(SWEEP_JOB) == "approved 0, lapsed 0, reminded 1"
    await chat.delivered()
    (reminder,) = reminders(chat)
    assert (
        "将于 12月8日 截止征集附议，目前 2/3 个工作室支持，还差 1 个" in reminder and "/附议 T-1" in reminder
    )
    clock.advance(hours=12)
    assert await bot.jobs.fire(SWEEP_JOB) == "approved 0, lapsed 0, reminded 0"  # once only
    clock.set(start)
    clock.advance(days=14)
    assert "已于 12月8日 截止" in await chat.say(T3_LEAD, "/附议 T-1")  # refused even before the sweep runs
    assert await bot.jobs.fire(SWEEP_JOB) == "approved 0, lapsed 1, reminded 0"
    await chat.delivered()
    (lapse,) = lapses(chat)
    assert "在 14 天内获得 2/3 个工作室支持，未达到立项要求，已失效" in lapse
    assert "状态：未获足够附议，已失效" in await chat.say("someone", "/课题 T-1")
    assert "不能再附议" in await chat.say(T3_LEAD, "/附议 T-1")
    assert "未获足够附议，已失效" in await chat.say(B2_LEAD, "/join T-1")
    clock.advance(days=1)
    assert await bot.jobs.fire(SWEEP_JOB) == "approved 0, lapsed 0, reminded 0"
    assert len(lapses(chat)) == 1


async def test_quorum_within_the_window_is_not_lapsed(bot: BotApp, chat: Chat, clock: ManualClock) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    clock.advance(days=13, hours=23)
    await chat.say(T2_LEAD, "/附议 T-1")
    assert "正式立项" in await chat.say(B2_LEAD, "/附议 T-1")
    clock.advance(days=1)
    assert await bot.jobs.fire(SWEEP_JOB) == "approved 0, lapsed 0, reminded 0"
    assert lapses(chat) == []
    assert "状态：已立项攻关" in await chat.say("someone", "/课题 T-1")


@pytest.fixture
async def small_quorum_bot(database_url: str, clock: ManualClock) -> AsyncIterator[BotApp]:
    """A bot with BOT_TOPIC_QUORUM=2 and BOT_TOPIC_DAYS=7 on the same database as ``bot``."""
    settings = Settings(database_url=database_url, admins=[ADMIN], topic_quorum=2, topic_days=7)
    app = await BotApp.create(settings, clock=clock)
    await app.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
    try:
        yield app
    finally:
        await app.close()


async def test_settings_set_quorum_and_window(small_quorum_bot: BotApp) -> None:
    chat = Chat(small_quorum_bot)
    reply = await chat.say(T1_LEAD, PROPOSAL)
    assert "需 2 个工作室支持" in reply and "征集截止 2026年12月1日" in reply
    assert "正式立项" in await chat.say(T2_LEAD, "/附议 T-1")


async def test_sweep_approves_when_the_quorum_was_lowered(
    bot: BotApp, chat: Chat, small_quorum_bot: BotApp, clock: ManualClock
) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    assert "目前 2/3" in await chat.say(T2_LEAD, "/附议 T-1")
    # the same database seen by a process configured with a quorum of 2
    assert await small_quorum_bot.jobs.fire(SWEEP_JOB) == "approved 1, lapsed 0, reminded 0"
    other = Chat(small_quorum_bot)
    await other.delivered()
    assert any("【联合攻关立项】" in d.text for d in other.sender.deliveries)
    assert "状态：已立项攻关" in await chat.say("someone", "/课题 T-1")


async def test_two_processes_sweeping_at_once_lapse_and_notify_once(
    bot: BotApp, chat: Chat, small_quorum_bot: BotApp, clock: ManualClock
) -> None:
    for title in ("盾构课题甲", "盾构课题乙", "盾构课题丙"):
        await chat.say(T1_LEAD, f"/立项! {title}")
    clock.advance(days=15)
    now = clock.now()
    first = bot.runtime.feature(TopicService)
    second = small_quorum_bot.runtime.feature(TopicService)
    # quorum 2 vs 3 does not matter here: nobody supported; each topic lapses in exactly one process
    results = await asyncio.gather(first.sweep(now), second.sweep(now))
    lapsed = sum(int(r.split("lapsed ")[1].split(",")[0]) for r in results)
    assert lapsed == 3
    await chat.delivered()
    assert len(lapses(chat)) == 3
    topics = await first.topics.all()
    assert {t.state for t in topics} == {TopicStatus.LAPSED}
