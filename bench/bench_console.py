"""Benchmark: the web console's page render times at 161 studios and 10,000 problems.

Seeds a fresh database (SQLite in a temporary directory, or a fresh PostgreSQL database with ``--postgres``)
directly through the repositories: the 161 synthetic studios of ``bench_routing.make_roster`` over 4 alliances,
``--problems`` problems over the past year (most solved or closed, the rest open with the studios asked), a month
of activities with sign-ups, topics, achievements and awards, audit entries. It then serves ``/console`` over real
HTTP (aiohttp on a loopback port, this process), signs in through a one-time link and requests every page
``--n`` times in turn, one request at a time, measuring each from send to the complete body.

The baseline is the sign-in page: the same server, middleware and template machinery without a database read,
so the ``× baseline`` column is what each page's own work costs.

Run (prints a Markdown table):
    .venv/bin/python bench/bench_console.py                # SQLite
    .venv/bin/python bench/bench_console.py --postgres     # PostgreSQL (a fresh database on 127.0.0.1:5432)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_routing import ALLIANCES, make_roster  # noqa: E402
from bot.app import BOT_KEY, BotApp  # noqa: E402
from bot.channels.web import add_routes  # noqa: E402
from bot.services.activities.service import ActivityService  # noqa: E402
from bot.services.console import ConsoleService  # noqa: E402
from bot.services.problems import ProblemService  # noqa: E402
from bot.services.studios import parse_roster  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store.achievements import Achievement, AchievementRepo, Award  # noqa: E402
from bot.store.activities import Activity  # noqa: E402
from bot.store.audit import AuditRepo  # noqa: E402
from bot.store.problems import Problem, ProblemStatus  # noqa: E402
from bot.store.topics import Topic, TopicRepo  # noqa: E402
from tests.harness import fresh_postgres_database  # noqa: E402

ADMIN = "bench-admin"


def roster_data() -> dict[str, object]:
    """The 161 synthetic studios as a roster mapping."""
    studios = make_roster()
    return {
        "alliances": [
            {"id": a, "name": name, "lead": {"name": f"{name}负责人", "wecom_userid": f"lead-{a}"}}
            for a, name in ALLIANCES
        ],
        "studios": [
            {
                "id": s.id,
                "name": s.name,
                "alliance": s.alliance,
                "unit": f"{s.alliance}第{n % 12 + 1}工程局",
                "type": (
                    "科技研发型",
                    "管理创新型",
                    "五小攻关型",
                    "项目党建型",
                    "海外经营型",
                    "农民工管理型",
                )[n % 6],
                "stars": 3 + n % 3,
                "lead": {"name": f"负责人{n}", "wecom_userid": f"lead{n}"},
                "expertise": list(s.expertise),
                "description": s.description,
            }
            for n, s in enumerate(studios)
        ],
    }


async def seed(bot: BotApp, problems: int) -> dict[str, int]:
    """Everything the pages show, written through the repositories; returns ids to request."""
    rng = random.Random(5)
    await bot.store.studios.import_roster(parse_roster(roster_data()))
    studios = await bot.store.studios.all()
    now = bot.clock.now()
    repo = bot.runtime.feature(ProblemService).repo
    open_share = 0.1
    batch: list[Problem] = []
    first_open = None
    for n in range(problems):
        studio, second = rng.sample(studios, 2)
        created = now - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        if rng.random() < open_share:
            made = await repo.create(
                Problem(
                    text=f"第{n}号问题：{studio.description[:40]}",
                    asker=f"user{n % 500}",
                    alliance_id=studio.alliance_id,
                    status=rng.choice((ProblemStatus.ROUTED, ProblemStatus.CLAIMED)).value,
                    studio_id=None,
                    created_at=created,
                    routed_at=created,
                ),
                requests=[(studio.id, 1), (second.id, 2)],
                events=[
                    ("logged", f"user{n % 500}", "隧道联盟群"),
                    ("routed", "system", f"通知 {studio.name}（{studio.id}）"),
                ],
            )
            first_open = first_open or made.id
            continue
        solved = rng.random() < 0.8
        batch.append(
            Problem(
                ref=f"b{n}",
                text=f"第{n}号问题：{studio.description[:40]}",
                asker=f"user{n % 500}",
                alliance_id=studio.alliance_id,
                status=(ProblemStatus.SOLVED if solved else ProblemStatus.CLOSED).value,
                studio_id=studio.id if solved else None,
                answer="按规范处理" if solved else "",
                source="import",
                created_at=created,
                solved_at=created + timedelta(hours=rng.randint(1, 200)) if solved else None,
                closed_at=None if solved else created + timedelta(days=3),
            )
        )
        if len(batch) >= 1000:
            await repo.add_imported(batch)
            batch = []
    if batch:
        await repo.add_imported(batch)
    activities = bot.runtime.feature(ActivityService).repo
    first_activity = None
    for day in range(30):
        activity = await activities.create(
            Activity(
                type="讲座",
                title=f"第{day}期技术讲座",
                alliance_id=ALLIANCES[day % 4][0],
                start=now + timedelta(days=day - 15, hours=5),
                place="会议中心",
                capacity=40,
                organizer="lead-tunnel",
            )
        )
        first_activity = first_activity or activity.id
        for person in range(50):
            await activities.join(activity, f"lead{(day * 7 + person) % 161}", at=now)
    topics = TopicRepo(bot.store.sessions)
    for n in range(60):
        studio = studios[n * 2]
        await topics.create(
            Topic(
                title=f"联合攻关课题{n}",
                studio_id=studio.id,
                alliance_id=studio.alliance_id,
                proposer=studio.lead_userid,
                created_at=now - timedelta(days=n),
                deadline=now + timedelta(days=14 - n),
            ),
            user_id=studio.lead_userid,
        )
    achievements = AchievementRepo(bot.store.sessions)
    for n in range(800):
        studio = rng.choice(studios)
        award = Award(amount=5000 + n, year=2026, name="优秀成果奖") if n % 4 == 0 else None
        await achievements.add_with_award(
            Achievement(type="工法", title=f"成果{n}", studios=[studio.id], year=2024 + n % 3), award
        )
    audit = AuditRepo(bot.store.sessions)
    for n in range(300):
        await audit.record(
            entity="studio",
            entity_id=studios[n % 161].id,
            action="edit",
            actor=ADMIN,
            source="console",
            before={"stars": 3},
            after={"stars": 4},
        )
    assert first_open is not None and first_activity is not None
    return {"problem": first_open, "activity": first_activity}


@contextlib.asynccontextmanager
async def database(postgres: bool) -> AsyncIterator[str]:
    if postgres:
        async with fresh_postgres_database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite+aiosqlite:///{Path(folder) / 'bot.db'}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    async with database(args.postgres) as url:
        settings = Settings(database_url=url, admins=[ADMIN], semantic_routing=False)
        bot = await BotApp.create(settings)
        try:
            started = time.perf_counter()
            ids = await seed(bot, args.problems)
            seeded = time.perf_counter() - started
            app = web.Application()
            app[BOT_KEY] = bot
            add_routes(app)
            server = TestServer(app, host="127.0.0.1", port=0)
            await server.start_server()
            try:
                link = await bot.runtime.feature(ConsoleService).link(ADMIN)
                path = link[link.index("/console/") :]
                jar = aiohttp.CookieJar(unsafe=True)
                async with aiohttp.ClientSession(str(server.make_url("")), cookie_jar=jar) as http:
                    async with http.get(path, allow_redirects=False) as response:
                        assert response.status == 302, response.status
                    pages = [
                        ("baseline: sign-in page (no database)", "/console/signin", args.n),
                        ("overview", "/console/", args.n),
                        ("problems board (open)", "/console/problems", args.n),
                        ("problems board (all, page 100)", "/console/problems?status=all&page=100", args.n),
                        (
                            "problems board (alliance + studio + age)",
                            "/console/problems?status=all&alliance=tunnel&studio=S002&days=30",
                            args.n,
                        ),
                        ("problem page", f"/console/problems/{ids['problem']}", args.n),
                        ("studios (161, with load)", "/console/studios", args.n),
                        ("studio edit form", "/console/studios/S001", args.n),
                        ("activities month", "/console/activities", args.n),
                        ("activity page (50 sign-ups)", f"/console/activities/{ids['activity']}", args.n),
                        ("topics", "/console/topics", args.n),
                        ("achievements (search)", "/console/achievements?type=工法&year=2026", args.n),
                        ("awards", "/console/awards", args.n),
                        ("audit log", "/console/audit", args.n),
                        # the first request builds the report (p99 of 3 = that first one); the rest reuse it
                        ("report (figures)", "/console/report?year=2026", max(3, args.n // 10)),
                        ("report charts (fragment)", "/console/report/charts?year=2026", max(3, args.n // 10)),
                    ]
                    rows = []
                    for label, target, repeat in pages:
                        times = []
                        for _ in range(repeat):
                            t0 = time.perf_counter()
                            async with http.get(target, allow_redirects=False) as response:
                                await response.read()
                                status = response.status
                            times.append((time.perf_counter() - t0) * 1000)
                            assert status in (200, 401), (target, status)
                        rows.append((label, repeat, statistics.median(times), pct(times, 0.99)))
            finally:
                await server.close()
        finally:
            await bot.close()
    base = rows[0][2]
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"\n{backend}; 161 studios, {args.problems:,} problems (seeded in {seeded:.0f} s), 30 activities × 50 sign-ups, 60 topics, 800 achievements, 300 audit entries; one request at a time\n"
    )
    print("| page | requests | p50 ms | p99 ms | p50 × baseline |")
    print("|---|---:|---:|---:|---:|")
    for label, repeat, p50, p99 in rows:
        print(f"| {label} | {repeat} | {p50:.1f} | {p99:.1f} | {p50 / base:.1f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=50, help="requests per page")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    _ = UTC
    main()
