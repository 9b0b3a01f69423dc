"""Reminders with an injected clock: times and targets, firing once, catch-up after downtime, dropping,
cancellation and moves, the armed APScheduler job, settings, and /jobs."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.core.messages import Target, TargetKind
from bot.core.scheduler import JobRegistry
from bot.services.activities.service import ARMED_JOB_ID, SWEEP_JOB, ActivityService
from bot.services.studios import load_roster
from bot.settings import Settings, SettingsError, load_settings
from bot.store.activities import ActivityReminder, ReminderStatus
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, Chat

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEAD = "mushandong"
TUNNEL_GROUP = Target(TargetKind.CONSOLE, "隧道联盟群")
START = datetime(2026, 12, 2, 15, 0, tzinfo=SHANGHAI)  # 下周三下午3点 seen from Tue 2026-11-24 10:00


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def service(bot: BotApp) -> ActivityService:
    return bot.runtime.feature(ActivityService)


async def group_reminders(chat: Chat) -> list[str]:
    return [d.text for d in await chat.delivered() if d.target == TUNNEL_GROUP and "【活动提醒】" in d.text]


@pytest.fixture
async def lecture(chat: Chat) -> int:
    reply = await chat.say(LEAD, "/活动 添加 讲座 下周三下午3点 盾构施工新技术 名额 20")
    assert "#1" in reply
    await chat.delivered()  # the announcement
    return 1


async def test_reminder_times_and_targets(bot: BotApp, chat: Chat, lecture: int) -> None:
    await chat.say("u1", "/报名 1")
    pending = await service(bot).repo.pending_reminders()
    assert [(r.kind, r.target, r.due) for r in pending] == [
        ("group:7d", "alliance:tunnel", START - timedelta(days=7)),
        ("group:1d", "alliance:tunnel", START - timedelta(days=1)),
        ("attendee:1d", "user:u1", START - timedelta(days=1)),
        ("group:2h", "alliance:tunnel", START - timedelta(hours=2)),
    ]
    # an event two days ahead only gets the reminders still in the future
    await chat.say(LEAD, "/活动 添加 培训 11月26日 14:00 安全培训")
    soon = [r for r in await service(bot).repo.pending_reminders() if r.activity_id == 2]
    assert [r.kind for r in soon] == ["group:1d", "group:2h"]


async def test_reminders_fire_on_time_exactly_once(
    bot: BotApp, chat: Chat, clock: ManualClock, lecture: int
) -> None:
    await chat.say("u1", "/报名 1")
    clock.set(START - timedelta(days=7, minutes=1))
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 0, dropped 0, cancelled 0"
    clock.set(START - timedelta(days=7))
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 1, dropped 0, cancelled 0"
    (text,) = await group_reminders(chat)
    assert "讲座（大讲堂）「盾构施工新技术」" in text and "还有约7天" in text
    assert "报名：1/20 人，还剩 19 个名额" in text and "/报名 1" in text
    # a second sweep, and a second process's registry on the same database, send nothing more
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 0, dropped 0, cancelled 0"
    other = JobRegistry(bot.runtime, bot.scheduler)
    other.add(
        SWEEP_JOB,
        bot.jobs.specs[SWEEP_JOB].trigger,
        bot.jobs.specs[SWEEP_JOB].func,
        description="x",
        exclusive=False,
    )
    assert await other.fire(SWEEP_JOB) == "sent 0, dropped 0, cancelled 0"
    assert await group_reminders(chat) == []
    # one day before: the group and the attendee personally
    clock.set(START - timedelta(days=1))
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 2, dropped 0, cancelled 0"
    (text,) = await group_reminders(chat)
    assert "还有约1天" in text
    (personal,) = chat.to_user("u1")[-1:]
    assert "您报名的讲座（大讲堂）「盾构施工新技术」将于 2026年12月2日（星期三）15:00 开始" in personal
    assert chat.to_user("u2") == []
    clock.set(START - timedelta(hours=2))
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 1, dropped 0, cancelled 0"
    (text,) = await group_reminders(chat)
    assert "还有约2小时" in text
    assert await service(bot).repo.pending_reminders() == []
    rows = await service(bot).repo.reminders_of(1)
    assert {r.status for r in rows} == {ReminderStatus.SENT.value} and {r.attempts for r in rows} == {1}


async def test_cancelled_and_moved_events_do_not_fire_old_reminders(
    bot: BotApp, chat: Chat, clock: ManualClock, lecture: int
) -> None:
    await chat.say(LEAD, "/活动 添加 培训 12月3日 9:00 安全培训")
    await chat.say(LEAD, "/活动 取消 2")
    await chat.say(LEAD, "/活动 改期 1 12月9日 15:00")
    await chat.delivered()
    clock.set(START - timedelta(days=1))  # the old 1-day mark of #1
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 0, dropped 0, cancelled 0"
    clock.set(START)  # #2's old marks passed, #1's new 7-day mark (12-02 15:00) is due
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 1, dropped 0, cancelled 0"
    (text,) = await group_reminders(chat)
    assert "2026年12月9日（星期三）15:00" in text
    clock.set(at(12, 8, 15))
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 1, dropped 0, cancelled 0"


async def test_catch_up_after_downtime_sends_if_event_not_started(
    settings: Settings, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    first = await BotApp.create(settings, clock=clock)
    await first.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
    chat = Chat(first)
    await chat.say(LEAD, "/活动 添加 讲座 下周三下午3点 盾构施工新技术")
    await chat.say(LEAD, "/活动 添加 培训 11月26日 14:00 安全培训")
    await chat.say("u1", "/报名 2")
    await first.close()  # the bot goes down before any reminder is due

    # back up on 11-27 08:00: #2 (11-26 14:00) has started, #1's 7-day mark (11-25 15:00) passed
    clock.set(at(11, 27, 8))
    second = await BotApp.create(settings, clock=clock)
    try:
        chat = Chat(second)
        with caplog.at_level(logging.WARNING, logger="bot.services.activities.service"):
            assert await second.jobs.fire(SWEEP_JOB) == "sent 1, dropped 3, cancelled 0"
        (text,) = await group_reminders(chat)
        assert "盾构施工新技术" in text and "还有约5天" in text
        assert chat.to_user("u1") == []  # its event started while the bot was down
        dropped = [r for r in await service(second).repo.reminders_of(2)]
        assert {r.status for r in dropped} == {ReminderStatus.DROPPED.value}
        assert {r.detail for r in dropped} == {"活动已开始，提醒未发送"}
        assert "dropping reminder" in caplog.text and "event 2 started" in caplog.text
        # nothing else is lost: the remaining reminders of #1 are still pending
        assert [r.kind for r in await service(second).repo.pending_reminders()] == ["group:1d", "group:2h"]
    finally:
        await second.close()


async def test_several_missed_reminders_send_only_the_latest(settings: Settings, clock: ManualClock) -> None:
    first = await BotApp.create(settings, clock=clock)
    await first.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
    await Chat(first).say(LEAD, "/活动 添加 讲座 下周三下午3点 盾构施工新技术")
    await first.close()
    clock.set(START - timedelta(hours=3))  # down across the 7-day and 1-day marks
    second = await BotApp.create(settings, clock=clock)
    try:
        chat = Chat(second)
        assert await second.jobs.fire(SWEEP_JOB) == "sent 1, dropped 1, cancelled 0"
        (text,) = await group_reminders(chat)
        assert "还有约3小时" in text
        statuses = {r.kind: (r.status, r.detail) for r in await service(second).repo.reminders_of(1)}
        assert statuses["group:7d"] == (ReminderStatus.DROPPED.value, "补发时已由更近的提醒代替")
        assert statuses["group:1d"][0] == ReminderStatus.SENT.value
        assert statuses["group:2h"][0] == ReminderStatus.PENDING.value
    finally:
        await second.close()


async def test_stale_claim_of_a_crashed_process_is_taken_over(
    bot: BotApp, chat: Chat, clock: ManualClock, lecture: int
) -> None:
    repo = service(bot).repo
    due = START - timedelta(days=7)
    claimed = await repo.claim_due_reminders(due, worker="crashed:1")
    assert [r.kind for r in claimed] == ["group:7d"]
    clock.set(due + timedelta(minutes=1))
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 0, dropped 0, cancelled 0"  # still leased
    clock.set(due + timedelta(minutes=6))
    assert await bot.jobs.fire(SWEEP_JOB) == "sent 1, dropped 0, cancelled 0"
    assert len(await group_reminders(chat)) == 1
    (row,) = [r for r in await repo.reminders_of(1) if r.kind == "group:7d"]
    assert row.attempts == 2 and row.status == ReminderStatus.SENT.value


async def test_start_up_arms_one_date_job_at_the_earliest_due_time(
    settings: Settings, clock: ManualClock
) -> None:
    bot = await BotApp.create(settings, clock=clock)
    try:
        await bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        await Chat(bot).say(LEAD, "/活动 添加 讲座 下周三下午3点 盾构施工新技术")
        bot.scheduler.start(paused=True)  # nothing runs; the start event rebuilds the schedule
        await bot.drain()
        job = bot.scheduler.get_job(ARMED_JOB_ID)
        assert job is not None and job.next_run_time == START - timedelta(days=7)
        # a closer reminder re-arms it
        await Chat(bot).say(LEAD, "/活动 添加 培训 11月25日 14:00 安全培训")
        job = bot.scheduler.get_job(ARMED_JOB_ID)
        assert job.next_run_time == at(11, 24, 14)  # its 1-day mark
        # past-due work is armed for now, so it runs at once
        clock.set(at(11, 24, 15))
        await service(bot).arm()
        assert bot.scheduler.get_job(ARMED_JOB_ID).next_run_time == at(11, 24, 15)
        assert len(bot.scheduler.get_jobs()) == 1  # not one APScheduler job per reminder
    finally:
        await bot.close()


async def test_offsets_per_type_from_settings(database_url: str, clock: ManualClock) -> None:
    settings = Settings(
        database_url=database_url,
        admins=[ADMIN],
        reminder_offsets="3d,1h",
        reminder_offsets_by_type="年会=30d,7d;lecture=1d",
        reminder_attendee_offsets="2h",
    )
    bot = await BotApp.create(settings, clock=clock)
    try:
        await bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        chat = Chat(bot)
        await chat.say(LEAD, "/活动 添加 年会 2027-01-20 09:00 隧道联盟年会")
        await chat.say(LEAD, "/活动 添加 讲座 12月20日 9:00 讲座")
        await chat.say(LEAD, "/活动 添加 培训 12月21日 9:00 培训")
        await chat.say("u1", "/报名 3")
        kinds = {}
        for r in await service(bot).repo.pending_reminders():
            kinds.setdefault(r.activity_id, []).append(r.kind)
        assert kinds == {
            1: ["group:30d", "group:7d"],
            2: ["group:1d"],
            3: ["group:3d", "attendee:2h", "group:1h"],
        }
    finally:
        await bot.close()


def test_bad_offsets_stop_start_up_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_REMINDER_OFFSETS", "7d,soon")
    with pytest.raises(SettingsError, match=r"BOT_REMINDER_OFFSETS:.*'soon'"):
        load_settings()
    monkeypatch.setenv("BOT_REMINDER_OFFSETS", "7d,1d,2h")
    monkeypatch.setenv("BOT_REMINDER_OFFSETS_BY_TYPE", "茶话会=1d")
    with pytest.raises(SettingsError, match=r"BOT_REMINDER_OFFSETS_BY_TYPE:.*茶话会"):
        load_settings()
    monkeypatch.setenv("BOT_REMINDER_OFFSETS_BY_TYPE", '{"年会": ["30d", "7d"], "lecture": "1d,2h"}')
    assert load_settings().reminder_offsets_by_type.startswith("{")


async def test_jobs_shows_event_jobs_and_next_reminders(chat: Chat, lecture: int) -> None:
    await chat.say("u1", "/报名 1")
    reply = await chat.say(ADMIN, "/jobs")
    assert "发送到期的活动提醒" in reply and "年会检查" in reply
    assert "牵头单位轮换" in reply and "联盟周报：每周一 9:00" in reply
    assert "接下来的提醒：\n· 11-25 15:00 #1「盾构施工新技术」→ 隧道联盟群" in reply
    assert "u1（私信）" in reply


async def test_planning_the_same_reminders_concurrently_keeps_one_of_each(bot: BotApp, lecture: int) -> None:
    repo = service(bot).repo
    if bot.store.dialect == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")

    def rows() -> list[ActivityReminder]:
        return [
            ActivityReminder(activity_id=1, kind="attendee:1d", target=f"user:r{n}", due=START - timedelta(days=1))
            for n in range(20)
        ]

    added = await asyncio.gather(*(repo.add_reminders(rows()) for _ in range(4)))
    assert sum(added) == 20
    mine = [r for r in await repo.reminders_of(1) if r.target.startswith("user:r")]
    assert len(mine) == 20
