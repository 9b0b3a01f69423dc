"""``alliance-bot funds import FILE``: ledger entries from a spreadsheet, all or nothing."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings (pydantic) load when a command runs, not for --help
    from bot.settings import Settings


async def _funds_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import BotApp
    from bot.services.achievements.spreadsheet import ImportFileError
    from bot.services.funds import import_file

    bot = await BotApp.create(settings)
    try:
        result = await import_file(bot.runtime, args.file, actor="cli", override=args.override or "")
    except ImportFileError as exc:
        print(f"导入失败：{exc}", file=sys.stderr)
        return 1
    finally:
        await bot.close()
    for line in result.errors:
        print(line, file=sys.stderr)
    if result.errors:
        print(f"导入失败：有误 {len(result.errors)} 行，未导入任何记录。请改正后重新导入。", file=sys.stderr)
        return 1
    print(f"导入完成：新增经费记录 {result.added} 笔。")
    return 0


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``funds`` subcommands."""
    funds = sub.add_parser("funds", help="the funding ledger").add_subparsers(dest="action", required=True)
    imp = funds.add_parser(
        "import", help="import ledger entries from .xlsx/.csv (header: 联盟, 收支, 类别, 金额, 日期, 备注)"
    )
    imp.add_argument("file")
    imp.add_argument(
        "--override",
        metavar="REASON",
        help="as an admin: let spending past a budget or outside the categories through, with this reason",
    )
    imp.set_defaults(run=_funds_import)
