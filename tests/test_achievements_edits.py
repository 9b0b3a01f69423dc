"""Conversation tests for correcting achievements and awards: edit and withdraw (撤销) with a reason, the role
checks, the audit trail shown in ``/成果 N``, and withdrawn records left out of ``/奖励列表`` and the figures."""

from __future__ import annotations

from bot.services.achievements.service import AchievementService
from bot.store.audit import AuditRepo
from tests.conftest import ADMIN
from tests.harness import Chat

T1_LEAD = "chenjuejin"
B1_LEAD = "zhanglali"
TUNNEL_LEAD = "mushandong"
BRIDGE_LEAD = "gaojiaqiao"


async def registered(chat: Chat) -> None:
    reply = await chat.say(T1_LEAD, "/成果 登记 工法 盾构管片拼装错台控制工法 T1 2026")
    assert reply.startswith("已登记成果 #1 工法「盾构管片拼装错台控制工法」（2026）"), reply
    reply = await chat.say(TUNNEL_LEAD, "/奖励 1 200000 2026 优秀成果奖")
    assert reply.startswith("已记录奖励 #1："), reply


async def test_an_award_typo_is_corrected_with_the_reason_on_record(chat: Chat) -> None:
    await registered(chat)
    # a reason is required, the field must be known, and the role is checked in the service
    assert "请写明修改原因" in await chat.say(TUNNEL_LEAD, "/奖励 修改 1 金额=2万")
    assert "不能修改「颜色」" in await chat.say(TUNNEL_LEAD, "/奖励 修改 1 颜色=红 原因=试试")
    assert "金额「两万」看不懂" in await chat.say(TUNNEL_LEAD, "/奖励 修改 1 金额=两万 原因=录错")
    assert "只有本联盟的联盟负责人或管理员" in await chat.say(BRIDGE_LEAD, "/奖励 修改 1 金额=2万 原因=录错")
    assert "需要「联盟负责人」" in await chat.say(T1_LEAD, "/奖励 修改 1 金额=2万 原因=录错")
    assert "没有编号为 9 的奖励" in await chat.say(TUNNEL_LEAD, "/奖励 修改 9 金额=2万 原因=录错")
    reply = await chat.say(TUNNEL_LEAD, "/奖励 修改 1 金额=2万 多写了一个零")
    assert reply == "已修改奖励 #1：金额 200000→20000。原因：多写了一个零。", reply
    assert "新值和原来的一样" in await chat.say(TUNNEL_LEAD, "/奖励 修改 1 金额=20000 原因=再改")
    awards = await chat.say(ADMIN, "/奖励列表 2026")
    assert "合计 20,000 元" in awards and "#1 优秀成果奖 20,000 元" in awards
    details = await chat.say(T1_LEAD, "/成果 1")
    assert "奖励：2026年 优秀成果奖 20,000 元（奖励 #1）" in details
    assert "修改记录：" in details
    assert "穆山洞 修改奖励 #1：金额 200000→20000，原因：多写了一个零" in details
    (entry,) = await AuditRepo(chat.bot.store.sessions).history("award", 1)
    assert (entry.actor, entry.action, entry.before, entry.after) == (
        TUNNEL_LEAD,
        "edit",
        {"amount": 200000},
        {"amount": 20000},
    )


