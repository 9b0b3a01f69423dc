"""``alliance-bot achievements import FILE`` and ``alliance-bot report --year YEAR [--alliance ID] --out DIR``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.settings import Settings


async def _achievements_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.achievement_import import ImportFileError, ProgressBar, import_rows, read_rows
    from bot.store import Store
    from bot.store.topics import AchievementRepo

    try:
        total, rows = read_rows(Path(args.file))
    except ImportFileError as exc:
        print(f"导入失败：{exc}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    store = await Store.open(settings.effective_database_url)
    try:
        studios = {s.id: s for s in await store.studios.all()}
        report = await import_rows(
            rows,
            repo=AchievementRepo(store.sessions),
            studios=studios,
            now=now,
            this_year=now.astimezone(settings.tz).year,
            progress=ProgressBar(total) if total else None,
        )
    finally:
        await store.close()
    for line in report.skipped:
        print(line, file=sys.stderr)
    for line in report.errors:
        print(line, file=sys.stderr)
    print(
        f"导入完成：新增成果 {report.added} 项（其中带奖励 {report.awards} 项，合计 {report.award_total:,} 元），"
        f"已有跳过 {len(report.skipped)} 项，有误 {len(report.errors)} 行。"
    )
    return 1 if report.errors else 0


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.reports import collect, summary_rows, write_report
    from bot.store import Store

    store = await Store.open(settings.effective_database_url)
    try:
        try:
            report = await collect(
                store, year=args.year, tz=settings.tz, now=datetime.now(UTC), alliance_id=args.alliance
            )
        except LookupError:
            names = "、".join(f"{a.id}（{a.name}）" for a in await store.alliances.all())
            print(f"没有 id 为 {args.alliance} 的联盟。现有联盟：{names}", file=sys.stderr)
            return 2
    finally:
        await store.close()
    workbook, charts = write_report(report, Path(args.out))
    print(f"报表：{workbook}")
    for chart in charts:
        print(f"图表：{chart}")
    for row in summary_rows(report):
        print(f"{row.label}\t{row.value}\t{row.note}".rstrip())
    return 0


def _year(text: str) -> int:
    if not (text.isdigit() and 1980 <= int(text) <= 2100):
        raise argparse.ArgumentTypeError(f"not a year: {text}")
    return int(text)


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``achievements`` and ``report`` subcommands."""
    achievements = sub.add_parser("achievements", help="the achievements database").add_subparsers(
        dest="action", required=True
    )
    imp = achievements.add_parser(
        "import", help="import achievements from .xlsx/.csv (header: 类型, 名称, 工作室, 年份, 奖励金额)"
    )
    imp.add_argument("file")
    imp.set_defaults(run=_achievements_import)

    report = sub.add_parser("report", help="the year's figures: an XLSX workbook and PNG charts")
    report.add_argument(
        "--year", type=_year, default=datetime.now(UTC).year, help="calendar year (default: this year)"
    )
    report.add_argument("--alliance", help="limit the report to one alliance (its id)")
    report.add_argument("--out", required=True, help="directory for the workbook and the charts")
    report.set_defaults(run=_report)
