"""Conversation tests for a studio's record (``/工作室 T1 档案``) and its "八有" checklist (``/八有``)."""

from __future__ import annotations

from datetime import timedelta

from bot.core.clock import ManualClock
from tests.conftest import ADMIN
from tests.harness import Chat

T1_LEAD, T2_LEAD = "chenjuejin", "shibaopo"
TUNNEL_LEAD, BRIDGE_LEAD = "mushandong", "gaojiaqiao"
ASKER = "worker1"
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"


async def test_the_record_counts_problems_achievements_awards_and_stars(
    chat: Chat, clock: ManualClock
) -> None:
    reply = await chat.say(ASKER, SHIELD, group="隧道联盟群")
    assert reply.startswith("已登记技术问题 #1"), reply
    clock.advance(hours=2)
    assert "已认领问题 #1" in await chat.say(T1_LEAD, "/认领 1")
    clock.advance(hours=3)
    assert "已答复问题 #1" in await chat.say(T1_LEAD, "/答复 1 降低推进速度，检查土压传感器")
    await chat.say(ASKER, "/解决 1")
    assert (await chat.say(T1_LEAD, "/成果 登记 工法 盾构管片拼装错台控制工法 T1 2026")).startswith("已登记")
    assert (await chat.say(TUNNEL_LEAD, "/奖励 1 2万 2026 优秀成果奖")).startswith("已记录奖励")
    reply = await chat.say(ADMIN, "/评选 发起 星级 隧道 评委=张拉力 申报截止=11月30日 评分截止=12月5日")
    assert reply.startswith("已发起评选 #1")
    assert "申报" in await chat.say(T1_LEAD, "/评选 申报 1 T1 五星")
    assert "已评分" in await chat.say("zhanglali", "/评选 评分 1 1 90 90 90")
    assert "已结束" in await chat.say(ADMIN, "/评选 结束 1")
    assert "已添加" in await chat.say(TUNNEL_LEAD, "/活动 添加 培训 12月20日14:00 盾构掘进操作培训")
    assert "报名成功" in await chat.say(T1_LEAD, "/报名 1")
    record = await chat.say(T2_LEAD, "/工作室 T1 档案")
    assert record.startswith("【盾构掘进控制劳模创新工作室（T1）档案】当前星级：五星"), record
    line = next(line for line in record.splitlines() if line.startswith("2026年："))
    assert "认领 1、答复 1、解决 1" in line and "认领用时中位 2 小时，解决用时中位" in line
    assert "活动 主办 0（其中培训 0）、参加 1" in line
    assert "成果 工法 1" in line and "奖励 2 项 50,000 元" in line  # with the five-star award
    assert "  · 评选 #1 星级工作室评定 90 分 入选" in record
    assert "「八有」0/8" in record and "☐ 有创新团队" in record
    assert "没有编号为 X9 的工作室" in await chat.say(T2_LEAD, "/工作室 X9 档案")


async def test_checklist_is_confirmed_by_an_alliance_lead(chat: Chat, clock: ManualClock) -> None:
    assert "只有本联盟的联盟负责人或管理员" in await chat.say(BRIDGE_LEAD, "/八有 T1 确认 有创新团队")
    assert "只有本联盟的联盟负责人或管理员" in await chat.say(T1_LEAD, "/八有 T1 确认 有创新团队")
    assert "没有「有奖金」这一条" in await chat.say(TUNNEL_LEAD, "/八有 T1 确认 有奖金")
    reply = await chat.say(TUNNEL_LEAD, "/八有 T1 确认 场所设备 实验室已验收")
    assert reply == "已确认盾构掘进控制劳模创新工作室（T1）的「有场所设备」。发送 /八有 T1 查看全部。"
    clock.advance(timedelta(days=1))
    assert "已由穆山洞于 2026-11-24 确认过" in await chat.say(ADMIN, "/八有 T1 确认 有场所设备")
    shown = await chat.say(T1_LEAD, "/八有 T1")
    assert "「八有」1/8" in shown and "☑ 有场所设备（穆山洞 2026-11-24 确认，实验室已验收）" in shown
    assert "☑ 有场所设备" in await chat.say(T1_LEAD, "/工作室 T1 档案")
