"""Real processes: two bot processes on one database close the same evaluation round at once; the results,
the star change and the award are recorded once and announced once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlmodel import select

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.services.evaluations import EvaluationService
from bot.services.studios import load_roster
from bot.settings import Settings
from bot.store.achievements import Award
from bot.store.evaluations import StarChange
from bot.store.outbox import OutboxMessage
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, ROOT, Chat
from tests.processes import clean_env

CLOSER = """
import asyncio, sys
from bot.app import BotApp
from bot.services.evaluations import EvaluationService
from bot.settings import Settings

async def main(url):
    bot = await BotApp.create(Settings(database_url=url), migrate=False)
    try:
        result = await bot.runtime.feature(EvaluationService).close(1, caller=None, source="job")
        print("closed" if result is not None else "already")
    finally:
        await bot.close()

asyncio.run(main(sys.argv[1]))
"""


async def test_two_processes_close_a_round_once(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    bot = await BotApp.create(Settings(database_url=database_url, admins=[ADMIN]), clock=clock)
    try:
        await bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        chat = Chat(bot)
        reply = await chat.say(ADMIN, "/评选 发起 星级 隧道 评委=张拉力 申报截止=11月30日 评分截止=12月5日")
        assert reply.startswith("已发起评选 #1"), reply
        assert "申报五星" in await chat.say("shibaopo", "/评选 申报 1 T2 五星")
        assert (await chat.say("zhanglali", "/评选 评分 1 1 90 90 90")).startswith("已评分")
    finally:
        await bot.close()
    script = tmp_path / "close_round.py"
    script.write_text(CLOSER, encoding="utf-8")
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            database_url,
            cwd=ROOT,
            env=clean_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [o[1].decode()[-2000:] for o in outputs]
    assert sorted(o[0].decode().strip() for o in outputs) == ["already", "closed"]
    bot = await BotApp.create(Settings(database_url=database_url, admins=[ADMIN]), clock=clock, migrate=False)
    try:
        async with bot.store.sessions() as session:
            awards = (await session.exec(select(Award))).all()
            stars = (await session.exec(select(StarChange))).all()
            results = [m for m in (await session.exec(select(OutboxMessage))).all() if "结果】" in m.text]
        assert [(a.studio_id, a.amount) for a in awards] == [("T2", 30000)]
        assert [(s.studio_id, s.before, s.after) for s in stars] == [("T2", 4, 5)]
        assert len(results) == 1
        evaluation = await bot.runtime.feature(EvaluationService).get(1)
        assert (evaluation.state, evaluation.closed_by) == ("closed", "job")
    finally:
        await bot.close()
