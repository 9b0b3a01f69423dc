"""The year report's funding, talent and benefit sections against what the test entered through the chat: the
workbook's figures, the summary sheet, ``/统计`` and the charts agree, and a shared award counts the same way
(split among its studios' alliances) in the awards sheet, the ledger and ``/统计``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.services.reports import collect, summary_rows, write_report
from tests.conftest import ADMIN, SHANGHAI
from tests.harness import Chat

TUNNEL_LEAD, BRIDGE_LEAD, T1_LEAD = "mushandong", "gaojiaqiao", "chenjuejin"


def table(sheet: Any) -> list[list[Any]]:
    return [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]


def row_of(rows: list[list[Any]], first: Any, second: Any | None = None) -> list[Any]:
    return next(r for r in rows if r[0] == first and (second is None or r[1] == second))


async def seed(chat: Chat, clock: ManualClock) -> None:
    # funds: tunnel 150,000 in, 8,000 training + 10,000 award share out; bridge 20,000 in, 10,000 award share
    await chat.say(TUNNEL_LEAD, "/经费 收入 公司补助 10万 2026-01-05")
    await chat.say(TUNNEL_LEAD, "/经费 收入 工会 5万 2026-02-01")
    await chat.say(TUNNEL_LEAD, "/经费 预算 学习培训 1万")
    await chat.say(TUNNEL_LEAD, "/经费 支出 学习培训 8000 2026-03-15 培训班")
    await chat.say(BRIDGE_LEAD, "/经费 收入 行政资助 2万 2026-02-01")
    await chat.say(ADMIN, "/成果 登记 工法 盾构管片拼装质量控制工法 T1 B1 2026")
    await chat.say(ADMIN, "/奖励 1 20000 2026 优秀成果奖")
    await chat.say(
        TUNNEL_LEAD, "/经费 支出 奖励 奖励#1 2026-04-01 颁奖"
    )  # linked in tunnel, derived in bridge
    # talent: one training with 3 people, a mentorship, two titles
    await chat.say(TUNNEL_LEAD, "/活动 添加 培训 明天上午9点 盾构操作培训 @隧道")
    clock.set(clock.now() + timedelta(hours=23))
    for user in ("lisi", "wangwu"):
        await chat.say(user, "/签到 1")
    await chat.say(TUNNEL_LEAD, "/签到 1 补记 外单位王师傅")
    await chat.say(T1_LEAD, "/人才 带徒 陈掘进 lisi 2026-03-01 高级技师")
    await chat.say(TUNNEL_LEAD, "/人才 称号 陈掘进 省级工匠 2026-05-01 @T1 省总工会文件")
    await chat.say(BRIDGE_LEAD, "/人才 称号 张拉力 高级技师 2026-06-01 @B1 证书 GJ-1")
    # benefits: 1,200,000 on the joint achievement (600,000 each), 300,000 on a tunnel one
    await chat.say(T1_LEAD, "/效益 1 应用 郑州地铁5号线 中铁隧道局 2026-05-01 120万")
    await chat.say(ADMIN, "/成果 登记 QC成果 提高管片拼装精度 T1 2026")
    await chat.say(T1_LEAD, "/效益 2 应用 洛阳地铁 2026-07-01 30万")
    await chat.say(T1_LEAD, "/效益 2 应用 去年的项目 2025-07-01 99万")  # another year


async def test_report_sections_match_what_was_entered(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(chat, clock)
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    workbook, charts = write_report(report, tmp_path, use_cjk=False)
    book = load_workbook(workbook)
    assert {"经费", "经费明细", "人才", "效益"} <= set(book.sheetnames)

    funds = table(book["经费"])
    header = funds[0]
    tunnel = dict(zip(header, row_of(funds, "tunnel"), strict=False))
    bridge = dict(zip(header, row_of(funds, "bridge"), strict=False))
    total = dict(zip(header, row_of(funds, "合计"), strict=False))
    assert (tunnel["收入：公司补助"], tunnel["收入：牵头单位工会补助"], tunnel["收入合计"]) == (
        100_000,
        50_000,
        150_000,
    )
    assert (tunnel["支出：学习培训"], tunnel["支出：奖励"], tunnel["支出合计"], tunnel["结余"]) == (
        8_000,
        10_000,
        18_000,
        132_000,
    )
    assert (bridge["收入合计"], bridge["支出：奖励"], bridge["结余"]) == (20_000, 10_000, 10_000)
    assert (total["收入合计"], total["支出合计"]) == (170_000, 28_000)
    budget = next(r for r in funds if r[0] == "tunnel" and r[2] == "学习培训")
    assert budget[3:6] == [10_000, 8_000, 0.8]
    assert any(str(r[0]).startswith("奖励支出口径") for r in funds)

    # one award, one rule: the awards sheet's per-alliance sums are the ledgers' 奖励 spending
    awards = table(book["奖励"])
    assert row_of(awards, "tunnel")[2] == tunnel["支出：奖励"] == 10_000
    assert row_of(awards, "bridge")[2] == bridge["支出：奖励"] == 10_000
    entries = table(book["经费明细"])
    assert sum(1 for r in entries if r[4] == "奖励") == 2  # once per alliance share, never twice

    talent = table(book["人才"])
    header = talent[0]
    tunnel_talent = dict(zip(header, row_of(talent, "tunnel"), strict=False))
    all_talent = dict(zip(header, row_of(talent, "合计"), strict=False))
    assert (tunnel_talent["培训（次）"], tunnel_talent["参训（人次）"], tunnel_talent["新结对师徒"]) == (
        1,
        3,
        1,
    )
    assert (tunnel_talent["工匠"], all_talent["技能等级"], all_talent["工匠"]) == (1, 1, 1)
    assert row_of(talent, "省级工匠")[6] == 1 and row_of(talent, "高级技师")[6] == 1  # 4 alliances, then 合计

    benefits = table(book["效益"])
    assert row_of(benefits, "tunnel")[2] == 600_000 + 300_000
    assert row_of(benefits, "bridge")[2] == 600_000
    assert row_of(benefits, "合计")[2] == 1_500_000
    assert row_of(benefits, "T1")[2] == 900_000 and row_of(benefits, "B1")[2] == 600_000
    chain = [r for r in benefits if r[1] == 1 and r[4] == "郑州地铁5号线"]
    assert chain and chain[0][7] == 1_200_000

    summary = {row.label: row.value for row in summary_rows(report)}
    assert (summary["经费收入"], summary["经费支出"], summary["参训人次"], summary["直接经济效益"]) == (
        170_000,
        28_000,
        3,
        1_500_000,
    )
    sheet = {r[0]: r[1] for r in table(book["汇总"])}
    assert (
        sheet["经费收入"] == 170_000
        and sheet["直接经济效益"] == 1_500_000
        and sheet["奖励金额合计"] == 20_000
    )

    stats = await chat.say("anyone", "/统计 2026")
    assert "经费：收入 170,000 元，支出 28,000 元，结余 142,000 元。" in stats
    assert "人才：培训 1 次、参训 3 人次；名师带徒新结对 1 对；获称号 技能等级 1 人、工匠 1 人。" in stats
    assert "效益：成果应用 2 处，直接经济效益 1,500,000 元。" in stats
    assert (
        "奖励：1 项，合计 20,000 元；按联盟：桥梁联盟 10,000 元、四电联盟 0 元、隧道联盟 10,000 元" in stats
    )

    names = {p.name for p in charts}
    assert {
        "funds_sources_uses.png",
        "funds_budget.png",
        "talent_trained.png",
        "talent_titles.png",
        "benefits.png",
    } <= names

    # the charts draw the same figures (bars in 10,000 yuan, alliances in roster order)
    from tests.test_reports import charted

    figures = charted(report, tmp_path / "charts", monkeypatch)
    order = [a.id for a in report.alliances]
    [ax] = figures["benefits.png"].axes
    assert [round(bar.get_height() * 10_000) for bar in ax.patches] == [
        {"tunnel": 900_000, "bridge": 600_000}.get(a, 0) for a in order
    ]
    [ax] = figures["funds_sources_uses.png"].axes
    tops: dict[float, float] = {}
    for bar in ax.patches:  # stacked: the top of each column is its total
        tops[round(bar.get_x(), 3)] = max(tops.get(round(bar.get_x(), 3), 0), bar.get_y() + bar.get_height())
    columns = [round(v * 10_000) for _, v in sorted(tops.items())]
    expected = {"tunnel": (150_000, 18_000), "bridge": (20_000, 10_000)}
    assert columns == [yuan for a in order for yuan in expected.get(a, (0, 0))]
    [ax] = figures["funds_budget.png"].axes  # budgeted categories say spent / budget, the others that they have none
    notes = [t.get_text() for t in ax.texts]
    assert "8,000 / 10,000" in notes and notes.count("no budget") == 4
    [ax] = figures["awards_by_alliance.png"].axes
    assert [round(bar.get_height() * 10_000) for bar in ax.patches][: len(order)] == [
        {"tunnel": 10_000, "bridge": 10_000}.get(a, 0) for a in order
    ]

    # one alliance: only its own shares
    tunnel_only = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now(), alliance_id="tunnel")
    rows = {row.label: row.value for row in summary_rows(tunnel_only)}
    assert (rows["经费收入"], rows["经费支出"], rows["直接经济效益"]) == (150_000, 18_000, 900_000)
