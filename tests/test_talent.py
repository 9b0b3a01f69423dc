"""Conversation tests for talent development: check-in within an activity's window and the organiser's 补记
(people trained counted per person), mentorships, titles with their evidence, ``/人才`` summaries and refusals."""

from __future__ import annotations

from datetime import timedelta

from bot.core.clock import ManualClock
from tests.conftest import ADMIN
from tests.harness import Chat

TUNNEL_LEAD = "mushandong"
BRIDGE_LEAD = "gaojiaqiao"
T1_LEAD = "chenjuejin"


async def test_check_in_within_the_window_and_mark_afterwards(chat: Chat, clock: ManualClock) -> None:
    reply = await chat.say(TUNNEL_LEAD, "/活动 添加 培训 明天上午9点到11点 盾构操作培训 @隧道")
    assert "已添加活动 #1" in reply
    too_early = await chat.say("lisi", "/签到 1")
    assert "签到 11月25日 08:30 开始" in too_early
    clock.set(clock.now() + timedelta(hours=22, minutes=45))  # 25 Nov 08:45
    assert await chat.say("lisi", "/签到 1") == "签到成功：活动 #1「盾构操作培训」，您是第 1 位。"
    assert await chat.say("lisi", "/签到 1") == "您已签到过活动 #1「盾构操作培训」。"
    assert "第 2 位" in await chat.say("wangwu", "/签到 1")
    clock.set(clock.now() + timedelta(hours=3))  # 11:45, after the end
    late = await chat.say("zhaoliu", "/签到 1")
    assert "签到已于 11月25日 11:00 结束" in late and "组织者补记" in late
    # only the organiser, the alliance's lead or an admin marks others present
    assert "只有活动的组织者" in await chat.say(T1_LEAD, "/签到 1 补记 zhaoliu")
    reply = await chat.say(TUNNEL_LEAD, "/签到 1 补记 zhaoliu 陈掘进、lisi 外单位王师傅")
    assert (
        reply
        == "已为活动 #1「盾构操作培训」补记 3 人：zhaoliu、陈掘进、外单位王师傅（1 人已签到过）；共 5 人参加。"
    )
    # a lecture counts as training too; a meeting does not
    await chat.say(TUNNEL_LEAD, "/活动 添加 讲座 今天下午3点 盾构新技术 @隧道")
    await chat.say(TUNNEL_LEAD, "/活动 添加 会议 今天下午4点 工作例会 @隧道")
    clock.set(clock.now() + timedelta(hours=4))  # 15:45
    await chat.say("lisi", "/签到 2")
    await chat.say("lisi", "/签到 3")
    summary = await chat.say("lisi", "/人才 隧道")
    assert "培训：举办 2 次，参训 6 人次（5 人）。" in summary
    assert "培训：举办 0 次，参训 0 人次（0 人）。" in await chat.say("lisi", "/人才 桥梁")
    # bad input
    assert "没有编号为 9 的活动" in await chat.say("lisi", "/签到 9")
    assert "用法" in await chat.say("lisi", "/签到 abc")
    await chat.say(TUNNEL_LEAD, "/活动 取消 3")
    assert "已取消，不能签到" in await chat.say("wangwu", "/签到 3")


async def test_mentorships_and_titles(chat: Chat) -> None:
    reply = await chat.say(T1_LEAD, "/人才 带徒 陈掘进 lisi 2026-03-01 两年内取得高级技师")
    assert reply.startswith(
        "已登记名师带徒 #1：盾构掘进控制劳模创新工作室 师傅 陈掘进、徒弟 lisi，2026-03-01 起；目标：两年内取得高级技师"
    )
    assert "只有预应力张拉压浆劳模创新工作室的负责人" in await chat.say(
        T1_LEAD, "/人才 带徒 张拉力 wangwu @B1"
    )
    assert "师傅和徒弟不能是同一个人" in await chat.say(TUNNEL_LEAD, "/人才 带徒 lisi lisi @T1")
    await chat.say(TUNNEL_LEAD, "/人才 带徒 石爆破 wangwu @T2 2025-06-01")
    assert "已登记师徒 #2 出师：取得技师资格" in await chat.say(TUNNEL_LEAD, "/人才 出师 2 取得技师资格")
    # titles: alliance leads for their studios, admins for any, always with evidence
    assert "由联盟负责人或管理员登记" in await chat.say(T1_LEAD, "/人才 称号 lisi 技师 @T1 证书 1")
    assert "只能为本联盟工作室" in await chat.say(BRIDGE_LEAD, "/人才 称号 lisi 技师 @T1 证书 1")
    assert "不认识的称号「宇航员」" in await chat.say(TUNNEL_LEAD, "/人才 称号 lisi 宇航员 @T1 证书 1")
    assert "请写上证明材料" in await chat.say(TUNNEL_LEAD, "/人才 称号 lisi 技师 @T1")
    reply = await chat.say(TUNNEL_LEAD, "/人才 称号 陈掘进 省级工匠 2026-05-01 @T1 省总工会 2026-12号文")
    assert (
        reply
        == "已登记：陈掘进（盾构掘进控制劳模创新工作室） 2026-05-01 获「省级工匠」（工匠），证明：省总工会 2026-12号文"
    )
    await chat.say(TUNNEL_LEAD, "/人才 称号 lisi 高级技师 3月1日 @T1 证书 GJ2026-0153")
    await chat.say(TUNNEL_LEAD, "/人才 称号 wangwu 技师 @T2 证书 J2026-7")
    await chat.say(ADMIN, "/人才 称号 张拉力 全国劳模 2026-04-28 @B1 国务院表彰决定")
    await chat.say(ADMIN, "/人才 称号 某某 技师 2025-04-28 @T1 证书 old")  # another year
    assert "请用 @工作室 指明" in await chat.say(ADMIN, "/人才 称号 某某 技师 证书 x")
    summary = await chat.say("anyone", "/人才 隧道")
    assert "名师带徒：本年新结对 1 对，出师 1 对，在带 1 对。" in summary
    assert "称号与荣誉：技能等级 2 人；工匠 1 人。" in summary
    assert "其中：技师 1 人、高级技师 1 人、省级工匠 1 人。" in summary
    everything = await chat.say("anyone", "/人才")
    assert "称号与荣誉：技能等级 2 人；工匠 1 人；劳模先进 1 人。" in everything
    studio = await chat.say("anyone", "/人才 T1")
    assert "培训" not in studio.split("\n", 1)[1]
    assert "其中：高级技师 1 人、省级工匠 1 人。" in studio
    assert "称号与荣誉：本年尚未登记。" in await chat.say("anyone", "/人才 T1 2024")
    assert "既不是年份" in await chat.say("anyone", "/人才 火星")


async def test_a_message_records_a_title_once(chat: Chat) -> None:
    from bot.store.talent import TalentRepo

    for _ in range(2):
        await chat.say(TUNNEL_LEAD, "/人才 称号 lisi 技师 @T1 证书 1", msg_id="same-message")
    assert len(await TalentRepo(chat.bot.store.sessions).honours()) == 1
