"""Benchmark: the reminder schedule with 10,000 events (SQLite), against a 100-event baseline in the same run.

Reports, per size:
- start-up: ``BotApp.create`` plus starting the scheduler, which rebuilds the schedule from the database (one
  ``date`` job armed at the earliest pending due time), until that job is armed;
- cold start-up: the same in a fresh ``python`` process (imports included), and that process's RSS once started;
- memory: Python heap peak during start-up (tracemalloc, a separate start-up in this process);
- lateness: real time, real APScheduler: ``--fire`` reminders due over the next ``--window`` seconds (the other
  reminders of the events are days ahead), measured as (time the reminder was queued to the outbox) − (due);
- catch-up: ``--burst`` reminders already overdue at start-up (the bot was down), time until all are queued.

Run: ``.venv/bin/python bench/bench_reminders.py`` (about a minute and a half). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import BotApp  # noqa: E402
from bot.services.activities.service import ARMED_JOB_ID  # noqa: E402
from bot.services.studios import load_roster  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.store.activities import Activity, ActivityReminder, ReminderStatus  # noqa: E402

ALLIANCES = ("bridge", "tunnel", "urban", "power")
OFFSETS = (timedelta(days=7), timedelta(days=1), timedelta(hours=2))


@dataclass(slots=True)
class Result:
    """One size's measurements."""

    events: int
    reminders: int
    startup_s: float
    heap_peak_mib: float
    cold_s: float
    cold_rss_mib: float
    fired: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    burst: int
    burst_s: float


def rss_mib() -> float:
    """The current resident set size of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def seed(url: str, events: int, *, fire: int, window: float, burst: int) -> datetime:
    """``events`` events with three group reminders each, days ahead; ``fire`` of them get one more reminder due
    within ``window`` seconds from now, and ``burst`` get one already overdue. Returns the reference time."""
    store = await Store.open(url)
    try:
        await store.studios.import_roster(load_roster(ROOT / "config" / "roster.example.yaml"))
        now = datetime.now(UTC)
        start_base = now + timedelta(days=10)
        event_rows = [
            {
                "id": i + 1,
                "type": "讲座",
                "title": f"讲座 {i + 1}",
                "alliance_id": ALLIANCES[i % 4],
                "start": start_base + timedelta(minutes=i),
                "place": None,
                "capacity": None,
                "organizer": "bench",
                "status": "scheduled",
                "sequence": 0,
                "note": "",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(events)
        ]
        reminder_rows = [
            {
                "event_id": row["id"],
                "sequence": 0,
                "kind": f"group:{offset.days}d" if offset.days else "group:2h",
                "target": f"alliance:{row['alliance_id']}",
                "due": row["start"] - offset,  # type: ignore[operator]
                "status": "pending",
                "attempts": 0,
                "detail": "",
            }
            for row in event_rows
            for offset in OFFSETS
        ]
        step = max(events // max(fire, 1), 1)
        for n in range(fire):
            reminder_rows.append(
                {
                    "event_id": (n * step) % events + 1,
                    "sequence": 0,
                    "kind": "attendee:1d",
                    "target": f"user:u{n}",
                    "due": now + timedelta(seconds=5 + window * n / max(fire, 1)),
                    "status": "pending",
                    "attempts": 0,
                    "detail": "",
                }
            )
        for n in range(burst):
            reminder_rows.append(
                {
                    "event_id": (n * 7) % events + 1,
                    "sequence": 0,
                    "kind": "attendee:2h",
                    "target": f"user:late{n}",
                    "due": now - timedelta(hours=1),
                    "status": "pending",
                    "attempts": 0,
                    "detail": "",
                }
            )
        async with store.sessions() as session, session.begin():
            await session.exec(insert(Activity), params=event_rows)  # type: ignore[call-overload]
            for chunk in range(0, len(reminder_rows), 5000):
                await session.exec(insert(ActivityReminder), params=reminder_rows[chunk : chunk + 5000])  # type: ignore[call-overload]
        return now
    finally:
        await store.close()


async def start(settings: Settings) -> BotApp:
    """Create the bot and start its scheduler (no outbox worker); returns once the schedule is rebuilt."""
    bot = await BotApp.create(settings)
    await bot.start(scheduler=True, outbox=False)
    await bot.drain(within=60)  # the arm task spawned by the scheduler's start event
    return bot


async def measure(events: int, *, fire: int, window: float, burst: int) -> Result:
    """Seed a fresh database and take every measurement for one size."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(database_url=url)

        # heap peak of a start-up, on a copy of the data (tracemalloc slows everything, so it is its own run)
        heap_url = f"sqlite+aiosqlite:///{Path(tmp) / 'heap.db'}"
        await seed(heap_url, events, fire=0, window=window, burst=0)
        gc.collect()
        tracemalloc.start()
        bot = await start(Settings(database_url=heap_url))
        assert bot.scheduler.get_job(ARMED_JOB_ID) is not None  # one date job, whatever the size
        heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        await bot.close()

        await seed(url, events, fire=fire, window=window, burst=burst)
        cold_s, cold_rss = await cold_start(url)  # a fresh process that only rebuilds the schedule
        gc.collect()
        started = time.perf_counter()
        bot = await start(settings)
        startup = time.perf_counter() - started
        try:
            # the overdue burst is swept right after start-up
            for _ in range(6000):  # at most 5 minutes
                if not await pending(bot, "attendee:2h"):
                    break
                await asyncio.sleep(0.05)
            burst_s = time.perf_counter() - started
            # then the reminders falling due during the window
            for _ in range(int((window + 120) / 0.2)):
                if not await pending(bot, "attendee:1d"):
                    break
                await asyncio.sleep(0.2)
            lateness = [
                (r.finished_at - r.due).total_seconds() * 1000
                for r in await finished(bot, "attendee:1d")
                if r.finished_at is not None
            ]
        finally:
            await bot.close()
    lateness.sort()
    return Result(
        events=events,
        reminders=events * len(OFFSETS) + fire + burst,
        startup_s=startup,
        heap_peak_mib=heap_peak,
        cold_s=cold_s,
        cold_rss_mib=cold_rss,
        fired=len(lateness),
        p50_ms=statistics.median(lateness) if lateness else float("nan"),
        p99_ms=lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))] if lateness else float("nan"),
        max_ms=lateness[-1] if lateness else float("nan"),
        burst=burst,
        burst_s=burst_s,
    )


