"""Conversation tests for joint research topics: proposing (with the near-duplicate check), support up to the
quorum, joining the team (``/join T-3`` vs ``/join 3`` for events), progress, conclusion, listings; each with
its refusals."""

from __future__ import annotations

import pytest

from bot.core.dispatcher import UsageError
from bot.core.messages import Target, TargetKind
from bot.handlers.topics import is_topic_ref, parse_topic_id, split_title
from tests.conftest import ADMIN
from tests.harness import Chat

T1_LEAD = "chenjuejin"  # 盾构掘进控制劳模创新工作室 (T1), 隧道联盟
T2_LEAD = "shibaopo"  # 钻爆法隧道工匠工作室 (T2)
T3_LEAD = "fangshuiqing"  # 隧道防排水与衬砌质量工作室 (T3)
B2_LEAD = "xuanbining"  # 挂篮悬浇与连续梁工匠工作室 (B2), 桥梁联盟
U1_LEAD = "hejikeng"  # 地铁车站深基坑工作室 (U1), 城轨联盟
TUNNEL_LEAD = "mushandong"  # 隧道联盟 lead, leads no studio
TUNNEL_GROUP = Target(TargetKind.CONSOLE, "隧道联盟群")
BRIDGE_GROUP = Target(TargetKind.CONSOLE, "桥梁联盟群")
URBAN_GROUP = Target(TargetKind.CONSOLE, "城轨联盟群")

PROPOSAL = "/立项 盾构管片拼装质量控制 研究管片错台、破损的成因与对策"


def group_texts(chat: Chat, target: Target) -> list[str]:
    return [d.text for d in chat.sender.deliveries if d.target == target]


async def approved_topic(chat: Chat) -> None:
    """T-1 proposed by T1 and approved with T2 and B2 (quorum 3)."""
    await chat.say(T1_LEAD, PROPOSAL)
    await chat.say(T2_LEAD, "/附议 T-1")
    assert "正式立项" in await chat.say(B2_LEAD, "/support 1")


def test_topic_numbers_in_every_form() -> None:
    for text in ("3", "T-3", "t3", "#T-3", "#3", "t-3 其他文字"):
        assert parse_topic_id(text) == 3
    for bad in ("", "T", "abc", "T-x", "3.5"):
        with pytest.raises(UsageError):
            parse_topic_id(bad)
    assert is_topic_ref("T-3") and is_topic_ref("#T-3") and is_topic_ref(" t3")
    assert not is_topic_ref("3") and not is_topic_ref("#3")


def test_title_and_description() -> None:
    assert split_title("盾构管片 研究错台成因") == ("盾构管片", "研究错台成因")
    assert split_title("CRTS III 型板: 精调方法") == ("CRTS III 型板", "精调方法")
    assert split_title("标题") == ("标题", "")


async def test_propose_creates_topic_and_asks_other_studios(chat: Chat) -> None:
    reply = await chat.say(T1_LEAD, PROPOSAL)
    assert "已提出课题 #T-1「盾构管片拼装质量控制」，提出方：盾构掘进控制劳模创新工作室" in reply
    assert "需 3 个工作室支持（含本工作室）" in reply and "征集截止 2026年12月8日" in reply
    (announcement,) = group_texts(chat, TUNNEL_GROUP)
    assert "【课题征集附议】" in announcement and "/附议 T-1" in announcement
    assert "研究管片错台、破损的成因与对策" in announcement
    listing = await chat.say("someone", "/课题列表")
    assert "#T-1「盾构管片拼装质量控制」" in listing and "附议 1/3" in listing and "12月8日截止" in listing


async def test_propose_refusals(chat: Chat) -> None:
    member = await chat.say("someone", PROPOSAL)
    assert "需要「工作室负责人」及以上权限" in member and "您当前是「成员」" in member
    assert "您没有负责的工作室" in await chat.say(TUNNEL_LEAD, PROPOSAL)
    assert "用法：/立项 标题" in await chat.say(T1_LEAD, "/立项")
    assert "标题请不超过 200 字" in await chat.say(T1_LEAD, "/立项 " + "长" * 201)
    assert "您不是钻爆法隧道工匠工作室（T2）的负责人" in await chat.say(T1_LEAD, PROPOSAL + " @T2")
    assert "没有编号为 X9 的工作室" in await chat.say(T1_LEAD, PROPOSAL + " @X9")
    assert "暂无" in await chat.say("someone", "/课题列表")  # nothing was created


async def test_alliance_lead_and_admin_propose_for_a_studio(chat: Chat) -> None:
    reply = await chat.say(TUNNEL_LEAD, "/立项 软弱围岩大变形控制 @T2")
    assert "#T-1" in reply and "提出方：钻爆法隧道工匠工作室" in reply
    assert "您不是地铁车站深基坑工作室（U1）的负责人" in await chat.say(TUNNEL_LEAD, "/立项 深基坑 @U1")
    assert "提出方：地铁车站深基坑工作室" in await chat.say(ADMIN, "/立项 深基坑支撑轴力伺服 @U1")


