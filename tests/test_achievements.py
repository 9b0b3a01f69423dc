"""Conversation tests for the achievements database: registration with the novelty pre-screening, search,
``/成果 查新``, details, awards and ``/awards``; each with its refusals. The novelty ranking is checked on a corpus
where a paraphrased title must come first."""

from __future__ import annotations

import pytest

from bot.core.dispatcher import UsageError
from bot.handlers.achievements import parse_add, parse_amount
from bot.services.achievements.novelty import Document, rank, routing_terms
from bot.store.achievements import AchievementType
from bot.store.studios import Studio
from tests.conftest import ADMIN
from tests.harness import Chat

T1_LEAD = "chenjuejin"
B1_LEAD = "zhanglali"
TUNNEL_LEAD = "mushandong"
BRIDGE_LEAD = "gaojiaqiao"

# Registered results of the alliance; the last one is what a paraphrase below should find.
CORPUS = [
    ("发明专利", "一种预制箱梁智能张拉压浆一体化装置", "B1", 2024),
    ("工法", "大跨连续梁挂篮悬臂浇筑线形控制工法", "B2", 2024),
    ("QC成果", "提高隧道二次衬砌混凝土浇筑密实度", "T3", 2025),
    ("实用新型专利", "一种接触网整体吊弦预配平台", "P1", 2025),
    ("职工技术创新成果", "ZPW-2000轨道电路调试辅助工具", "P2", 2025),
    ("管理创新成果", "农民工实名制与工资专户管理平台", "U3", 2025),
    ("工法", "软弱围岩隧道大变形控制施工工法", "T2", 2025),
    ("科技进步奖", "城市地铁深基坑钢支撑轴力伺服系统研究", "U1", 2025),
    ("工法", "盾构隧道管片拼装错台控制施工工法", "T1", 2025),
]


def studios() -> dict[str, Studio]:
    return {
        sid: Studio(
            id=sid,
            name=name,
            alliance_id="tunnel",
            unit="u",
            type="t",
            stars=4,
            lead_name="n",
            lead_userid="x",
        )
        for sid, name in (("T1", "盾构掘进控制劳模创新工作室"), ("T3", "隧道防排水与衬砌质量工作室"))
    }


def test_parse_add_reads_studios_year_and_topic_from_the_end() -> None:
    request = parse_add("工法 盾构 管片拼装工法 T1、t3 2025年 #T-4", studios())
    assert request.type == AchievementType.CONSTRUCTION_METHOD
    assert (request.title, request.studios, request.year, request.topic_id) == (
        "盾构 管片拼装工法",
        ("T1", "T3"),
        2025,
        4,
    )
    request = parse_add("QC 提高衬砌密实度 隧道防排水与衬砌质量工作室", studios())
    assert (request.type, request.studios, request.year) == (AchievementType.QC, ("T3",), None)
    assert parse_add("发明 2025", studios()).title == "2025"  # a lone word is the title, never the year
    with pytest.raises(UsageError, match="不认识的成果类型「论文」"):
        parse_add("论文 某论文", studios())
    with pytest.raises(UsageError, match="请写上成果名称"):
        parse_add("工法", studios())


def test_amounts() -> None:
    assert parse_amount("20000") == 20_000
    assert parse_amount("20,000元") == 20_000
    assert parse_amount("2万") == 20_000
    assert parse_amount("1.5万元") == 15_000
    for bad in ("0", "-5", "两万", "1.00005万", "abc"):
        with pytest.raises(ValueError):
            parse_amount(bad)


