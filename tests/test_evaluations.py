"""Conversation tests for evaluation rounds (评选): a whole round through the chat harness with an injected
clock — open, nominate, score with a conflict of interest refused, reminders before each deadline, the close
by the job, results announced, stars and awards recorded — plus a star rating round closed by command, the
charter's amount ranges, and the refusals on the way."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.app import BotApp
from bot.channels.console import run_console
from bot.core.clock import ManualClock
from bot.handlers.evaluations import SWEEP_JOB
from bot.services.evaluations import EvaluationService, combine
from bot.store.achievements import AchievementRepo
from bot.store.audit import AuditRepo
from tests.conftest import ADMIN, SHANGHAI
from tests.harness import Chat

T1_LEAD, T2_LEAD, T3_LEAD = "chenjuejin", "shibaopo", "fangshuiqing"
B1_LEAD, B2_LEAD, B3_LEAD = "zhanglali", "xuanbining", "zhouzhuanti"
TUNNEL_LEAD, BRIDGE_LEAD = "mushandong", "gaojiaqiao"
PANEL = "评委=陈掘进,张拉力,悬臂宁,周转体,石爆破"
TABLES = ("evaluation_round", "evaluation_nominee", "evaluation_score", "star_history", "studio_checklist")


def _differences(connection: Connection) -> list[object]:
    ours = MetaData()
    for table in SQLModel.metadata.tables.values():  # all of them: foreign keys must resolve
        table.to_metadata(ours)

    def include(obj: object, name: str | None, kind: str, _reflected: bool, _other: object) -> bool:
        table = name if kind == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in (*TABLES, "achievement", "award")

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
    return list(compare_metadata(context, ours))


async def test_migrations_match_models(bot: BotApp) -> None:
    async with bot.store.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


def test_combine_drops_highest_and_lowest_from_five() -> None:
    assert combine([]) is None
    assert combine([80, 90]) == 85
    assert combine([10, 80, 80, 80, 100]) == 80
    assert combine([60, 70, 80, 90]) == 75


def at(clock: ManualClock, month: int, day: int, hour: int = 9) -> datetime:
    clock.set(datetime(2026, month, day, hour, 0, tzinfo=SHANGHAI))
    return clock.now()


async def test_a_whole_achievement_round(chat: Chat, clock: ManualClock) -> None:
    bot = chat.bot
    assert (await chat.say(T1_LEAD, "/成果 登记 工法 盾构管片拼装错台控制工法 T1 2026")).startswith(
        "已登记成果 #1"
    )
    assert (await chat.say(B1_LEAD, "/成果 登记 发明 智能张拉压浆一体化装置 B1 2026")).startswith(
        "已登记成果 #2"
    )
    # who may open, and what a round must say
    assert "只有管理员或联盟负责人" in await chat.say(
        T1_LEAD, f"/评选 发起 成果 {PANEL} 申报截止=12月1日 评分截止=12月10日"
    )
    assert "不认识的评选类型「论文」" in await chat.say(
        ADMIN, "/评选 发起 论文 申报截止=12月1日 评分截止=12月10日"
    )
    assert "请写明评分截止" in await chat.say(ADMIN, f"/评选 发起 成果 {PANEL} 申报截止=12月1日")
    assert "截止时间：" in await chat.say(
        ADMIN, f"/评选 发起 成果 {PANEL} 申报截止=下下下月 评分截止=12月10日"
    )
    assert "评分截止不早于申报截止" in await chat.say(
        ADMIN, f"/评选 发起 成果 {PANEL} 申报截止=12月11日 评分截止=12月10日"
    )
    assert "5,000–20,000 元，50,000 元超出范围" in await chat.say(
        ADMIN, f"/评选 发起 成果 {PANEL} 申报截止=12月1日 评分截止=12月10日 奖金=5万"
    )
    assert "只有管理员可以设置「超范围」" in await chat.say(
        TUNNEL_LEAD, f"/评选 发起 成果 隧道 {PANEL} 申报截止=12月1日 评分截止=12月10日 奖金=5万 超范围"
    )
    assert "联盟负责人只能为本联盟发起" in await chat.say(
        TUNNEL_LEAD, f"/评选 发起 成果 桥梁 {PANEL} 申报截止=12月1日 评分截止=12月10日"
    )
    reply = await chat.say(
        ADMIN,
        f"/评选 发起 成果 全部 {PANEL},防水清 申报截止=12月1日 评分截止=12月10日 名额=1 奖金=2万",
    )
    assert reply.startswith("已发起评选 #1 优秀创新成果评选（全部联盟）"), reply
    assert "创新性 40%、效益 30%、推广价值 30%" in reply and "名额 1" in reply
    assert "评鉴团：陈掘进、张拉力、悬臂宁、周转体、石爆破、防水清" in reply
    assert "申报截止：2026年12月1日 23:59；评分截止：2026年12月10日 23:59" in reply
    opened = await chat.delivered()
    groups = [d for d in opened if d.text.startswith("【评选 #1 优秀创新成果评选 开始申报】")]
    assert len(groups) == 4  # every alliance's group
    assert any("评鉴团成员" in d.text for d in opened if d.target.address == B2_LEAD)

    # nominations: one's own studio's confirmed achievements, once, before the deadline
    assert "只能申报本工作室" in await chat.say(B1_LEAD, "/评选 申报 1 1")
    assert "没有编号为 9 的有效成果" in await chat.say(T1_LEAD, "/评选 申报 1 9")
    assert "没有编号为 5 的评选" in await chat.say(T1_LEAD, "/评选 申报 5 1")
    assert (
        "已申报评选 #1 优秀创新成果评选：申报 1 成果 #1 工法「盾构管片拼装错台控制工法」"
        in await chat.say(T1_LEAD, "/评选 申报 1 1")
    )
    assert "已经申报过了（申报号 1）" in await chat.say(TUNNEL_LEAD, "/评选 申报 1 1")
    assert "申报 2 成果 #2" in await chat.say(BRIDGE_LEAD, "/评选 申报 1 #2")
    # each panel member is asked to score each nominee, except the one whose studio it is (回避)
    asked = [d for d in await chat.delivered() if "待评分】" in d.text]
    by_nominee = {
        n: {d.target.address for d in asked if f"待评分】申报 {n} " in d.text} for n in (1, 2)
    }
    assert len(asked) == 10 and T1_LEAD not in by_nominee[1] and B1_LEAD not in by_nominee[2]
    assert B1_LEAD in by_nominee[1] and T1_LEAD in by_nominee[2]
    assert all("/评选 评分 1 " in d.text for d in asked)

    # a day before the nomination deadline, the leads who have not nominated are reminded, once
    at(clock, 12, 1, 9)
    assert await bot.jobs.fire(SWEEP_JOB) == "reminded 10, closed 0"
    reminders = await chat.delivered()
    assert {d.target.address for d in reminders} >= {T2_LEAD, T3_LEAD, B2_LEAD}
    assert not [d for d in reminders if d.target.address in (T1_LEAD, B1_LEAD)]
    assert "申报将于 2026年12月1日 23:59 截止" in reminders[0].text
    clock.advance(minutes=30)
    assert await bot.jobs.fire(SWEEP_JOB) == "reminded 0, closed 0"
    at(clock, 12, 2, 9)
    assert "申报已于 2026年12月1日 23:59 截止" in await chat.say(T2_LEAD, "/评选 申报 1 1")

    # scoring: panel members only, never their own studio's achievement, criteria in order, 0–100
    assert "您不是评选 #1 优秀创新成果评选的评鉴团成员" in await chat.say(
        TUNNEL_LEAD, "/评选 评分 1 1 90 90 90"
    )
    assert "回避：申报 1 成果 #1" in await chat.say(T1_LEAD, "/评选 评分 1 1 90 90 90")
    assert "请按「创新性、效益、推广价值」的顺序写 3 个" in await chat.say(B1_LEAD, "/评选 评分 1 1 90 90")
    assert "分数应在 0 到 100 之间" in await chat.say(B1_LEAD, "/评选 评分 1 1 90 90 190")
    assert "没有申报号 7" in await chat.say(B1_LEAD, "/评选 评分 1 7 90 90 90")
    details = await chat.say(T1_LEAD, "/评选 1")
    assert (
        "申报 1 成果 #1 工法「盾构管片拼装错台控制工法」（2026）：0 人已评分（回避：陈掘进） — 您需回避"
        in details
    )
    assert "申报 2 成果 #2" in details and "（回避：张拉力） — 待您评分" in details
    assert "已评分：申报 1 成果 #1" in await chat.say(B1_LEAD, "/评选 评分 1 1 90 80 70")
    assert "已更新评分" in await chat.say(B1_LEAD, "/评选 评分 1 1 创新性=100 效益=100 推广价值=100")
    for user, marks in (
        (B2_LEAD, "80 80 80"),
        (B3_LEAD, "70 70 70"),
        (T2_LEAD, "60 60 60"),
        (T3_LEAD, "50 50 50"),
    ):
        assert (await chat.say(user, f"/评选 评分 1 1 {marks}")).startswith("已评分")
    for user, marks in ((T1_LEAD, "90 90 90"), (B2_LEAD, "85 85 85")):
        assert (await chat.say(user, f"/评选 评分 1 2 {marks}")).startswith("已评分")
    # a retried score is recorded once
    first = await chat.say(B3_LEAD, "/评选 评分 1 2 95 95 95", msg_id="score-b3")
    assert first == await chat.say(B3_LEAD, "/评选 评分 1 2 95 95 95", msg_id="score-b3")
    service = bot.runtime.feature(EvaluationService)
    assert len(await service.repo.scores(1)) == 8

    # a day before the scoring deadline, those with nominees left to score are reminded
    await chat.delivered()
    at(clock, 12, 10, 9)
    assert await bot.jobs.fire(SWEEP_JOB) == "reminded 2, closed 0"
    reminders = await chat.delivered()
    assert sorted(d.target.address for d in reminders) == sorted([T2_LEAD, T3_LEAD])
    assert "申报号 2 未评分" in reminders[0].text

    # after the deadline the job closes the round: trimmed mean, ranked, announced, the award recorded once
    at(clock, 12, 11, 0)
    assert await bot.jobs.fire(SWEEP_JOB) == "reminded 0, closed 1"
    results = [d for d in await chat.delivered() if d.text.startswith("【评选 #1 优秀创新成果评选 结果】")]
    assert len(results) == 4
    text = results[0].text
    # nominee 2: 90, 85, 95 → mean 90; nominee 1: 100, 80, 70, 60, 50 → 70 without the highest and lowest
    assert (
        "1. 申报 2 成果 #2 发明专利「智能张拉压浆一体化装置」（2026）：90 分（3 人评分）✔ 入选，奖励 20,000 元"
        in text
    )
    assert (
        "2. 申报 1 成果 #1 工法「盾构管片拼装错台控制工法」（2026）：70 分（5 人评分）未入选" in text
    )  # quota 1
    clock.advance(minutes=30)
    assert await bot.jobs.fire(SWEEP_JOB) == "reminded 0, closed 0"
    assert "已经结束了" in await chat.say(ADMIN, "/评选 结束 1")
    assert "已结束，不能再评分" in await chat.say(B1_LEAD, "/评选 评分 1 2 90 90 90")
    awards = await AchievementRepo(bot.store.sessions).awards()
    assert [(a.achievement_id, a.amount, a.name) for a in awards] == [
        (2, 20000, "优秀创新成果评选（评选 #1）")
    ]
    details = await chat.say(ADMIN, "/评选 1")
    assert "已结束" in details and "90 分，第 1 名，入选" in details and "70 分，第 2 名，未入选" in details
    assert "奖励：2026年 优秀创新成果评选（评选 #1） 20,000 元" in await chat.say(ADMIN, "/成果 2")
    assert "评选 #1 优秀创新成果评选（已结束" in await chat.say(ADMIN, "/评选")


async def test_a_star_round_closed_by_command_updates_stars_with_history(
    chat: Chat, clock: ManualClock
) -> None:
    bot = chat.bot
    assert "章程规定五星级工作室奖励 30,000 元" in await chat.say(
        ADMIN, "/评选 发起 星级 隧道 评委=张拉力 申报截止=11月30日 评分截止=12月5日 奖金=2万"
    )
    reply = await chat.say(
        TUNNEL_LEAD, "/评选 发起 星级 评委=张拉力,悬臂宁 申报截止=11月30日 评分截止=12月5日"
    )
    assert reply.startswith("已发起评选 #1 星级工作室评定（隧道联盟）"), reply
    assert "八有条件 40%" in reply
    assert "只面向本联盟" in await chat.say(B1_LEAD, "/评选 申报 1 B1")
    assert "工作室负责人只能申报本工作室" in await chat.say(T2_LEAD, "/评选 申报 1 T3")
    assert "星级请写 三星、四星或五星" in await chat.say(T3_LEAD, "/评选 申报 1 T3 六星")
    assert "申报 1 隧道防排水与衬砌质量工作室（T3） 申报四星" in await chat.say(T3_LEAD, "/评选 申报 1 T3")
    assert "申报 2 钻爆法隧道工匠工作室（T2） 申报五星" in await chat.say(T2_LEAD, "/评选 申报 1 T2 五星")
    for user in (B1_LEAD, B2_LEAD):
        assert (await chat.say(user, "/评选 评分 1 1 80 80 80")).startswith("已评分")
        assert (await chat.say(user, "/评选 评分 1 2 90 90 90")).startswith("已评分")
    assert "只有发起人、本联盟负责人或管理员" in await chat.say(BRIDGE_LEAD, "/评选 结束 1")
    reply = await chat.say(TUNNEL_LEAD, "/评选 结束 1")
    assert reply == "评选 #1 星级工作室评定 已结束：2 个申报对象，2 个入选。结果已发到联盟群。", reply
    (result,) = [d for d in await chat.delivered() if "结果】" in d.text]
    assert (
        "1. 申报 2 钻爆法隧道工匠工作室（T2） 申报五星：90 分（2 人评分）✔ 入选，奖励 30,000 元"
        in result.text
    )
    studios = {s.id: s.stars for s in await bot.store.studios.all()}
    assert (studios["T2"], studios["T3"]) == (5, 4)
    history = await bot.runtime.feature(EvaluationService).repo.star_history()
    assert [(h.studio_id, h.before, h.after, h.round_id, h.actor) for h in history] == [
        ("T2", 4, 5, 1, TUNNEL_LEAD),
        ("T3", 3, 4, 1, TUNNEL_LEAD),
    ]
    assert "星级：★★★★★" in await chat.say(ADMIN, "/工作室 T2")
    audit = await AuditRepo(bot.store.sessions).history("studio", "T2")
    assert [(e.action, e.before, e.after) for e in audit] == [("stars", {"stars": 4}, {"stars": 5})]
    awards = await AchievementRepo(bot.store.sessions).awards()
    assert [(a.studio_id, a.amount) for a in awards] == [("T2", 30000)]


async def test_an_admin_may_override_the_charter_amount(chat: Chat) -> None:
    reply = await chat.say(
        ADMIN, "/评选 发起 成果 全部 评委=张拉力 申报截止=11月30日 评分截止=12月5日 奖金=5万 超范围"
    )
    assert "奖励：每项 50,000 元（超出章程范围，管理员确认）" in reply
    assert "还没有申报对象" in await chat.say(ADMIN, "/评选 1")
    assert "0 个申报对象，0 个入选" in await chat.say(ADMIN, "/评选 结束 1")
    assert timedelta(0) == timedelta(0)


async def console(bot: BotApp, user: str, *lines: str) -> str:
    """Type lines into the console channel as ``user``; what it printed (replies and deliveries)."""
    out = io.StringIO()
    await run_console(bot, user_id=user, stdin=io.StringIO("".join(f"{line}\n" for line in lines)), out=out)
    return out.getvalue()


async def test_a_round_through_the_console_channel(bot: BotApp, clock: ManualClock) -> None:
    printed = await console(bot, T1_LEAD, "/成果 登记 工法 盾构管片拼装错台控制工法 T1 2026")
    assert "已登记成果 #1" in printed
    printed = await console(
        bot, ADMIN, "/评选 发起 成果 隧道 评委=陈掘进,张拉力 申报截止=11月30日 评分截止=12月5日"
    )
    assert "已发起评选 #1 优秀创新成果评选（隧道联盟）" in printed
    assert "↪ [群 → 隧道联盟群]" in printed and "【评选 #1 优秀创新成果评选 开始申报】" in printed
    assert "↪ [私信 → zhanglali]" in printed
    assert "已申报评选 #1" in await console(bot, T1_LEAD, "/评选 申报 1 1")
    printed = await console(bot, T1_LEAD, "/评选 评分 1 1 90 90 90", "/评选 1")
    assert "回避：申报 1" in printed and "您需回避" in printed
    at(clock, 12, 5, 9)
    assert await bot.jobs.fire(SWEEP_JOB) == "reminded 1, closed 0"
    printed = await console(bot, B1_LEAD, "/评选 评分 1 1 80 70 60")
    assert "↪ [私信 → zhanglali]" in printed and "申报号 1 未评分" in printed  # the reminder, delivered
    assert "已评分" in printed
    at(clock, 12, 6, 9)
    assert await bot.jobs.fire(SWEEP_JOB) == "reminded 0, closed 1"
    printed = await console(bot, ADMIN, "/评选 1", "/成果 1")
    assert "【评选 #1 优秀创新成果评选 结果】" in printed and "奖励 10,000 元" in printed
    assert (
        "71 分，第 1 名，入选" in printed and "奖励：2026年 优秀创新成果评选（评选 #1） 10,000 元" in printed
    )


async def test_bad_round_settings_are_explained(chat: Chat) -> None:
    assert "请写明评选类型" in await chat.say(ADMIN, "/评选 发起")
    base = "/评选 发起 成果 评委=张拉力 申报截止=11月30日 评分截止=12月5日"
    assert "名额至少为 1" in await chat.say(ADMIN, f"{base} 名额=0")
    assert "入选线应在 0 到 100 分之间" in await chat.say(ADMIN, f"{base} 入选线=101")
    assert "请写名额（数字）" in await chat.say(ADMIN, f"{base} 名额=三")
    assert "名称不能重复" in await chat.say(ADMIN, f"{base} 标准=创新:50,创新:50")
    assert "权重看不懂" in await chat.say(ADMIN, f"{base} 标准=创新:多")
    assert "不认识的设置「颜色」" in await chat.say(ADMIN, f"{base} 颜色=红")
    assert "「火星」看不懂" in await chat.say(ADMIN, f"{base} 火星")
    assert "请写明评鉴团成员" in await chat.say(ADMIN, "/评选 发起 成果 申报截止=11月30日 评分截止=12月5日")
    assert "不认识的子命令「乱写」" in await chat.say(ADMIN, "/评选 乱写")
    assert "还没有评选" in await chat.say(ADMIN, "/评选")
    assert "没有编号为 3 的评选" in await chat.say(ADMIN, "/评选 3")
    assert "请写明要确认哪一条" in await chat.say(ADMIN, "/八有 T1 确认")
