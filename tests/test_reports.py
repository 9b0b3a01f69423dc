"""The year report against a seeded database: the XLSX workbook is opened with openpyxl and its figures compared
with what was seeded (events through the events feature's repo, topics through the conversation with a moving
clock, achievements and awards through the commands, problems through the problems feature when it is installed);
the charts render with and without a CJK font; ``/stats`` says the same in a few lines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.services.reports import (
    ProblemFacts,
    collect,
    find_cjk_font,
    problem_figures,
    split_award,
    summary_rows,
    write_charts,
    write_report,
)
from bot.services.topics import SWEEP_JOB
from bot.store.activities import Activity, ActivityRepo, ActivityStatus
from bot.store.problems import Problem
from tests.conftest import ADMIN
from tests.harness import Chat

SHANGHAI = ZoneInfo("Asia/Shanghai")
T1_LEAD, T2_LEAD, T3_LEAD, B1_LEAD, B2_LEAD, U1_LEAD = (
    "chenjuejin",
    "shibaopo",
    "fangshuiqing",
    "zhanglali",
    "xuanbining",
    "hejikeng",
)


def at(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=SHANGHAI)


async def seed(bot: BotApp, chat: Chat, clock: ManualClock) -> None:
    """A year of the alliance; the expected figures are spelled out in the tests below."""
    now = clock.now()
    activities = ActivityRepo(bot.store.sessions)
    for kind, alliance, start, status in (
        ("年会", "tunnel", at(3, 15), ActivityStatus.SCHEDULED),  # held
        ("讲座", "bridge", at(5, 10), ActivityStatus.SCHEDULED),  # held
        ("讲座", "tunnel", at(6, 20), ActivityStatus.SCHEDULED),  # held
        ("会议", None, at(6, 1), ActivityStatus.SCHEDULED),  # held, joint
        ("讲座", "urban", at(7, 1), ActivityStatus.CANCELLED),  # cancelled: not counted
        ("年会", "power", at(12, 20), ActivityStatus.SCHEDULED),  # still to come
        ("讲座", "tunnel", at(9, 9, year=2025), ActivityStatus.SCHEDULED),  # another year
    ):
        await activities.create(
            Activity(
                type=kind,
                title=f"{kind}活动",
                alliance_id=alliance,
                start=start,
                organizer=ADMIN,
                status=status,
            )
        )
    # topics: T-1 (tunnel) proposed Feb, approved Feb, concluded Oct; T-2 (bridge) proposed and approved Apr;
    # T-3 (urban) proposed May and lapsed; T-4 (tunnel) proposed Nov, still gathering support.
    clock.set(at(2, 1))
    await chat.say(T1_LEAD, "/立项! 盾构管片拼装质量控制 研究错台成因")
    clock.set(at(2, 10))
    await chat.say(T2_LEAD, "/附议 T-1")
    await chat.say(T3_LEAD, "/附议 T-1")
    clock.set(at(4, 1))
    await chat.say(B1_LEAD, "/立项! 智能张拉压浆设备应用")
    await chat.say(B2_LEAD, "/附议 T-2")
    await chat.say(U1_LEAD, "/附议 T-2")
    clock.set(at(5, 1))
    await chat.say(U1_LEAD, "/立项! 深基坑支撑轴力伺服")
    clock.set(at(5, 20))
    assert await bot.jobs.fire(SWEEP_JOB) == "approved 0, lapsed 1, reminded 0"
    clock.set(at(10, 1))
    assert "已结题" in await chat.say(T1_LEAD, "/结题 T-1 形成工法一套")
    clock.set(now)
    await chat.say(T1_LEAD, "/立项! 盾构始发接收端头加固")
    # achievements: three of 2026 (two tunnel, one bridge), one of 2025
    for line in (
        "/成果 登记 工法 盾构管片拼装质量控制工法 T1 T2 2026 #T-1",
        "/成果 登记 QC成果 提高二次衬砌密实度 T3 2026",
        "/成果 登记 发明专利 一种智能张拉压浆一体化装置 B1 2026",
        "/成果 登记 发明专利 一种吊弦预配平台 P1 2025",
    ):
        assert "已登记成果" in await chat.say(ADMIN, line)
    for line in ("/奖励 1 2万 2026 优秀成果奖", "/奖励 T1 30000 2026 五星级工作室", "/奖励 4 5000 2025"):
        assert "已记录奖励" in await chat.say(ADMIN, line)


def sheet_values(path: Path) -> dict[str, list[list[Any]]]:
    book = load_workbook(path, read_only=True)
    try:
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}
    finally:
        book.close()


def summary_of(sheets: dict[str, list[list[Any]]]) -> dict[str, Any]:
    rows = sheets["汇总"]
    assert rows[0] == ["指标", "数值", "说明"]
    return {label: value for label, value, _note in rows[1:]}


async def test_workbook_figures_match_the_seeded_year(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path
) -> None:
    await seed(bot, chat, clock)
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    workbook, charts = write_report(report, tmp_path)
    assert workbook.name == "联盟年度报告-2026.xlsx"
    sheets = sheet_values(workbook)
    assert next(iter(sheets)) == "汇总"
    summary = summary_of(sheets)
    assert summary["年份"] == 2026 and summary["范围"] == "全部联盟"
    assert summary["举办活动"] == 4
    assert (summary["活动：年会"], summary["活动：讲座"], summary["活动：会议"]) == (1, 2, 1)
    assert summary["已安排待举办活动"] == 1
    assert summary["年会：隧道联盟"] == "已举办"
    assert summary["年会：桥梁联盟"] == "未举办"
    assert summary["年会：城轨联盟"] == "未举办"
    assert summary["年会：四电联盟"] == "已安排 12月20日"
    assert (summary["课题提出"], summary["课题立项"], summary["课题结题"]) == (4, 2, 1)
    assert summary["登记成果"] == 3
    assert (summary["成果：工法"], summary["成果：QC成果"], summary["成果：发明专利"]) == (1, 1, 1)
    assert "成果：科技进步奖" not in summary  # types with nothing are left out of the summary
    assert (summary["奖励项数"], summary["奖励金额合计"]) == (2, 50_000)

    topics = {row[0]: row[1:] for row in sheets["课题"][1:]}
    assert (
        topics["tunnel"] == ["隧道联盟", 2, 1, 1]
        and topics["bridge"] == ["桥梁联盟", 1, 1, 0]
        and topics["urban"] == ["城轨联盟", 1, 0, 0]
    )
    assert topics["合计"] == [None, 4, 2, 1]
    activities = sheets["活动"]
    assert activities[0] == [
        "类型",
        "桥梁联盟（bridge）",
        "四电联盟（power）",
        "隧道联盟（tunnel）",
        "城轨联盟（urban）",
        "全体联盟",
        "已举办合计",
        "已安排待举办",
    ]
    by_type = {row[0]: row[1:] for row in activities[1:8]}
    assert by_type["讲座"] == [1, 0, 1, 0, 0, 2, 0]
    assert by_type["年会"] == [0, 0, 1, 0, 0, 1, 1]
    assert by_type["会议"] == [0, 0, 0, 0, 1, 1, 0]
    achievements = {row[0]: row[1] for row in sheets["成果"][1:8]}
    assert achievements == {
        "发明专利": 1,
        "实用新型专利": 0,
        "工法": 1,
        "QC成果": 1,
        "科技进步奖": 0,
        "职工技术创新成果": 0,
        "管理创新成果": 0,
    }
    listed = [row for row in sheets["成果"] if row and isinstance(row[0], int)]
    assert [row[2] for row in listed] == [
        "盾构管片拼装质量控制工法",
        "提高二次衬砌密实度",
        "一种智能张拉压浆一体化装置",
    ]
    assert listed[0][3:] == [
        "T1、T2",
        "盾构掘进控制劳模创新工作室、钻爆法隧道工匠工作室",
        "tunnel",
        "隧道联盟",
        2026,
        ADMIN,
        None,  # not in the roster: no name to show
    ]
    awards = sheets["奖励"]
    assert awards[0] == ["奖项", "对象", "工作室编号", "工作室", "登记人账号", "登记人", "金额（元）"] + [
        f"计入{name}（元）" for name in ("桥梁联盟", "四电联盟", "隧道联盟", "城轨联盟")
    ]
    assert awards[1] == [
        "优秀成果奖",
        "成果 #1 工法「盾构管片拼装质量控制工法」",
        "T1、T2",
        "盾构掘进控制劳模创新工作室、钻爆法隧道工匠工作室",
        ADMIN,
        None,
        20000,
        0,
        0,
        20000,
        0,
    ]
    assert awards[2] == [
        "五星级工作室",
        "盾构掘进控制劳模创新工作室（T1）",
        "T1",
        "盾构掘进控制劳模创新工作室",
        ADMIN,
        None,
        30000,
        0,
        0,
        30000,
        0,
    ]
    assert awards[3] == ["合计", None, None, None, None, None, 50000, 0, 0, 50000, 0]
    assert {p.name for p in charts} >= {"events_by_type.png", "topics.png", "achievements_by_type.png"}
    for chart in charts:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5_000


async def test_one_alliance_only(bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path) -> None:
    await seed(bot, chat, clock)
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now(), alliance_id="tunnel")
    workbook, _ = write_report(report, tmp_path)
    assert workbook.name == "联盟年度报告-2026-tunnel.xlsx"
    summary = summary_of(sheet_values(workbook))
    assert summary["范围"] == "隧道联盟"
    assert summary["举办活动"] == 3  # its annual meeting and lecture, and the joint meeting
    assert summary["年会：隧道联盟"] == "已举办" and "年会：桥梁联盟" not in summary
    assert (summary["课题提出"], summary["课题立项"], summary["课题结题"]) == (2, 1, 1)
    assert summary["登记成果"] == 2
    assert (summary["奖励项数"], summary["奖励金额合计"]) == (2, 50_000)
    other_year = summary_of(
        sheet_values(
            write_report(await collect(bot.store, year=2025, tz=SHANGHAI, now=clock.now()), tmp_path)[0]
        )
    )
    assert other_year["举办活动"] == 1 and other_year["登记成果"] == 1 and other_year["奖励金额合计"] == 5000
    with pytest.raises(LookupError):
        await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now(), alliance_id="ocean")


def test_problem_figures_per_month_and_medians() -> None:
    start, end = at(1, 1, 0), at(1, 1, 0, year=2027)
    problems = [
        ProblemFacts("tunnel", at(1, 5), at(1, 5, 12), at(1, 7)),  # claim 2 h, solve 48 h
        ProblemFacts("tunnel", at(1, 20), at(1, 21), None),  # claim 24 h
        ProblemFacts("tunnel", at(3, 1), at(3, 1, 14), at(4, 1)),  # claim 4 h, solve 744 h (solved in April)
        ProblemFacts("bridge", at(12, 30, year=2025), at(12, 31, year=2025), at(1, 2)),  # logged last year
        ProblemFacts("ocean", at(5, 1), None, None),  # not an alliance in scope
    ]
    figures = problem_figures(problems, start=start, end=end, tz=SHANGHAI, alliances=["bridge", "tunnel"])
    assert figures.logged["tunnel"][:4] == [2, 0, 1, 0] and figures.total(figures.logged) == 3
    assert figures.solved["tunnel"][:4] == [1, 0, 0, 1] and figures.solved["bridge"][0] == 1
    assert figures.total(figures.solved) == 3 and figures.logged_and_solved == {"bridge": 0, "tunnel": 2}
    assert figures.median(figures.claim_hours, "tunnel") == 4
    assert figures.median(figures.solve_hours, "tunnel") == (48 + 744) / 2
    assert figures.median(figures.solve_hours) == 72  # bridge: 30 Dec → 2 Jan
    assert figures.median(figures.claim_hours, "bridge") is None


async def test_problem_figures_from_the_problems_feature(
    bot: BotApp, clock: ManualClock, tmp_path: Path
) -> None:
    rows = [
        Problem(
            alliance_id="tunnel",
            created_at=at(1, 5),
            claimed_at=at(1, 5, 12),
            solved_at=at(1, 7),
            status="solved",
            text="盾构",
            asker="u1",
        ),
        Problem(
            alliance_id="tunnel",
            created_at=at(2, 5),
            claimed_at=at(2, 6),
            solved_at=None,
            status="claimed",
            text="注浆",
            asker="u1",
        ),
    ]
    async with bot.store.sessions() as session, session.begin():
        session.add_all(rows)
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    summary = {row.label: row.value for row in summary_rows(report)}
    assert summary["登记问题数"] == 2 and summary["解决问题数"] == 1
    assert summary["认领用时中位数"] == 13.0 and summary["解决用时中位数"] == 48.0


async def test_no_problems_counts_zero(bot: BotApp, clock: ManualClock) -> None:
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    rows = {row.label: row.value for row in summary_rows(report)}
    assert rows["登记问题数"] == 0


async def test_charts_fall_back_to_english_without_a_cjk_font(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path
) -> None:
    await seed(bot, chat, clock)
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    # warnings are errors in this test run: a missing glyph would fail here
    english = write_charts(report, tmp_path / "en", use_cjk=False)
    assert len(english) >= 4 and all(p.stat().st_size > 5_000 for p in english)
    font = find_cjk_font()
    if font is not None:
        chinese = write_charts(report, tmp_path / "zh", font=font)
        assert [p.name for p in chinese] == [p.name for p in english]

async def test_charts_drawn_in_several_threads_at_once_keep_their_fonts(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path
) -> None:
    """The console draws charts in worker threads; matplotlib's style and the warnings filters are
    process-wide, so an English drawing finishing mid-way through a Chinese one must not leave the Chinese one
    in DejaVu Sans (a missing-glyph warning, an error in this run, and a 500 on the console)."""
    import asyncio

    await seed(bot, chat, clock)
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    font = find_cjk_font()
    runs = [
        asyncio.to_thread(write_charts, report, tmp_path / f"run{i}", use_cjk=i % 2 == 0, font=None)
        for i in range(6)
    ]
    drawn = await asyncio.gather(*runs)
    names = {tuple(p.name for p in paths) for paths in drawn}
    assert len(names) == 1 and all(p.stat().st_size > 5_000 for paths in drawn for p in paths)
    if font is None:
        pytest.skip("no CJK font installed: every run drew English labels (the race needs Chinese ones)")



async def test_stats_in_the_chat(bot: BotApp, chat: Chat, clock: ManualClock) -> None:
    await seed(bot, chat, clock)
    text = await chat.say("someone", "/统计")
    assert text.startswith("【2026年联盟统计】")
    assert "活动：举办 4 次（讲座 2、年会 1、会议 1）；已安排待举办 1 次（年会 1）。" in text
    assert "年会：桥梁联盟未举办；四电联盟已安排 12月20日；隧道联盟已举办；城轨联盟未举办。" in text
    assert "课题：提出 4 个，立项 2 个，结题 1 个。" in text
    assert "成果：登记 3 项（发明专利 1、工法 1、QC成果 1）。" in text
    assert (
        "奖励：2 项，合计 50,000 元；按联盟：桥梁联盟 0 元、四电联盟 0 元、隧道联盟 50,000 元、城轨联盟 0 元。"
        in text
    )
    assert "/报表 年份" in text
    tunnel = await chat.say("someone", "/stats 2025 隧道")
    assert tunnel.startswith("【2025年隧道联盟统计】") and "活动：举办 1 次（讲座 1）" in tunnel
    assert "「海洋」既不是年份也不是联盟" in await chat.say("someone", "/统计 海洋")


def charted(report: Any, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The figures ``write_charts`` draws, by file name, as they were when saved."""
    from matplotlib.figure import Figure

    figures: dict[str, Any] = {}
    original = Figure.savefig

    def savefig(fig: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        figures[Path(path).name] = fig
        original(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    write_charts(report, out, use_cjk=False)
    return figures


def yuan(text: str) -> int:
    return int(text.replace(",", ""))


async def test_a_shared_award_adds_up_in_the_chat_the_chart_and_the_workbook(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    # an achievement of two tunnel studios and one bridge studio, awarded 10,000 yuan, and a 30,000 yuan
    # studio award: the shared award is split per studio (3,334 + 3,333 to tunnel, 3,333 to bridge)
    assert "已登记成果" in await chat.say(ADMIN, "/成果 登记 工法 隧道桥梁过渡段施工工法 T1 T2 B1 2026")
    assert "已记录奖励" in await chat.say(ADMIN, "/奖励 1 1万 2026 优秀成果奖")
    assert "已记录奖励" in await chat.say(ADMIN, "/奖励 T1 30000 2026 五星级工作室")
    expected = {"bridge": 3_333, "power": 0, "tunnel": 36_667, "urban": 0}
    names = {a.id: a.name for a in await bot.store.alliances.all()}

    # /统计: the total, one line per alliance, and each alliance's own /统计 all agree
    text = await chat.say("someone", "/统计 2026")
    total = yuan(re.search(r"奖励：2 项，合计 ([\d,]+) 元", text).group(1))  # type: ignore[union-attr]
    assert total == 40_000
    per_alliance = {
        alliance: yuan(re.search(rf"{names[alliance]} ([\d,]+) 元", text).group(1))  # type: ignore[union-attr]
        for alliance in expected
    }
    assert per_alliance == expected and sum(per_alliance.values()) == total
    assert "按获奖工作室平均分摊" in text
    scoped = {}
    for alliance in expected:
        own = await chat.say("someone", f"/统计 2026 {alliance}")
        scoped[alliance] = yuan(re.search(r"合计 ([\d,]+) 元", own).group(1))  # type: ignore[union-attr]
    assert scoped == expected

    # the chart
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    figure = charted(report, tmp_path / "charts", monkeypatch)["awards_by_alliance.png"]
    [ax] = figure.axes
    bars = {
        tick.get_text(): round(bar.get_height() * 10_000)
        for tick, bar in zip(ax.get_xticklabels(), ax.patches, strict=True)
    }
    assert bars == expected and sum(bars.values()) == total

    # the workbook: the summary sheet and a per-alliance table on the awards sheet
    workbook, _ = write_report(report, tmp_path, use_cjk=False)
    sheets = sheet_values(workbook)
    summary = summary_of(sheets)
    assert summary["奖励金额合计"] == total
    assert {a: summary[f"奖励金额：{names[a]}"] for a in expected} == expected
    awards = sheets["奖励"]
    header = [row[:4] for row in awards].index(["联盟编号", "联盟", "奖励金额（元）", "占比"])
    table = {row[0]: row[2] for row in awards[header + 1 : header + 1 + len(expected)]}
    assert table == expected
    assert awards[header + 1 + len(expected)][:3] == ["合计", None, total]


def test_an_award_is_split_per_credited_studio() -> None:
    assert split_award(10_000, ["tunnel", "tunnel", "bridge"]) == {"tunnel": 6_667, "bridge": 3_333}
    assert split_award(10_000, ["bridge", "tunnel", "tunnel"]) == {"bridge": 3_334, "tunnel": 6_666}
    assert split_award(5, ["tunnel", "bridge"]) == {"tunnel": 3, "bridge": 2}
    assert split_award(20_000, []) == {"": 20_000}  # no studio in the roster: unassigned, never lost
    for amount in (1, 7, 9_999, 30_001):
        assert sum(split_award(amount, ["a", "b", "c", "a"]).values()) == amount


async def test_stats_show_the_activities_still_to_come(bot: BotApp, chat: Chat, clock: ManualClock) -> None:
    # 1 December: nothing held yet this year, nine activities on the calendar for the rest of it
    clock.set(at(12, 1))
    activities = ActivityRepo(bot.store.sessions)
    for day, kind, alliance in (
        [(d, "讲座", "tunnel") for d in (3, 8, 15)]
        + [(d, "培训", "bridge") for d in (4, 9, 16, 22, 27)]
        + [(20, "年会", None)]
    ):
        await activities.create(
            Activity(type=kind, title=f"{kind}活动", alliance_id=alliance, start=at(12, day), organizer=ADMIN)
        )
    text = await chat.say("someone", "/统计")
    assert "活动：举办 0 次；已安排待举办 9 次（讲座 3、年会 1、培训 5）。" in text
    assert "年会：桥梁联盟已安排 12月20日" in text
    bridge = await chat.say("someone", "/统计 桥梁")
    assert "活动：举办 0 次；已安排待举办 6 次（年会 1、培训 5）。" in bridge
    # the footer names what a member can actually do, not a server command
    assert "alliance-bot" not in text and "--out" not in text
    assert text.endswith("完整报表（XLSX 工作簿和图表）：联盟负责人和管理员发送 /报表 年份 获取。")


# footnotes (the counting rules) run on into the empty cells beside them
FOOTNOTES = ("奖励金额口径", "奖励支出口径", "效益口径", "专款专用", "参训人次为", "首次响应口径", "满意度口径")


def display_width(value: Any) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))


async def test_workbook_is_readable_names_beside_ids_rates_as_numbers_and_what_is_to_come(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path
) -> None:
    await seed(bot, chat, clock)
    # a lead's own entries, so the workbook can show names from the roster beside user ids
    assert "已登记成果" in await chat.say(T1_LEAD, "/成果 登记 QC成果 降低管片破损率 T1 2026")
    await ActivityRepo(bot.store.sessions).create(
        Activity(
            type="讲座", title="冬季施工讲座", alliance_id="tunnel", start=at(12, 5), organizer="mushandong"
        )
    )
    async with bot.store.sessions() as session, session.begin():
        session.add_all(
            [
                Problem(
                    alliance_id="tunnel",
                    created_at=at(3, 1),
                    solved_at=at(3, 2),
                    status="solved",
                    text="a",
                    asker="u1",
                ),
                Problem(alliance_id="tunnel", created_at=at(3, 5), status="open", text="b", asker="u1"),
                Problem(alliance_id="tunnel", created_at=at(4, 1), status="open", text="c", asker="u1"),
            ]
        )
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    workbook, _ = write_report(report, tmp_path, use_cjk=False)
    book = load_workbook(workbook)

    # every sheet's columns are as wide as their content, a Chinese character counting two
    for sheet in book.worksheets:
        widest: dict[str, int] = {}
        for row in sheet.iter_rows():
            for cell in row:
                if cell.value is None or str(cell.value).startswith(FOOTNOTES):
                    continue  # a footnote runs on into the empty cells beside it
                percent = cell.number_format == "0.0%" and isinstance(cell.value, float | int)
                shown = f"{cell.value:.1%}" if percent else cell.value
                widest[cell.column_letter] = max(widest.get(cell.column_letter, 0), display_width(shown))
        assert widest, sheet.title
        for letter, width in widest.items():
            assert sheet.column_dimensions[letter].width >= min(width, 60), (sheet.title, letter, width)

    # rates are numbers shown as percentages
    summary = book["汇总"]
    [rate] = [row[1] for row in summary.iter_rows() if row[0].value == "本年登记问题解决率"]
    assert rate.value == pytest.approx(1 / 3) and rate.number_format == "0.0%"
    timing = [[c.value for c in row] for row in book["问题时效"].iter_rows()]
    assert timing[0][:2] == ["联盟编号", "联盟"] and "解决率" in timing[0]
    tunnel = next(row for row in book["问题时效"].iter_rows() if row[0].value == "tunnel")
    rate_cell = tunnel[timing[0].index("解决率")]
    assert rate_cell.value == pytest.approx(1 / 3) and rate_cell.number_format == "0.0%"
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert not (isinstance(cell.value, str) and cell.value.endswith("%")), (
                    sheet.title,
                    cell.value,
                )

    # names beside ids: alliances, studios and people
    sheets = sheet_values(workbook)
    topics = {row[0]: row[1:5] for row in sheets["课题"][1:]}
    assert sheets["课题"][0][:2] == ["联盟编号", "联盟"] and topics["tunnel"] == ["隧道联盟", 2, 1, 1]
    assert sheets["问题月度"][0][:3] == ["联盟编号", "联盟", "项目"]
    listed = sheets["成果"]
    header = next(row for row in listed if row and row[0] == "编号")
    columns = {name: header.index(name) for name in header if name}
    mine = next(row for row in listed if row[columns["名称"]] == "降低管片破损率")
    assert (mine[columns["工作室编号"]], mine[columns["工作室"]]) == ("T1", "盾构掘进控制劳模创新工作室")
    assert (mine[columns["联盟编号"]], mine[columns["联盟"]]) == ("tunnel", "隧道联盟")
    assert (mine[columns["登记人账号"]], mine[columns["登记人"]]) == (T1_LEAD, "陈掘进")

    # activities still to come, by alliance and one by one
    upcoming = sheets["待举办活动"]
    assert upcoming[0][:2] == ["联盟编号", "联盟"] and upcoming[0][-1] == "合计"
    kinds = upcoming[0]
    by_alliance = {row[0]: row for row in upcoming[1 : 1 + 6]}
    assert by_alliance["power"][1] == "四电联盟" and by_alliance["power"][kinds.index("年会")] == 1
    assert by_alliance["tunnel"][kinds.index("讲座")] == 1 and by_alliance["tunnel"][-1] == 1
    assert by_alliance["合计"][-1] == 2
    listing = next(i for i, row in enumerate(upcoming) if row and row[0] == "日期")
    rows = [row for row in upcoming[listing + 1 :] if row and row[0] is not None]
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("讲座", "tunnel", "隧道联盟"),
        ("年会", "power", "四电联盟"),
    ]
    assert rows[0][upcoming[listing].index("发起人")] == "穆山洞"