def test_novelty_ranks_a_paraphrase_first_and_names_shared_terms() -> None:
    documents = [
        Document("achievement", i, f"成果 #{i}", title) for i, (_, title, _, _) in enumerate(CORPUS, start=1)
    ]
    for query in ("盾构管片拼装错台的控制方法", "控制盾构隧道管片错台的拼装工法", "管片拼装错台"):
        matches = rank(query, documents)
        assert matches and matches[0].document.key == 9, (query, matches)
        assert matches[0].score > (matches[1].score if len(matches) > 1 else 0) + 0.1
    best = rank("盾构管片拼装错台的控制方法", documents)[0]
    assert "管片拼装错台" in best.shared and 0 < best.percent <= 100
    assert rank("接触网吊弦", documents)[0].document.key == 4
    assert rank("完全无关的内容", documents) == []
    assert rank("", documents) == []


def test_terms_come_from_the_routing_analysis() -> None:
    terms = routing_terms("ZPW-2000轨道电路调试")
    assert terms[:3] == ["zpw-2000", "轨道电路", "调试"]  # words first (canonical, lowercased)
    assert "道电" in terms and terms.count("调试") == 1  # then the bigrams not already words


async def seed(chat: Chat) -> None:
    for kind, title, studio, year in CORPUS:
        reply = await chat.say(ADMIN, f"/成果 登记 {kind} {title} {studio} {year}")
        assert "已登记成果" in reply, reply


async def test_register_with_novelty_check(chat: Chat) -> None:
    await seed(chat)
    reply = await chat.say(T1_LEAD, "/成果 登记 发明专利 一种盾构管片拼装错台控制装置")
    assert "已登记成果 #10 发明专利「一种盾构管片拼装错台控制装置」（2026）" in reply
    assert "完成工作室：盾构掘进控制劳模创新工作室" in reply  # the caller's studio and this year by default
    screening = reply.split("查新初筛——最相似的已有成果和课题：\n")[1].splitlines()
    assert screening[0].startswith("  成果 #9 工法「盾构隧道管片拼装错台控制施工工法」（2025）  相似度 ")
    assert "共同词：" in screening[0] and "管片拼装错台" in screening[0]
    details = await chat.say("someone", "/成果 10")
    assert "成果 #10 发明专利" in details and "完成工作室：盾构掘进控制劳模创新工作室" in details
    assert "未发现相似的已有成果或课题" in await chat.say(T1_LEAD, "/成果 登记 QC 全新的题目 2026")


async def test_register_refusals(chat: Chat) -> None:
    member = await chat.say("someone", "/成果 登记 工法 某工法 T1 2025")
    assert "需要「工作室负责人」及以上权限" in member
    assert "不认识的成果类型「论文」" in await chat.say(T1_LEAD, "/成果 登记 论文 某论文")
    assert "用法：/成果 登记 类型 名称" in await chat.say(T1_LEAD, "/成果 登记")
    assert "请写上完成成果的工作室编号" in await chat.say(ADMIN, "/成果 登记 工法 某工法 2025")
    assert "年份应在 1980 到明年之间" in await chat.say(T1_LEAD, "/成果 登记 工法 某工法 T1 1950")
    assert "没有编号为 T-4 的课题" in await chat.say(T1_LEAD, "/成果 登记 工法 某工法 T1 2025 #T-4")
    await chat.say(T1_LEAD, "/成果 登记 工法 某工法 T1 2025")
    assert "已登记过：成果 #1 工法「某工法」（2025）" in await chat.say(
        T1_LEAD, "/成果 登记 工法 某工法 2025"
    )
    assert "不认识的子命令「删除」" in await chat.say(T1_LEAD, "/成果 删除 1")
    assert "没有编号为 7 的成果" in await chat.say(T1_LEAD, "/成果 7")


