"""``alliance-bot studios import FILE`` and ``alliance-bot studios list``: the roster."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings (pydantic) load when a command runs, not for --help
    from bot.settings import Settings


async def _studios_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.studios import RosterError, kept_stars_text, load_roster
    from bot.store import Store

    try:
        roster = load_roster(args.file)
    except RosterError as exc:
        print(exc, file=sys.stderr)
        return 1
    store = await Store.open(settings.effective_database_url)
    try:
        result = await store.studios.import_roster(roster, actor="cli", override_stars=args.override_stars)
    finally:
        await store.close()
    print(
        f"导入完成：联盟 新增 {result.alliances_created}、更新 {result.alliances_updated}；"
        f"工作室 新增 {result.studios_created}、更新 {result.studios_updated}；未变 {result.unchanged}"
    )
    for kept in result.kept_stars:
        print(f"{kept_stars_text(kept)}：评选结果优先，未改星级（以名册为准请加 --override-stars）")
    if result.stars_changed:
        print(f"星级按名册变更 {result.stars_changed} 个工作室，已记入星级历史。")
    _prepare_tokenizer(settings)
    return 0


def _prepare_tokenizer(settings: Settings) -> None:
    """Write the routing tokenizer's dictionary cache into the data directory now (about a second, once), so
    the first ``route`` or ``chat`` after set-up (``make run`` imports the roster first) starts as fast as the
    later ones."""
    from bot.routing.text import use_cache_dir, warm_tokenizer

    use_cache_dir(settings.effective_data_dir)
    warm_tokenizer()


async def _studios_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store import Store

    store = await Store.open(settings.effective_database_url)
    try:
        for studio in await store.studios.all():
            print(f"{studio.id}\t{studio.alliance_id}\t{studio.stars}\t{studio.name}\t{studio.lead_userid}")
    finally:
        await store.close()
    return 0


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``studios import`` and ``studios list`` subcommands."""
    studios = sub.add_parser("studios", help="the studio roster").add_subparsers(dest="action", required=True)
    imp = studios.add_parser("import", help="import a roster YAML file (upsert by id; all or nothing)")
    imp.add_argument("file")
    imp.add_argument(
        "--override-stars",
        action="store_true",
        help="apply the roster's stars also where an evaluation round set them (kept by default)",
    )
    imp.set_defaults(run=_studios_import)
    studios.add_parser("list", help="list studios (tab-separated)").set_defaults(run=_studios_list)