async def test_an_achievement_is_edited_by_its_studio_and_withdrawn_with_its_awards(chat: Chat) -> None:
    await registered(chat)
    assert "只有成果所属工作室的负责人" in await chat.say(B1_LEAD, "/成果 1 修改 年份=2025 原因=写错")
    assert "只有成果所属工作室的负责人" in await chat.say(BRIDGE_LEAD, "/成果 1 撤销 重复登记")
    assert "年份「3000」不对" in await chat.say(T1_LEAD, "/成果 1 修改 年份=3000 原因=写错")
    assert "不认识的成果类型「论文」" in await chat.say(T1_LEAD, "/成果 1 修改 类型=论文 原因=写错")
    assert "您不能把成果记到B1名下" in await chat.say(T1_LEAD, "/成果 1 修改 工作室=T1、B1 原因=合作")
    reply = await chat.say(T1_LEAD, "/成果 1 修改 名称=盾构管片 拼装错台控制工法 年份=2025 原因=名称有误")
    assert reply.startswith("已修改成果 #1 工法「盾构管片 拼装错台控制工法」（2025）：名称 "), reply
    assert "年份 2026→2025" in reply and "原因：名称有误" in reply
    assert "/成果 1 修改 字段=值" in await chat.say(T1_LEAD, "/成果 1 改名 x")
    assert "请写明修改原因" in await chat.say(TUNNEL_LEAD, "/成果 1 撤销")
    reply = await chat.say(TUNNEL_LEAD, "/成果 1 撤销 与成果 7 重复")
    assert reply.startswith("已撤销成果 #1") and "奖励 #1 一并撤销" in reply, reply
    assert "已经撤销过了" in await chat.say(TUNNEL_LEAD, "/成果 1 撤销 再撤")
    assert "已撤销，不能再修改" in await chat.say(T1_LEAD, "/成果 1 修改 年份=2024 原因=x")
    assert "2025年还没有记录奖励" in await chat.say(ADMIN, "/奖励列表 2025")
    assert "2026年还没有记录奖励" in await chat.say(ADMIN, "/奖励列表 2026")
    assert "成果库还是空的" in await chat.say(ADMIN, "/成果")
    details = await chat.say(ADMIN, "/成果 1")
    assert "状态：已撤销，不计入统计" in details and "（已撤销）" in details
    assert (
        "陈掘进 修改成果：" in details
        and "穆山洞 撤销成果：状态 已确认→已撤销，原因：与成果 7 重复" in details
    )
    assert "穆山洞 撤销奖励 #1：状态 有效→已撤销，原因：随成果 #1 撤销" in details
    service = chat.bot.runtime.feature(AchievementService)
    assert await service.achievements.all() == []
    # a retried message changes nothing twice: the audit trail has one entry per change
    entries = await AuditRepo(chat.bot.store.sessions).recent()
    assert len(entries) == 3


async def test_a_retried_edit_is_applied_once(chat: Chat) -> None:
    await registered(chat)
    first = await chat.say(TUNNEL_LEAD, "/奖励 修改 1 金额=2万 录错", msg_id="edit-1")
    again = await chat.say(TUNNEL_LEAD, "/奖励 修改 1 金额=2万 录错", msg_id="edit-1")
    assert first == again and first.startswith("已修改奖励 #1")
    assert len(await AuditRepo(chat.bot.store.sessions).history("award", 1)) == 1


async def test_crediting_another_studio_waits_for_its_confirmation(chat: Chat) -> None:
    reply = await chat.say(T1_LEAD, "/成果 登记 工法 盾构与桥梁联合施工工法 T1 B1 2026")
    assert "待确认：涉及预应力张拉压浆劳模创新工作室，需其负责人或所在联盟负责人发送 /成果 1 确认" in reply
    (asked,) = chat.to_user(B1_LEAD)
    assert (
        asked.startswith("【成果待确认】成果 #1 工法「盾构与桥梁联合施工工法」") and "/成果 1 确认" in asked
    )
    # pending: not counted, not listed, no award, and only B1's lead or the bridge alliance lead confirms
    assert "成果库还是空的" in await chat.say(ADMIN, "/成果")
    assert "状态：待预应力张拉压浆劳模创新工作室确认" in await chat.say(ADMIN, "/成果 1")
    assert "尚待确认，不能记录奖励" in await chat.say(TUNNEL_LEAD, "/奖励 1 2万")
    assert "您不在其中" in await chat.say(TUNNEL_LEAD, "/成果 1 确认")
    assert "您不在其中" in await chat.say("xuanbining", "/成果 1 确认")
    reply = await chat.say(BRIDGE_LEAD, "/成果 1 确认")
    assert (
        reply
        == "已确认成果 #1 工法「盾构与桥梁联合施工工法」（2026）（预应力张拉压浆劳模创新工作室），成果已计入统计。"
    )
    assert "不需要确认（已确认）" in await chat.say(B1_LEAD, "/成果 1 确认")
    assert "共 1 项" in await chat.say(ADMIN, "/成果")
    assert "高架桥 确认成果：待确认工作室 B1→—；状态 待确认→已确认" in await chat.say(ADMIN, "/成果 1")
    service = chat.bot.runtime.feature(AchievementService)
    assert [a.id for a in await service.achievements.all()] == [1]
