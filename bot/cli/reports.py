"""``alliance-bot report --year YEAR [--alliance ID] --out DIR``: the year report as XLSX and charts."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings (pydantic) load when a command runs, not for --help
    from bot.settings import Settings


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.reports import collect, summary_rows, write_report
    from bot.store import Store

    store = await Store.open(settings.effective_database_url)
    try:
        alliance_id = None
        if args.alliance:  # an id or a name (隧道, 隧道联盟)
            alliance = await store.alliances.find(args.alliance)
            if alliance is None:
                names = "、".join(f"{a.id}（{a.name}）" for a in await store.alliances.all())
                print(f"没有找到联盟「{args.alliance}」。现有联盟：{names}", file=sys.stderr)
                return 2
            alliance_id = alliance.id
        report = await collect(
            store, year=args.year, tz=settings.tz, now=datetime.now(UTC), alliance_id=alliance_id
        )
    finally:
        await store.close()
    workbook, charts = write_report(report, Path(args.out))
    print(f"报表：{workbook}")
    for chart in charts:
        print(f"图表：{chart}")
    for row in summary_rows(report):
        print(f"{row.label}\t{row.shown()}\t{row.note}".rstrip())
    return 0


def _year(text: str) -> int:
    if not (text.isdigit() and 1980 <= int(text) <= 2100):
        raise argparse.ArgumentTypeError(f"not a year: {text}")
    return int(text)


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` subcommand."""
    report = sub.add_parser("report", help="the year's figures: an XLSX workbook and PNG charts")
    report.add_argument(
        "--year", type=_year, default=datetime.now(UTC).year, help="calendar year (default: this year)"
    )
    report.add_argument("--alliance", help="limit the report to one alliance (its id or name, e.g. 隧道)")
    report.add_argument("--out", required=True, help="directory for the workbook and the charts")
    report.set_defaults(run=_report)