def value_axis(ax: Any, horizontal: bool = False) -> tuple[tuple[float, float], list[float]]:
    low, high = ax.get_xlim() if horizontal else ax.get_ylim()
    ticks = [t for t in (ax.get_xticks() if horizontal else ax.get_yticks()) if low <= t <= high]
    return (low, high), ticks


async def test_empty_charts_have_a_whole_number_axis_and_say_so(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    figures = charted(report, tmp_path / "empty", monkeypatch)
    for name, figure in figures.items():
        if name == "stars_by_alliance.png":  # the roster's stars, not the year's activity: never empty
            continue
        [ax] = figure.axes
        limits, ticks = value_axis(ax, horizontal=name == "achievements_by_type.png")
        assert limits == (0, 1) and ticks == [0, 1], (name, limits, ticks)
        assert "no data" in [t.get_text() for t in ax.texts], name


async def test_counts_sit_on_whole_number_ticks(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(bot, chat, clock)  # a handful of each: matplotlib alone would tick at 0.25, 0.5 …
    async with bot.store.sessions() as session, session.begin():
        session.add(Problem(alliance_id="tunnel", created_at=at(3, 1), status="open", text="a", asker="u1"))
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    figures = charted(report, tmp_path / "seeded", monkeypatch)
    for name in ("problems_by_month.png", "events_by_type.png", "topics.png", "achievements_by_type.png"):
        [ax] = figures[name].axes
        limits, ticks = value_axis(ax, horizontal=name == "achievements_by_type.png")
        assert limits[0] == 0 and limits[1] >= 1, name
        assert ticks and all(float(t).is_integer() for t in ticks), (name, ticks)
        assert "no data" not in [t.get_text() for t in ax.texts], name


async def test_text_in_the_new_cells_stays_text(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path
) -> None:
    evil = ['=HYPERLINK("http://evil.example","点我")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)"]
    activities = ActivityRepo(bot.store.sessions)
    for index, text in enumerate(evil):
        await activities.create(
            Activity(
                type="讲座",
                title=text,
                place=text,
                alliance_id="tunnel",
                start=at(12, 1 + index),
                organizer=ADMIN,
            )
        )
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    workbook, _ = write_report(report, tmp_path, use_cjk=False)
    cells = [cell for row in load_workbook(workbook)["待举办活动"].iter_rows() for cell in row]
    for text in evil:
        found = [cell for cell in cells if cell.value == text]
        assert len(found) == 2 and all(cell.data_type == "s" for cell in found), text
