"""Conversation tests for the benefit chain: applications with their direct economic benefit, patents and 推广
status recorded on an achievement (audited), shown by ``/成果 N`` and, topic → achievements → benefit, by
``/课题 N``; refusals for who may record and for bad input."""

from __future__ import annotations

from bot.store.audit import AuditRepo
from tests.conftest import ADMIN
from tests.harness import Chat

T1_LEAD = "chenjuejin"
T2_LEAD = "shibaopo"
B1_LEAD = "zhanglali"
TUNNEL_LEAD = "mushandong"


async def test_topic_to_achievements_to_benefit(chat: Chat) -> None:
    await chat.say(ADMIN, "/立项! 盾构管片拼装错台控制研究 @T1")
    await chat.say(ADMIN, "/成果 登记 工法 盾构管片拼装错台控制施工工法 T1 2026 #T-1")
    await chat.say(ADMIN, "/成果 登记 实用新型专利 一种管片拼装定位装置 T1 2026 #T-1")
    reply = await chat.say(T1_LEAD, "/效益 1 应用 郑州地铁5号线 中铁隧道局 2026-05-01 120万 减少返工")
    assert reply == (
        "已登记成果 #1 的应用：2026-05-01 郑州地铁5号线、中铁隧道局，直接经济效益 1,200,000 元（120 万元）。"
        "发送 /成果 1 查看转化链。"
    )
    await chat.say(TUNNEL_LEAD, "/效益 1 应用 洛阳地铁2号线 3月2日 30万")
    await chat.say(T1_LEAD, "/效益 2 应用 济南地铁 8000")
    assert "ZL202610123456.7、ZL202620000001.1" in await chat.say(
        T1_LEAD, "/效益 2 专利 ZL202610123456.7、ZL202620000001.1"
    )
    assert await chat.say(T1_LEAD, "/效益 1 推广 已推广") == "成果 #1 推广状态：已推广"
    details = await chat.say("anyone", "/成果 1")
    assert "应用：2026-03-02 洛阳地铁2号线，直接经济效益 300,000 元（30 万元）" in details
    assert "应用：2026-05-01 郑州地铁5号线、中铁隧道局，直接经济效益 1,200,000 元（120 万元）" in details
    assert "直接经济效益合计：1,500,000 元（150 万元）（2 处应用）" in details
    assert "推广：已推广" in details
    assert "专利号：ZL202610123456.7、ZL202620000001.1" in await chat.say("anyone", "/成果 2")
    topic = await chat.say("anyone", "/课题 T-1")
    assert "成果与效益（课题 → 成果 → 效益）：" in topic
    assert (
        "  → 成果 #1 工法「盾构管片拼装错台控制施工工法」，应用 2 处，效益 1,500,000 元（150 万元）" in topic
    )
    assert "  → 成果 #2 实用新型专利「一种管片拼装定位装置」，应用 1 处，效益 8,000 元" in topic
    assert "  直接经济效益合计：1,508,000 元（150.8 万元）" in topic
    trail = await AuditRepo(chat.bot.store.sessions).recent(entity="achievement_application")
    assert [e.after["benefit"] for e in reversed(trail)] == [1_200_000, 300_000, 8_000]
    assert [
        e.after["promotion"]
        for e in await AuditRepo(chat.bot.store.sessions).history("achievement_protection", 1)
    ] == ["已推广"]


async def test_refusals(chat: Chat) -> None:
    await chat.say(ADMIN, "/成果 登记 工法 盾构管片拼装错台控制施工工法 T1 2026")
    assert "只有完成工作室的负责人" in await chat.say(B1_LEAD, "/效益 1 应用 某项目 10万")
    assert "只有完成工作室的负责人" in await chat.say(T2_LEAD, "/效益 1 推广 推广中")
    assert "需要「工作室负责人」" in await chat.say("anyone", "/效益 1 应用 某项目 10万")
    assert "没有编号为 9 的成果" in await chat.say(T1_LEAD, "/效益 9 应用 某项目 10万")
    assert "请写上直接经济效益" in await chat.say(T1_LEAD, "/效益 1 应用 某项目")
    assert "推广状态应为" in await chat.say(T1_LEAD, "/效益 1 推广 很好")
    assert "请先写成果编号" in await chat.say(T1_LEAD, "/效益 应用 某项目")
    assert "尚未登记应用" in await chat.say(T1_LEAD, "/效益 1")
    # /成果 N is unchanged while nothing of the chain is recorded
    assert "推广" not in await chat.say("anyone", "/成果 1")
    await chat.say(T1_LEAD, "/效益 1 应用 某项目 10万", msg_id="once")
    await chat.say(T1_LEAD, "/效益 1 应用 某项目 10万", msg_id="once")
    assert "（1 处应用）" in await chat.say("anyone", "/成果 1")
