"""SQLite statements run on the event loop's thread; a statement that meets another process's write lock waits
for it in the driver's thread (the loop keeps running), and ``offloaded()`` reads go there too."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from bot.store.engine import calls_of, create_engine, offloaded


async def _ready(path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)"))
    return engine


async def test_statements_run_inline_without_trips_to_the_thread(tmp_path: Path) -> None:
    engine = await _ready(tmp_path / "bot.db")
    try:
        calls = calls_of(engine)
        before = calls.trips
        async with engine.begin() as conn:
            for k in range(20):
                await conn.execute(text("INSERT INTO t (k, v) VALUES (:k, 'x')"), {"k": k})
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 20
        assert calls.trips == before  # no statement, fetch or commit went to aiosqlite's thread
        with offloaded():
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 20
        assert calls.trips > before
    finally:
        await engine.dispose()


async def test_a_write_meeting_another_process_lock_waits_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    engine = await _ready(path)
    other = sqlite3.connect(path, check_same_thread=False)  # another process, in effect: its own connection
    other.isolation_level = None
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    other.execute("INSERT INTO t (k, v) VALUES (1, 'theirs')")
    release = threading.Timer(0.6, lambda: other.execute("COMMIT"))
    try:
        calls = calls_of(engine)
        busy = calls.busy
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.02)

        running = asyncio.create_task(ticker())
        started = time.monotonic()
        release.start()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (k, v) VALUES (2, 'ours')"))
        waited = time.monotonic() - started
        running.cancel()
        assert waited >= 0.5  # it did wait for the other writer, and then succeeded
        assert calls.busy == busy + 1
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert len(ticks) >= 15 and max(gaps) < 0.3, gaps  # the loop kept running meanwhile
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT k, v FROM t ORDER BY k"))).all()
        assert [tuple(r) for r in rows] == [(1, "theirs"), (2, "ours")]
    finally:
        release.cancel()
        other.close()
        await engine.dispose()


async def test_a_roster_import_and_the_solved_history_checks_run_off_the_loop(tmp_path: Path) -> None:
    """The roster import (hundreds of statements, e.g. from the console's upload) and the routing index's scans
    of every solved problem go to the driver's thread, so the loop answers callbacks meanwhile."""
    from bot.services.studios import load_roster
    from bot.store import Store
    from bot.store.problems import ProblemRepo
    from tests.conftest import EXAMPLE_ROSTER

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        calls = calls_of(store.engine)
        before = calls.trips
        await store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        after_import = calls.trips
        assert after_import > before + 10  # every statement of the import went to the thread
        repo = ProblemRepo(store.sessions)
        assert await repo.solved_ids() == set()
        assert (await repo.solved_signature())[0] == 0
        assert calls.trips > after_import
    finally:
        await store.close()
