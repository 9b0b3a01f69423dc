"""The ``alliance-bot`` command line.

Building the parser imports no more than argparse and the feature CLI modules: the settings (pydantic), asyncio,
the store, aiohttp and the routing load when a command runs, so ``--help`` starts at once
(``tests/test_cli.py::test_help_of_every_command_loads_no_heavy_module``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.cli import studios

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("bot")


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import gc
    import signal

    from aiohttp import web

    from bot.app import BotApp, build_web_app

    bot = await BotApp.create(settings)
    app = build_web_app(bot)
    # keep-alive connections idle for 15 s are closed (the proxy in front bounds header and body reads)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=15.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    # what start-up built (the routing index, the vocabulary, modules) lives as long as the process: moved out
    # of the collector's reach, it is not rescanned in the 70-200 ms full collections a busy server would see
    gc.collect()
    gc.freeze()

    async def freeze_when_warm() -> None:
        # the routing index reads a large history after the port opened: frozen too once it is in (without
        # another full collection, which is the very pause avoided: 150 ms at 20,000 solved problems)
        await bot.warmed()
        gc.freeze()

    bot.spawn(freeze_when_warm(), name="gc-freeze")
    channels = "、".join(bot.live_channels) if bot.live_channels else "none (WeCom settings absent)"
    print(
        f"alliance-bot serving on http://{settings.host}:{settings.port} — live channels: {channels}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        # cleanup_ctx stops the scheduler, drains background work and closes the database
        await runner.cleanup()
    return 0


async def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import BotApp
    from bot.channels.console import run_console

    if args.admin and args.user not in settings.admins:
        # this session only, as if the user were listed in BOT_ADMINS: nothing is written to the database
        settings = settings.model_copy(update={"admins": [*settings.admins, args.user]})
    bot = await BotApp.create(settings)
    try:
        await run_console(bot, user_id=args.user, group=args.group)
    finally:
        await bot.close()
    return 0


async def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.engine import create_engine, current_revisions, upgrade_database

    engine = create_engine(settings.effective_database_url)
    try:
        await upgrade_database(engine, args.revision)
        revisions = await current_revisions(engine)
    finally:
        await engine.dispose()
    print(f"database at {', '.join(sorted(revisions)) or 'base'}")
    return 0


async def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import BotApp
    from bot.handlers.admin import job_report

    bot = await BotApp.create(settings)
    try:
        print(await job_report(bot.jobs, settings.tz))
    finally:
        await bot.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="alliance-bot", description="Studio-alliance WeCom bot")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server (WeCom callbacks, /healthz) with the scheduler")
    serve.set_defaults(run=_serve)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal (each line is one message)")
    chat.add_argument("--user", required=True, help="the WeCom user id to speak as")
    chat.add_argument("--group", help="the group chat to speak in (default: a 1:1 chat)")
    chat.add_argument(
        "--admin",
        action="store_true",
        help="speak as an admin for this session only (as if the user were in BOT_ADMINS; nothing is stored)",
    )
    chat.set_defaults(run=_chat)

    studios.register_cli(sub)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="action", required=True)
    up = db.add_parser("upgrade", help="run migrations to the latest revision")
    up.add_argument("revision", nargs="?", default="heads")
    up.set_defaults(run=_db_upgrade)

    sub.add_parser("jobs", help="scheduled jobs: next run and last outcome").set_defaults(run=_jobs)

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


def _feature_commands() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    # Feature modules that add subcommands expose ``register_cli(subparsers)``.
    import importlib

    registers = []
    for name in CLI_MODULES:
        registers.append(importlib.import_module(name).register_cli)
    return registers


CLI_MODULES: tuple[str, ...] = (
    "bot.cli.activities",
    "bot.cli.achievements",
    "bot.cli.reports",
    "bot.cli.problems",
    "bot.cli.outbox",
    "bot.cli.console",
    "bot.cli.funds",
)
EXTRA_COMMANDS = _feature_commands()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``alliance-bot`` and ``python -m bot``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from bot.core.logs import install_repeat_filter

    install_repeat_filter()  # a flood of one line (1,100 slow clients) is summarised, not written out
    if not args.verbose:
        logging.getLogger("bot").setLevel(logging.INFO)
        for noisy in ("jieba", "apscheduler", "aiosqlite", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    import asyncio

    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"alliance-bot: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(args.run(args, settings))
    except SettingsError as exc:  # found while setting up, e.g. a malformed EncodingAESKey
        print(f"alliance-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