CHILD = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from bench.bench_reminders import child
asyncio.run(child({url!r}))
"""


async def child(url: str) -> None:
    """In a fresh process: start the bot on ``url`` (scheduler stopped right after arming), print RSS."""
    settings = Settings(database_url=url)
    bot = await BotApp.create(settings)
    bot.scheduler.start(paused=True)  # rebuild the schedule, run nothing
    await bot.drain(within=60)
    assert bot.scheduler.get_job(ARMED_JOB_ID) is not None
    print(rss_mib(), flush=True)
    await bot.close()


async def cold_start(url: str) -> tuple[float, float]:
    """Seconds from exec to a started bot in a fresh interpreter, and that process's RSS (MiB)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD.format(root=str(ROOT), url=url),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await process.stdout.readline()
    elapsed = time.perf_counter() - started
    await process.wait()
    return elapsed, float(line or b"nan")


async def pending(bot: BotApp, kind: str) -> int:
    """How many reminders of a kind are still pending."""
    async with bot.store.sessions() as session:
        rows = await session.exec(
            select(func.count())
            .select_from(ActivityReminder)
            .where(col(ActivityReminder.status) == ReminderStatus.PENDING.value)
            .where(col(ActivityReminder.kind) == kind)
        )
        return int(rows.one())


async def finished(bot: BotApp, kind: str) -> list[ActivityReminder]:
    """The sent reminders of a kind."""
    async with bot.store.sessions() as session:
        rows = await session.exec(
            select(ActivityReminder)
            .where(col(ActivityReminder.status) == ReminderStatus.SENT.value)
            .where(col(ActivityReminder.kind) == kind)
        )
        return list(rows.all())


def table(results: list[Result]) -> str:
    """The results as a Markdown table, with the ratio of the largest size to the baseline."""
    header = (
        "| events | reminder rows | start-up (s) | cold start-up (s) | RSS (MiB) | heap peak (MiB) | fired | "
        "lateness p50 (ms) | p99 (ms) | max (ms) | overdue at start | all queued after (s) |"
    )
    lines = [header, "|" + "---|" * 12]
    for r in results:
        lines.append(
            f"| {r.events:,} | {r.reminders:,} | {r.startup_s:.3f} | {r.cold_s:.2f} | {r.cold_rss_mib:.0f} | "
            f"{r.heap_peak_mib:.1f} | "
            f"{r.fired} | {r.p50_ms:.0f} | {r.p99_ms:.0f} | {r.max_ms:.0f} | {r.burst} | {r.burst_s:.2f} |"
        )
    base, big = results[0], results[-1]

    def ratio(a: float, b: float) -> str:
        return f"×{a / b:.2f}" if b > 0 else "—"

    lines.append(
        f"| ratio {big.events:,}/{base.events:,} | {ratio(big.reminders, base.reminders)} | "
        f"{ratio(big.startup_s, base.startup_s)} | {ratio(big.cold_s, base.cold_s)} | "
        f"{ratio(big.cold_rss_mib, base.cold_rss_mib)} | {ratio(big.heap_peak_mib, base.heap_peak_mib)} | | "
        f"{ratio(big.p50_ms, base.p50_ms)} | "
        f"{ratio(big.p99_ms, base.p99_ms)} | | | {ratio(big.burst_s, base.burst_s)} |"
    )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    """Measure the baseline and the large size, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--fire", type=int, default=200, help="reminders falling due during the window")
    parser.add_argument("--window", type=float, default=20.0, help="seconds over which they fall due")
    parser.add_argument("--burst", type=int, default=500, help="reminders already overdue at start-up")
    args = parser.parse_args(argv)
    # warm-up (not reported): one-time costs such as lazy imports and Alembic's script cache
    await measure(10, fire=2, window=1.0, burst=2)
    results = []
    for size in (args.baseline, args.events):
        print(f"measuring {size:,} events …", file=sys.stderr, flush=True)
        results.append(await measure(size, fire=args.fire, window=args.window, burst=args.burst))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
