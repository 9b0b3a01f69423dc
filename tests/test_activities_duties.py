"""Charter duties as scheduled checks, with an injected clock: the annual meeting, the lead-unit rotation and
the weekly digest."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.core.messages import Target, TargetKind
from bot.services.activities.duties import term_end
from bot.services.activities.service import ActivityService
from bot.store.activities import Activity
from tests.conftest import ADMIN
from tests.harness import Chat

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEADS = {"bridge": "gaojiaqiao", "tunnel": "mushandong", "urban": "jiaditie", "power": "zhongdianqi"}


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def annual_notices(chat: Chat, user: str) -> list[str]:
    return [t for t in chat.to_user(user) if "【年会提醒】" in t]


async def test_annual_meeting_reminder_from_october_every_monday(
    bot: BotApp, chat: Chat, clock: ManualClock
) -> None:
    clock.set(at(2026, 9, 28))  # a Monday before 1 October: nothing yet
    assert await bot.jobs.fire("duty-annual-meeting") == "before 1 October: nothing to check"
    assert await chat.delivered() == []

    clock.set(at(2026, 11, 30))  # Monday
    assert await bot.jobs.fire("duty-annual-meeting") == "reminded bridge, power, tunnel, urban"
    await chat.delivered()
    (notice,) = annual_notices(chat, "mushandong")
    assert "隧道联盟每个自然年至少召开一次年会，2026年的年会还没有安排" in notice
    assert "/活动 添加 年会" in notice and "@tunnel" in notice
    assert len(annual_notices(chat, ADMIN)) == 4  # the admin hears about every alliance
    assert annual_notices(chat, "chenjuejin") == []  # studio leads are not bothered
    # the same firing again (another process, or a re-run the same week) sends nothing twice
    assert await bot.jobs.fire("duty-annual-meeting") is None
    clock.advance(hours=2)
    assert await bot.jobs.fire("duty-annual-meeting") == "every alliance has its annual meeting"
    await chat.delivered()
    assert len(annual_notices(chat, "mushandong")) == 1

    # the tunnel lead schedules one; bridge had one in March; urban's was cancelled
    await chat.say("mushandong", "/活动 添加 年会 12月18日 9:00 2026年隧道联盟年会")
    repo = bot.runtime.feature(ActivityService).repo
    await repo.create(
        Activity(
            type="年会", title="桥梁联盟年会", alliance_id="bridge", start=at(2026, 3, 20), organizer="x"
        )
    )
    urban = await repo.create(
        Activity(
            type="年会", title="城轨联盟年会", alliance_id="urban", start=at(2026, 12, 20), organizer="x"
        )
    )
    assert urban.id is not None
    await repo.cancel(urban.id, at=clock.now())
    clock.set(at(2026, 12, 7))  # next Monday
    assert await bot.jobs.fire("duty-annual-meeting") == "reminded power, urban"
    await chat.delivered()
    assert len(annual_notices(chat, "mushandong")) == 1
    assert len(annual_notices(chat, "gaojiaqiao")) == 1  # only the one before its March meeting was known
    assert len(annual_notices(chat, "jiaditie")) == 2
    assert len(annual_notices(chat, "zhongdianqi")) == 2
    # a new year starts the count again; from January to September nothing is checked
    clock.set(at(2027, 1, 4))
    assert await bot.jobs.fire("duty-annual-meeting") == "before 1 October: nothing to check"


async def test_joint_annual_meeting_counts_for_every_alliance(
    bot: BotApp, chat: Chat, clock: ManualClock
) -> None:
    await chat.say(ADMIN, "/活动 添加 年会 12月18日 9:00 工作室联盟年会")
    clock.set(at(2026, 11, 30))
    assert await bot.jobs.fire("duty-annual-meeting") == "every alliance has its annual meeting"


def test_term_end_three_years_later() -> None:
    assert term_end(date(2023, 12, 15)) == date(2026, 12, 15)
    assert term_end(date(2024, 2, 29)) == date(2027, 2, 28)


async def test_lead_rotation_admins_are_told_sixty_days_before(
    bot: BotApp, chat: Chat, clock: ManualClock
) -> None:
    # example roster: tunnel lead since 2023-12-15 (term ends 2026-12-15), bridge since 2024-03-01
    clock.set(at(2026, 10, 15, 9, 5))  # 61 days before the tunnel term ends
    assert await bot.jobs.fire("duty-lead-rotation") == "no lead term ends within 60 days"
    clock.set(at(2026, 11, 24, 9, 5))  # the bot was down on 10-16: caught up the next time the check runs
    assert await bot.jobs.fire("duty-lead-rotation") == "told admins about tunnel"
    await chat.delivered()
    (notice,) = chat.to_user(ADMIN)
    assert "【牵头单位轮换提醒】隧道联盟牵头单位（现牵头单位负责人：穆山洞）" in notice
    assert "自 2023年12月15日（星期五） 起任期 3 年" in notice
    assert "将于 2026年12月15日（星期二） 届满，还有 21 天" in notice and "lead_since" in notice
    assert chat.to_user("mushandong") == []  # admins are told, not the outgoing lead
    clock.advance(days=1)
    assert await bot.jobs.fire("duty-lead-rotation") == "no lead term ends within 60 days"
    clock.set(at(2026, 12, 31, 9, 5))  # 60 days before 2027-03-01
    assert await bot.jobs.fire("duty-lead-rotation") == "told admins about bridge"
    await chat.delivered()
    assert len(chat.to_user(ADMIN)) == 2
    notices = await bot.runtime.feature(ActivityService).repo.duty_notices("lead_rotation")
    assert [(n.alliance_id, n.period) for n in notices] == [
        ("tunnel", "2026-12-15"),
        ("bridge", "2027-03-01"),
    ]


async def test_lead_rotation_follows_a_new_term_from_the_roster(
    bot: BotApp, chat: Chat, clock: ManualClock
) -> None:
    from bot.services.studios import load_roster
    from tests.harness import EXAMPLE_ROSTER

    clock.set(at(2026, 11, 24, 9, 5))
    await bot.jobs.fire("duty-lead-rotation")
    roster = load_roster(EXAMPLE_ROSTER)
    alliances = [
        a.model_copy(update={"lead_since": date(2026, 12, 15)}) if a.id == "tunnel" else a
        for a in roster.alliances
    ]
    await bot.store.studios.import_roster(roster.model_copy(update={"alliances": alliances}))
    clock.set(at(2029, 10, 17, 9, 5))  # 59 days before the new term ends
    result = await bot.jobs.fire("duty-lead-rotation")
    assert result is not None and "tunnel" in result
    await chat.delivered()
    (notice,) = [t for t in chat.to_user(ADMIN) if "隧道联盟" in t and "2029" in t]
    assert (
        "自 2026年12月15日（星期二） 起任期 3 年" in notice and "将于 2029年12月15日（星期六） 届满" in notice
    )


async def test_weekly_digest_every_monday_to_each_alliance_group(
    bot: BotApp, chat: Chat, clock: ManualClock
) -> None:
    await chat.say("mushandong", "/活动 添加 讲座 12月2日 15:00 盾构施工新技术 名额 30")
    await chat.say("mushandong", "/活动 添加 年会 12月18日 9:00 隧道联盟年会")  # beyond 14 days
    await chat.say(ADMIN, "/活动 添加 会议 12月10日 14:00 联盟负责人会议")  # joint: in every digest
    await chat.say("u1", "/报名 1")
    await chat.delivered()
    clock.set(at(2026, 11, 30))
    assert await bot.jobs.fire("weekly-digest") == "queued 4 digest messages"
    deliveries = await chat.delivered()
    by_group = {d.target.address: d.text for d in deliveries}
    assert set(by_group) == {"桥梁联盟群", "隧道联盟群", "城轨联盟群", "四电联盟群"}
    tunnel = by_group["隧道联盟群"]
    assert tunnel.startswith("【隧道联盟周报】11月23日—11月29日")
    assert "问题：" in tunnel
    assert "未来 14 天的活动（2 项）" in tunnel
    assert "12月2日（星期三）15:00 讲座（大讲堂）「盾构施工新技术」#1，已报名 1/30 人" in tunnel
    assert "联盟负责人会议" in tunnel and "隧道联盟年会" not in tunnel
    assert "讲座" not in by_group["桥梁联盟群"] and "联盟负责人会议" in by_group["桥梁联盟群"]
    # once per Monday, however often the job fires
    assert await bot.jobs.fire("weekly-digest") is None
    clock.advance(minutes=5)
    assert await bot.jobs.fire("weekly-digest") == "queued 0 digest messages"
    clock.set(at(2026, 12, 28))  # nothing ahead: the digest says so; month and year boundary in the title
    await bot.jobs.fire("weekly-digest")
    tunnel = next(
        d.text for d in await chat.delivered() if d.target == Target(TargetKind.CONSOLE, "隧道联盟群")
    )
    assert tunnel.startswith("【隧道联盟周报】12月21日—12月27日") and "未来 14 天没有安排活动" in tunnel
    clock.set(at(2027, 1, 4))
    await bot.jobs.fire("weekly-digest")
    tunnel = next(
        d.text for d in await chat.delivered() if d.target == Target(TargetKind.CONSOLE, "隧道联盟群")
    )
    assert tunnel.startswith("【隧道联盟周报】12月28日—1月3日")
    assert clock.now() - timedelta(days=7) < at(2027, 1, 4)
