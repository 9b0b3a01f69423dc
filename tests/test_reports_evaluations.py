"""The evaluations' part of the year report: the per-studio sheet, the evaluation sheet with each panel
member's scores and the results, and the stars-by-alliance sheet with its chart."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.core.clock import ManualClock
from bot.services.reports import collect, write_report
from tests.conftest import ADMIN, SHANGHAI
from tests.harness import Chat

T1_LEAD, T2_LEAD, B1_LEAD = "chenjuejin", "shibaopo", "zhanglali"


async def test_the_year_workbook_has_studio_evaluation_and_star_sheets(
    chat: Chat, clock: ManualClock, tmp_path: Path
) -> None:
    assert (await chat.say(T1_LEAD, "/成果 登记 工法 盾构管片拼装错台控制工法 T1 2026")).startswith("已登记")
    assert "待确认" in await chat.say(T1_LEAD, "/成果 登记 工法 桥隧联合工法 T1 B1 2026")  # not counted
    assert "已发起" in await chat.say(
        ADMIN, "/评选 发起 星级 隧道 评委=张拉力 申报截止=11月30日 评分截止=12月5日"
    )
    assert "申报五星" in await chat.say(T2_LEAD, "/评选 申报 1 T2 五星")
    assert "已评分" in await chat.say(B1_LEAD, "/评选 评分 1 1 90 80 70")
    assert "已结束" in await chat.say(ADMIN, "/评选 结束 1")
    report = await collect(chat.bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    workbook, _ = write_report(report, tmp_path, use_cjk=False)
    book = load_workbook(workbook)
    assert {"工作室档案", "评选", "星级"} <= set(book.sheetnames)
    studios = {row[0]: row for row in book["工作室档案"].iter_rows(min_row=2, values_only=True)}
    t1 = studios["T1"]
    assert t1[1] == "盾构掘进控制劳模创新工作室" and t1[12] == "工法 1"  # the pending one is not counted
    t2 = studios["T2"]
    assert t2[3] == 5 and t2[13:15] == (1, 30000) and "评选 #1 星级工作室评定 81 分 入选" in t2[19]
    (row,) = list(book["评选"].iter_rows(min_row=2, values_only=True))
    assert row[:6] == (1, "星级工作室评定", "隧道联盟", "已结束", "申报5星", "钻爆法隧道工匠工作室（T2）")
    assert row[6] == "张拉力 81" and row[7:] == (81, 1, "入选", 30000)
    stars = {r[0]: r[1:] for r in book["星级"].iter_rows(min_row=2, values_only=True)}
    assert stars["隧道联盟"] == (2, 0, 1, 3)  # T1 and T2 five stars, T3 three
    assert len(book["星级"]._charts) == 1


async def test_stars_by_alliance_is_a_png_chart_too(
    chat: Chat, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_reports import charted

    report = await collect(chat.bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    figures = charted(report, tmp_path / "charts", monkeypatch)
    assert (tmp_path / "charts" / "stars_by_alliance.png").stat().st_size > 0
    [ax] = figures["stars_by_alliance.png"].axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [a.id for a in report.alliances]  # English labels without a CJK font
    heights: dict[str, list[float]] = {}
    for container in ax.containers:
        heights[container.get_label()] = [bar.get_height() for bar in container]
    tunnel = labels.index("tunnel")
    stars = {s.id: s.stars for s in await chat.bot.store.studios.all() if s.alliance_id == "tunnel"}
    assert heights["5 stars"][tunnel] == sum(1 for n in stars.values() if n == 5)
    assert heights["3 stars"][tunnel] == sum(1 for n in stars.values() if n == 3)
    total = sum(h[i] for h in heights.values() for i in range(len(labels)))
    assert total == len(await chat.bot.store.studios.all())