async def test_near_duplicate_is_shown_and_needs_confirmation(chat: Chat) -> None:
    await chat.say(T1_LEAD, "/成果 登记 工法 盾构管片拼装质量控制工法 T1 2025")
    reply = await chat.say(T2_LEAD, "/立项 提高盾构隧道管片拼装质量的控制方法")
    assert "发现与「提高盾构隧道管片拼装质量的控制方法」相近的课题或成果" in reply
    assert "成果 #1 工法「盾构管片拼装质量控制工法」（2025）" in reply
    assert "相似度" in reply and "共同词：" in reply and "管片拼装" in reply
    assert "/立项! 提高盾构隧道管片拼装质量的控制方法" in reply
    assert "暂无" in await chat.say("someone", "/课题列表")  # not created yet: withdrawing is not confirming
    confirmed = await chat.say(T2_LEAD, "/立项! 提高盾构隧道管片拼装质量的控制方法")
    assert "已提出课题 #T-1" in confirmed
    # the English form and a different idea go straight through
    assert "已提出课题 #T-2" in await chat.say(T3_LEAD, "/propose! 盾构管片拼装质量提升")
    assert "已提出课题 #T-3" in await chat.say(B2_LEAD, "/propose 挂篮轻量化设计")


async def test_support_reaches_quorum_and_announces_in_every_team_alliance(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    reply = await chat.say(T2_LEAD, "/附议 T-1")
    assert "附议成功：钻爆法隧道工匠工作室支持课题 #T-1「盾构管片拼装质量控制」，目前 2/3" in reply
    assert any("钻爆法隧道工匠工作室附议了您的课题" in t for t in chat.to_user(T1_LEAD))
    reply = await chat.say(B2_LEAD, "/support #T-1")
    assert "已获 3 个工作室支持，正式立项" in reply
    for group in (TUNNEL_GROUP, BRIDGE_GROUP):
        approvals = [t for t in group_texts(chat, group) if "【联合攻关立项】" in t]
        assert len(approvals) == 1
        assert "盾构掘进控制劳模创新工作室、钻爆法隧道工匠工作室、挂篮悬浇与连续梁工匠工作室" in approvals[0]
    assert group_texts(chat, URBAN_GROUP) == []
    assert any("已正式立项" in t for t in chat.to_user(T1_LEAD))
    details = await chat.say("someone", "/课题 T-1")
    assert "状态：已立项攻关" in details and "附议工作室（3/3）" in details
    assert "攻关团队：盾构掘进控制劳模创新工作室、钻爆法隧道工匠工作室、挂篮悬浇与连续梁工匠工作室" in details


async def test_support_refusals(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    assert "这是您工作室自己提出的课题" in await chat.say(T1_LEAD, "/附议 T-1")
    await chat.say(T2_LEAD, "/附议 T-1")
    assert "已经附议过" in await chat.say(T2_LEAD, "/附议 t1")
    assert "没有编号为 T-9 的课题" in await chat.say(T2_LEAD, "/附议 T-9")
    assert "请写课题编号" in await chat.say(T2_LEAD, "/附议 盾构")
    assert "用法：/附议 课题编号" in await chat.say(T2_LEAD, "/附议")
    assert "需要「工作室负责人」及以上权限" in await chat.say("someone", "/附议 T-1")
    await chat.say(T3_LEAD, "/附议 T-1")
    assert "已经立项，无需附议" in await chat.say(U1_LEAD, "/附议 T-1")


async def test_join_topic_and_join_event_share_the_word(chat: Chat) -> None:
    await approved_topic(chat)
    await chat.say(TUNNEL_LEAD, "/活动 添加 讲座 明天14:00 盾构施工讲座")
    reply = await chat.say(U1_LEAD, "/join T-1")
    assert "地铁车站深基坑工作室已加入课题 #T-1「盾构管片拼装质量控制」的攻关团队" in reply
    assert any("地铁车站深基坑工作室加入了课题" in t for t in chat.to_user(T1_LEAD))
    assert "已在课题 #T-1「盾构管片拼装质量控制」的攻关团队中" in await chat.say(U1_LEAD, "/join #T-1")
    assert "已在课题" in await chat.say(U1_LEAD, "/加入攻关 1")  # the Chinese alias is always a topic
    assert "报名成功" in await chat.say(U1_LEAD, "/join 1")  # no T: the event
    assert "报名成功" in await chat.say("someone", "/报名 1")
    details = await chat.say("someone", "/课题 T-1")
    assert "挂篮悬浇与连续梁工匠工作室、地铁车站深基坑工作室" in details
    usage = await chat.say(U1_LEAD, "/帮助 加入攻关")
    assert "/join T-3" in usage and "不带 T 是报名活动" in usage


async def test_join_refusals(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    assert "还在征集附议，尚未立项" in await chat.say(U1_LEAD, "/join T-1")
    assert "没有编号为 T-5 的课题" in await chat.say(U1_LEAD, "/join T-5")
    assert "需要「工作室负责人」及以上权限" in await chat.say("someone", "/加入攻关 T-1")
    assert "用法：/加入攻关" in await chat.say(U1_LEAD, "/加入攻关")


async def test_progress_and_conclusion_offer_an_achievement(chat: Chat) -> None:
    await approved_topic(chat)
    assert "只有攻关团队的工作室负责人可以记录进展" in await chat.say(U1_LEAD, "/进展 T-1 我也想写")
    assert "请写上进展内容" in await chat.say(T2_LEAD, "/进展 T-1")
    assert "第 1 条进展" in await chat.say(T2_LEAD, "/进展 T-1 完成试验段 200 环数据采集")
    assert "第 2 条进展" in await chat.say(T1_LEAD, "/progress t1 错台成因分析完成")
    assert "只有课题提出人、本联盟负责人或管理员可以结题" in await chat.say(T2_LEAD, "/结题 T-1 完成")
    assert "请写上结题成果简述" in await chat.say(T1_LEAD, "/结题 T-1")
    reply = await chat.say(T1_LEAD, "/结题 T-1 形成管片拼装质量控制工法一套")
    assert "课题 #T-1「盾构管片拼装质量控制」已结题" in reply
    assert "/成果 登记 工法 盾构管片拼装质量控制 T1 T2 B2 2026 #T-1" in reply
    assert any("【课题结题】" in t for t in group_texts(chat, BRIDGE_GROUP))
    assert "已结题" in await chat.say(T2_LEAD, "/进展 T-1 再写一条")
    assert "已结题" in await chat.say(TUNNEL_LEAD, "/结题 T-1 再结一次")
    registered = await chat.say(T1_LEAD, "/成果 登记 工法 盾构管片拼装质量控制 T1 T2 B2 2026 #T-1")
    assert (
        "已登记成果 #1 工法「盾构管片拼装质量控制」（2026）" in registered and "来源课题：#T-1" in registered
    )
    details = await chat.say("someone", "/课题 T-1")
    assert "结题：形成管片拼装质量控制工法一套" in details and "已登记成果：#1" in details
    assert "完成试验段 200 环数据采集" in details
    assert "简介：形成管片拼装质量控制工法一套" in await chat.say("someone", "/成果 1")


async def test_conclude_by_alliance_lead_and_before_approval(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    assert "还在征集附议，尚未立项" in await chat.say(T1_LEAD, "/结题 T-1 提前结束")
    await chat.say(T2_LEAD, "/附议 T-1")
    await chat.say(T3_LEAD, "/附议 T-1")
    assert "已结题" in await chat.say(TUNNEL_LEAD, "/conclude T-1 完成")


async def test_topic_listings(chat: Chat) -> None:
    await approved_topic(chat)
    await chat.say(U1_LEAD, "/立项 深基坑支撑轴力伺服 研究钢支撑轴力自动补偿")
    everything = await chat.say("someone", "/topics")
    assert "进行中的联合攻关课题（2 个）" in everything
    assert everything.index("#T-2") < everything.index("#T-1")  # newest first
    mine = await chat.say(B2_LEAD, "/课题列表 我的")
    assert "#T-1" in mine and "#T-2" not in mine
    urban = await chat.say("someone", "/课题列表 城轨")
    assert "城轨联盟的课题" in urban and "#T-2" in urban and "#T-1" not in urban
    assert "没有找到联盟「海洋」" in await chat.say("someone", "/课题列表 海洋")
    assert "没有“我的课题”" in await chat.say("someone", "/课题列表 我的")
    assert "状态：征集附议中" in await chat.say("someone", "/课题 T-2")
    assert "状态：征集附议中" in await chat.say("someone", "/topic 2")
    assert "没有编号为 T-7 的课题" in await chat.say("someone", "/topic T-7")
    assert "用法：/课题 T-编号" in await chat.say("someone", "/topic")


async def test_a_one_word_title_is_refused(chat: Chat) -> None:
    reply = await chat.say(T1_LEAD, "/立项 盾")
    assert "课题标题「盾」太短" in reply, reply
    assert not group_texts(chat, TUNNEL_GROUP)


async def test_proposer_withdraws_before_approval_and_supporters_hear_of_it(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    await chat.say(T2_LEAD, "/附议 T-1")
    assert "只有课题提出人" in await chat.say(B2_LEAD, "/撤回课题 T-1")
    reply = await chat.say(T1_LEAD, "/撤回课题 T-1 与集团课题重复")
    assert reply.startswith("已撤回课题 #T-1「盾构管片拼装质量控制」"), reply
    assert any("【课题撤回】" in t and "与集团课题重复" in t for t in group_texts(chat, TUNNEL_GROUP))
    assert any("您附议的课题 #T-1" in t for t in chat.to_user(T2_LEAD))
    assert "已撤回，只有征集附议中的课题可以撤回" in await chat.say(T1_LEAD, "/撤回课题 T-1")
    assert "已撤回，不能再附议" in await chat.say(B2_LEAD, "/附议 T-1")
    assert "暂无" in await chat.say("someone", "/课题列表")


async def test_an_approved_topic_cannot_be_withdrawn(chat: Chat) -> None:
    await approved_topic(chat)
    assert "只有征集附议中的课题可以撤回" in await chat.say(T1_LEAD, "/撤回课题 T-1")
