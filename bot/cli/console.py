"""``alliance-bot console-link USERID``: a one-time sign-in link to the web console (for the first admin)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings (pydantic) load when a command runs, not for --help
    from bot.settings import Settings


async def _console_link(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.clock import SystemClock
    from bot.core.outbox import Outbox
    from bot.core.runtime import Runtime
    from bot.services.console import LINK_MINUTES, ConsoleService
    from bot.store import Store

    store = await Store.open(settings.effective_database_url)
    try:
        clock = SystemClock()
        runtime = Runtime(settings=settings, store=store, clock=clock, outbox=Outbox(store, now=clock.now))
        service = ConsoleService(runtime)
        if args.admin:  # the first admin of a fresh installation: stored, as /授权 USERID 管理员 would
            from bot.store.studios import MemberRole

            await store.members.grant(args.user, MemberRole.ADMIN.value, alliance_id=None, studio_id=None)
        link = await service.link(args.user)
        caller = await service.caller(args.user)
    finally:
        await store.close()
    print(link)
    print(f"（{LINK_MINUTES} 分钟内有效，只能使用一次；{args.user} 当前身份：{caller.role.label}）")
    return 0


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``console-link`` subcommand."""
    link = sub.add_parser("console-link", help="print a one-time sign-in link to the web console (/console)")
    link.add_argument("user", metavar="USERID", help="the WeCom user id to sign in as")
    link.add_argument(
        "--admin",
        action="store_true",
        help="grant USERID the admin role first (stored, as /授权 USERID 管理员 would; for the first admin)",
    )
    link.set_defaults(run=_console_link)
