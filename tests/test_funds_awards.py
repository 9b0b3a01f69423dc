"""Awards recorded elsewhere are 奖励 spending of the ledger: ``/奖励`` and an evaluation round's awards count
once against each alliance's 奖励 budget, ``/奖励`` is refused past it with the reason unless an admin overrides
(特批), an evaluation round (decided by its panel) is flagged instead; the ledger shows each award once."""

from __future__ import annotations

from bot.store.achievements import AchievementRepo
from bot.store.audit import AuditRepo
from tests.conftest import ADMIN
from tests.harness import Chat

TUNNEL_LEAD, BRIDGE_LEAD = "mushandong", "gaojiaqiao"


async def test_award_past_the_award_budget_is_refused_unless_an_admin_overrides(chat: Chat) -> None:
    assert "预算设为 20,000 元" in await chat.say(TUNNEL_LEAD, "/经费 预算 奖励 2万")
    refused = await chat.say(ADMIN, "/奖励 T1 3万 2026 五星级工作室")
    assert refused.startswith("未记录奖励。超出预算：隧道联盟2026年「奖励」预算 20,000 元，已支出 0 元，本笔 30,000 元")
    assert "在 /奖励 命令末尾加「特批 理由」" in refused
    assert await AchievementRepo(chat.bot.store.sessions).awards() == []
    assert (await chat.say(TUNNEL_LEAD, "/奖励 T1 1万 2026 季度之星")).startswith("已记录奖励 #1")
    assert "· 奖励 10,000 / 预算 20,000 元，执行 50%" in await chat.say(TUNNEL_LEAD, "/经费")
    refused = await chat.say(TUNNEL_LEAD, "/奖励 T2 2万 2026 优秀工作室")
    assert "已支出 10,000 元，本笔 20,000 元后将达 30,000 元（超 10,000 元）" in refused
    assert "只有管理员可以特批超预算的奖励" in await chat.say(TUNNEL_LEAD, "/奖励 T2 2万 2026 优秀 特批 急需")
    reply = await chat.say(ADMIN, "/奖励 T2 2万 2026 优秀工作室 特批 集团追加")
    assert reply.startswith("已记录奖励 #2：2026年「优秀工作室」20,000 元")
    assert "管理员特批：超出预算" in reply
    (award,) = [a for a in await AchievementRepo(chat.bot.store.sessions).awards() if a.id == 2]
    assert (award.name, award.note) == ("优秀工作室", "特批：集团追加")
    trail = await AuditRepo(chat.bot.store.sessions).history("award", 2)
    assert [(e.action, e.reason) for e in trail] == [("create", "集团追加")]
    # once in the ledger: the awards' shares are the 奖励 spending, and the budget holds for /经费 too
    summary = await chat.say(TUNNEL_LEAD, "/经费")
    assert "· 奖励 30,000 / 预算 20,000 元，执行 150%" in summary and "支出合计 30,000 元" in summary
    assert "未登记。超出预算" in await chat.say(TUNNEL_LEAD, "/经费 支出 奖励 1000 奖金")
    linked = await chat.say(TUNNEL_LEAD, "/经费 支出 奖励 奖励#1 颁奖")  # its share, already counted
    assert "支出 #1 奖励 10,000 元" in linked
    assert "支出合计 30,000 元" in await chat.say(TUNNEL_LEAD, "/经费")
    # raising an award's amount is checked as a new award (its old share leaves first)
    refused = await chat.say(TUNNEL_LEAD, "/奖励 修改 2 金额=3万 原因=更正")
    assert refused.startswith("未修改奖励。超出预算") and "已支出 10,000 元，本笔 30,000 元" in refused
    assert "金额" in await chat.say(ADMIN, "/奖励 修改 2 金额=3万 原因=更正 特批")
    # a joint award: each alliance's share against its own budget (the bridge alliance has none)
    await chat.say(ADMIN, "/成果 登记 工法 盾构管片拼装质量控制工法 T1 B1 2026")
    refused = await chat.say(BRIDGE_LEAD, "/奖励 1 2万 2026 优秀成果")
    assert "隧道联盟2026年「奖励」预算 20,000 元" in refused and "本笔 10,000 元" in refused
    assert "/经费 预算 奖励" in refused


async def test_an_evaluation_round_award_past_the_budget_is_flagged(chat: Chat) -> None:
    bot = chat.bot
    await chat.say(TUNNEL_LEAD, "/经费 预算 奖励 1万")
    await chat.say(TUNNEL_LEAD, "/评选 发起 星级 评委=张拉力,悬臂宁 申报截止=11月30日 评分截止=12月5日")
    await chat.say("shibaopo", "/评选 申报 1 T2 五星")
    for user in ("zhanglali", "xuanbining"):
        assert (await chat.say(user, "/评选 评分 1 1 90 90 90")).startswith("已评分")
    assert "1 个入选" in await chat.say(TUNNEL_LEAD, "/评选 结束 1")
    (result,) = [d for d in await chat.delivered() if "结果】" in d.text]
    assert "奖励 30,000 元（超出奖励预算，已记入审计日志）" in result.text
    (award,) = await AchievementRepo(bot.store.sessions).awards()
    (created,) = await AuditRepo(bot.store.sessions).history("award", award.id or 0)
    assert "超预算提醒：超出预算：隧道联盟2026年「奖励」预算 10,000 元" in created.reason
    assert "· 奖励 30,000 / 预算 10,000 元，执行 300%" in await chat.say(TUNNEL_LEAD, "/经费")
