"""``alliance-bot achievements import FILE``: the union's achievement spreadsheets into the database."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings (pydantic) load when a command runs, not for --help
    from bot.settings import Settings


async def _achievements_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.achievements.spreadsheet import ImportFileError, ProgressBar, import_rows, read_rows
    from bot.store import Store
    from bot.store.achievements import AchievementRepo

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


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``achievements`` subcommands."""
    achievements = sub.add_parser("achievements", help="the achievements database").add_subparsers(
        dest="action", required=True
    )
    imp = achievements.add_parser(
        "import", help="import achievements from .xlsx/.csv (header: 类型, 名称, 工作室, 年份, 奖励金额)"
    )
    imp.add_argument("file")
    imp.set_defaults(run=_achievements_import)