async def test_search_check_and_listing(chat: Chat) -> None:
    assert "成果库还是空的" in await chat.say("someone", "/成果")
    await seed(chat)
    found = await chat.say("someone", "/成果 查询 接触网 吊弦")
    assert found.splitlines()[1].startswith("  成果 #4 实用新型专利「一种接触网整体吊弦预配平台」")
    assert "没有找到与「量子计算」相关的成果" in await chat.say("someone", "/achieve search 量子计算")
    check = await chat.say("someone", "/成果 查新 盾构隧道管片拼装错台控制施工方法")
    assert "结论：与已有成果或课题高度相似，首创性存疑" in check
    assert check.split("最相似的：\n")[1].startswith("  成果 #9 工法「盾构隧道管片拼装错台控制施工工法」")
    fresh = await chat.say("someone", "/achieve check 量子通信在铁路中的应用")
    assert "未发现相似内容" in fresh
    assert "请写上成果名称或简介" in await chat.say("someone", "/成果 查新")
    listing = await chat.say("someone", "/成果 列表")
    assert "创新成果库共 9 项" in listing and listing.index("#9") < listing.index("#8")


async def test_awards_on_achievements_and_studios(chat: Chat) -> None:
    await seed(chat)
    reply = await chat.say(TUNNEL_LEAD, "/奖励 9 2万 2025 优秀成果奖")
    assert (
        "已记录奖励 #1：2025年「优秀成果奖」20,000 元 → 成果 #9 工法「盾构隧道管片拼装错台控制施工工法」"
        in reply
    )
    assert (
        "已记录奖励 #2：2026年「五星级工作室」30,000 元 → 盾构掘进控制劳模创新工作室（T1）"
        in await chat.say(TUNNEL_LEAD, "/award T1 30000 五星级工作室")
    )
    assert "2026年「成果奖励」5,000 元" in await chat.say(ADMIN, "/成果 奖励 1 5000")
    assert "奖励：2025年 优秀成果奖 20,000 元" in await chat.say("someone", "/成果 9")
    year_2026 = await chat.say("someone", "/奖励列表")
    assert "2026年奖励 2 项，合计 35,000 元" in year_2026
    assert "五星级工作室 30,000 元 — 盾构掘进控制劳模创新工作室" in year_2026
    assert "2025年奖励 1 项，合计 20,000 元" in await chat.say("someone", "/awards 2025")
    assert "2024年还没有记录奖励" in await chat.say("someone", "/awards 2024")


async def test_award_refusals(chat: Chat) -> None:
    await seed(chat)
    assert "需要「联盟负责人」及以上权限" in await chat.say(T1_LEAD, "/奖励 9 20000")
    assert "需要「联盟负责人」及以上权限" in await chat.say(T1_LEAD, "/成果 奖励 9 20000")
    assert "您只能为本联盟的成果或工作室记录奖励" in await chat.say(BRIDGE_LEAD, "/奖励 9 20000")
    assert "您只能为本联盟的成果或工作室记录奖励" in await chat.say(BRIDGE_LEAD, "/奖励 T1 20000")
    assert "金额「两万」看不懂" in await chat.say(TUNNEL_LEAD, "/奖励 9 两万")
    assert "请写明奖励对象和金额" in await chat.say(TUNNEL_LEAD, "/奖励 9")
    assert "没有编号为 99 的成果" in await chat.say(TUNNEL_LEAD, "/奖励 99 20000")
    assert "没有编号为 X1 的工作室或成果" in await chat.say(TUNNEL_LEAD, "/奖励 X1 20000")
    assert "年份「明年」看不懂" in await chat.say("someone", "/奖励列表 明年")
    assert "2026年还没有记录奖励" in await chat.say("someone", "/奖励列表")


async def test_award_amount_errors_say_why_and_show_the_usage_once(chat: Chat) -> None:
    negative = await chat.say(TUNNEL_LEAD, "/奖励 T1 -100")
    assert "金额要大于 0" in negative and negative.count("用法") == 1, negative
    huge = await chat.say(TUNNEL_LEAD, "/奖励 T1 999999999")
    assert "最多 1,000 万元" in huge and "看不懂" not in huge and huge.count("用法") == 1, huge
    missing = await chat.say(TUNNEL_LEAD, "/奖励 T1")
    assert missing.count("用法") == 1, missing
