"""``alliance-bot achievements import``: XLSX and CSV (UTF-8 or GBK) with a header row; bad rows are reported by
row number and the rest imported; a second import adds nothing; the progress bar goes to stderr."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.app import BotApp
from bot.cli.main import build_parser
from bot.services.achievements.service import AchievementService
from bot.services.achievements.spreadsheet import ProgressBar, parse_year, read_rows
from bot.settings import Settings
from tests.test_cli import run

HEADER = ["类型", "名称", "工作室", "年份", "奖励金额"]
ROWS: list[list[object]] = [
    ["工法", "盾构隧道管片拼装错台控制施工工法", "T1", 2025, 20000],  # row 2
    ["发明专利", "一种预制箱梁智能张拉压浆一体化装置", "B1、B2", "2024年", "2万"],  # row 3
    ["论文", "某篇论文", "T1", 2025, None],  # row 4: not an achievement type
    ["QC成果", "", "T3", 2025, None],  # row 5: no name
    [None, None, None, None, None],  # row 6: empty, ignored
    ["QC成果", "提高二次衬砌密实度", "T3", "去年", None],  # row 7: bad year
    ["实用新型专利", "一种吊弦预配平台", "P1 X9", 2025, None],  # row 8: unknown studio
    [
        "管理创新成果",
        "农民工实名制管理平台",
        "隧道防排水与衬砌质量工作室",
        2025.0,
        "两万",
    ],  # row 9: bad amount
    ["职工技术创新成果", "ZPW-2000轨道电路调试辅助工具", "p2", 2025, ""],  # row 10
]


def write_xlsx(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


async def run_import(path: Path, settings: Settings) -> int:
    args = parse("achievements", "import", str(path))
    return int(await args.run(args, settings))


async def test_xlsx_import_reports_bad_rows_and_imports_the_rest(
    bot: BotApp, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_xlsx(tmp_path / "成果.xlsx", ROWS)
    assert await run_import(path, settings) == 1  # some rows were bad
    out, err = capsys.readouterr()
    assert "导入完成：新增成果 3 项（其中带奖励 2 项，合计 40,000 元），已有跳过 0 项，有误 5 行。" in out
    assert "第 4 行：类型「论文」不是成果类型" in err
    assert "第 5 行：名称为空" in err
    assert "第 6 行" not in err
    assert "第 7 行：年份「去年」不是四位年份" in err
    assert "第 8 行：没有找到工作室「X9」" in err
    assert "第 9 行：奖励金额「两万」不是金额" in err
    assert "导入 [" in err and "8/8" in err  # the progress bar counted every non-empty row
    service = bot.runtime.feature(AchievementService)
    achievements = sorted(await service.achievements.all(), key=lambda a: a.id or 0)
    assert [(a.type, a.title, a.studios, a.year, a.source) for a in achievements] == [
        ("工法", "盾构隧道管片拼装错台控制施工工法", ["T1"], 2025, "import"),
        ("发明专利", "一种预制箱梁智能张拉压浆一体化装置", ["B1", "B2"], 2024, "import"),
        ("职工技术创新成果", "ZPW-2000轨道电路调试辅助工具", ["P2"], 2025, "import"),
    ]
    awards = await service.achievements.awards()
    assert [(a.achievement_id, a.amount, a.year) for a in awards] == [(2, 20_000, 2024), (1, 20_000, 2025)]
    # importing the same file again adds nothing and says why
    assert await run_import(path, settings) == 1
    out, err = capsys.readouterr()
    assert "新增成果 0 项" in out and "已有跳过 3 项" in out
    assert "第 2 行：已有成果 #1「盾构隧道管片拼装错台控制施工工法」，跳过" in err
    assert len(await service.achievements.all()) == 3


async def test_gbk_csv_with_columns_in_any_order(
    bot: BotApp, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "成果.csv"
    path.write_bytes("名称,年份,类型,工作室\n衬砌背后空洞检测方法,2025,工法,T3;T2\n".encode("gb18030"))
    assert await run_import(path, settings) == 0
    out, _ = capsys.readouterr()
    assert "新增成果 1 项（其中带奖励 0 项，合计 0 元）" in out and "有误 0 行" in out
    (achievement,) = await bot.runtime.feature(AchievementService).achievements.all()
    assert (achievement.title, achievement.studios, achievement.type) == (
        "衬砌背后空洞检测方法",
        ["T3", "T2"],
        "工法",
    )


async def test_unreadable_files_are_refused(
    bot: BotApp, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong_header = write_xlsx(tmp_path / "a.xlsx", [["工法", "x"]], header=["类型", "标题"])
    assert await run_import(wrong_header, settings) == 1
    assert "第 1 行表头缺少：名称、工作室、年份" in capsys.readouterr().err
    (tmp_path / "b.txt").write_text("类型,名称\n", encoding="utf-8")
    assert await run_import(tmp_path / "b.txt", settings) == 1
    assert "不支持的文件类型「.txt」" in capsys.readouterr().err
    assert await run_import(tmp_path / "missing.xlsx", settings) == 1
    assert "找不到文件" in capsys.readouterr().err
    (tmp_path / "c.xlsx").write_text("not a workbook", encoding="utf-8")
    assert await run_import(tmp_path / "c.xlsx", settings) == 1
    assert "无法读取 Excel 文件 c.xlsx" in capsys.readouterr().err
    (tmp_path / "d.csv").write_text("", encoding="utf-8")
    assert await run_import(tmp_path / "d.csv", settings) == 1
    assert "文件是空的" in capsys.readouterr().err


def test_read_rows_numbers_rows_like_the_spreadsheet(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "x.xlsx", [["工法", "甲", "T1", 2025, None], [None] * 5, ["工法", "乙", "T1", 2025, 1]]
    )
    total, rows = read_rows(path)
    assert total == 2 and [r.number for r in rows] == [2, 4]
    assert parse_year("2025年") == 2025 and parse_year(2025.0) == 2025


def test_progress_bar() -> None:
    stream = io.StringIO()
    bar = ProgressBar(4, width=8, stream=stream)
    bar(1)
    bar(4)
    assert stream.getvalue() == "\r导入 [##------] 1/4\r导入 [########] 4/4\n"


def test_command_line_import_then_report(tmp_path: Path) -> None:
    from tests.harness import EXAMPLE_ROSTER

    assert run(["studios", "import", str(EXAMPLE_ROSTER)], tmp_path).returncode == 0
    path = write_xlsx(tmp_path / "成果.xlsx", ROWS[:2])
    result = run(["achievements", "import", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "新增成果 2 项" in result.stdout and "2/2" in result.stderr
    report = run(["report", "--year", "2025", "--out", str(tmp_path / "out")], tmp_path)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "out" / "联盟年度报告-2025.xlsx").exists()
    assert (tmp_path / "out" / "achievements_by_type.png").exists()
    assert "登记成果\t1\t项" in report.stdout and "奖励金额合计\t20000\t元" in report.stdout
    unknown = run(["report", "--year", "2025", "--alliance", "ocean", "--out", str(tmp_path / "x")], tmp_path)
    assert unknown.returncode == 2 and "没有找到联盟「ocean」" in unknown.stderr
    by_name = run(["report", "--year", "2025", "--alliance", "隧道", "--out", str(tmp_path / "t")], tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    assert len(list((tmp_path / "t").glob("*.xlsx"))) == 1
