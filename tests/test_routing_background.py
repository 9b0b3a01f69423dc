"""A large routing history is read in the background: the bot answers at once (routing on the roster), keeps
what is solved meanwhile, swaps the full index in when it is complete, and stops reading at shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

import bot.services.problems as problems_service
from bot.app import BotApp, build_web_app
from bot.core.clock import ManualClock
from bot.routing import RoutingIndex
from bot.services.problems import ProblemService
from bot.services.studios import load_roster
from bot.settings import Settings
from bot.store import Store
from bot.store.problems import Problem, ProblemRepo, ProblemStatus
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, Chat

SOLVED = 40
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
# (studio, question) pairs written for this test; T1 is the roster's shield-tunnelling studio
HISTORY = [
    ("T1", "盾构机推进时管片错台超过规范，第{n}环怎么纠偏"),
    ("B1", "预应力张拉后第{n}根钢绞线回缩量偏大"),
    ("P1", "接触网第{n}跨吊弦受力不均"),
]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Hold the background reading of the history until the test opens the gate (the reading itself is real)."""
    opened = threading.Event()
    real = problems_service._add_history

    def held(index: RoutingIndex, rows: Sequence[tuple[int, str | None, str, str, str]]) -> None:
        opened.wait(30)
        real(index, rows)

    monkeypatch.setattr(problems_service, "_add_history", held)
    monkeypatch.setattr(problems_service, "BUILD_INLINE", 10)
    yield opened
    opened.set()


async def _seed(settings: Settings) -> None:
    store = await Store.open(settings.effective_database_url)
    try:
        await store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        alliances = {s.id: s.alliance_id for s in await store.studios.all()}
        rows = []
        for n in range(SOLVED):
            studio, text = HISTORY[n % len(HISTORY)]
            rows.append(
                Problem(
                    ref=f"h{n:03d}",
                    text=text.format(n=n),
                    asker="import",
                    alliance_id=alliances[studio],
                    status=ProblemStatus.SOLVED.value,
                    studio_id=studio,
                    answer="按规范处理",
                    source="import",
                    created_at=NOW,
                    claimed_at=NOW,
                    answered_at=NOW,
                    solved_at=NOW,
                )
            )
        await ProblemRepo(store.sessions).add_imported(rows)
    finally:
        await store.close()


async def test_answers_while_the_history_is_read_and_catches_up_after(
    settings: Settings, clock: ManualClock, gate: threading.Event
) -> None:
    await _seed(settings)
    app = await BotApp.create(settings, clock=clock)
    try:
        service = app.runtime.feature(ProblemService)
        assert len(await service.index()) == 0  # routing on the roster meanwhile
        assert service.building
        chat = Chat(app)
        assert "/帮助" in await chat.say("u1", "/help")
        reply = await chat.say("u1", "盾构掘进的时候刀盘扭矩一下子变大了怎么办")
        assert "盾构掘进控制" in reply, reply  # routed on the roster alone
        # solved while the history is read: not lost when the full index is swapped in
        logged = next(p for p in await ProblemRepo(app.store.sessions).find() if p.source != "import")
        assert "已认领" in await chat.say(ADMIN, f"/认领 {logged.id} @T1")
        assert "已标记为解决" in await chat.say(ADMIN, f"/解决 {logged.id}")
        gate.set()
        task = service._history_task
        assert task is not None
        await asyncio.wait_for(task, 30)
        assert not service.building
        index = await service.index()
        solved = await ProblemRepo(app.store.sessions).solved_ids()
        assert len(index) == len(solved) >= SOLVED
    finally:
        await app.close()


async def test_healthz_lists_the_routing_index_as_warming_until_the_history_is_in(
    settings: Settings, clock: ManualClock, gate: threading.Event
) -> None:
    await _seed(settings)
    app = await BotApp.create(settings, clock=clock)
    service = app.runtime.feature(ProblemService)
    try:
        # the web app's lifecycle starts the bot (its warm-ups included) and closes it
        async with TestClient(TestServer(build_web_app(app))) as client:
            for _ in range(100):  # the roster index is built first, then the history is read
                if service.building:
                    break
                await asyncio.sleep(0.05)
            body = await (await client.get("/healthz")).json()
            assert body["warming"] == ["routing-index"]
            answered = time.perf_counter()
            assert "/帮助" in await Chat(app).say("u1", "/help")  # answered meanwhile, not after the warm-up
            assert time.perf_counter() - answered < 10
            warmed = asyncio.ensure_future(app.warmed())  # what `serve` waits for before gc.freeze()
            await asyncio.sleep(0.1)
            assert not warmed.done() and service.building
            gate.set()
            await asyncio.wait_for(warmed, 20)
            for _ in range(200):
                body = await (await client.get("/healthz")).json()
                if not body["warming"]:
                    break
                await asyncio.sleep(0.05)
            assert body["warming"] == []
            assert len(await service.index()) >= SOLVED
    finally:
        gate.set()


async def test_shutdown_stops_reading_the_history(
    settings: Settings, clock: ManualClock, gate: threading.Event
) -> None:
    await _seed(settings)
    app = await BotApp.create(settings, clock=clock)
    service = app.runtime.feature(ProblemService)
    await service.index()
    assert service.building
    task = service._history_task
    gate.set()  # the worker thread finishes its page; the reading coroutine is cancelled
    await asyncio.wait_for(app.close(), 10)
    assert task is not None and task.done()


async def test_a_small_history_is_indexed_before_the_first_answer(
    settings: Settings, clock: ManualClock
) -> None:
    await _seed(settings)
    app = await BotApp.create(settings, clock=clock)
    try:
        service = app.runtime.feature(ProblemService)
        assert len(await service.index()) == SOLVED
        assert not service.building
    finally:
        await app.close()
