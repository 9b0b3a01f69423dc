"""Benchmark: how long a roster import made inside the serving process holds the event loop.

The console's roster upload (and anything else calling ``StudioRepo.import_roster`` in ``serve``) runs in the
process that answers WeCom's callbacks; issue 14's target is that a roster import never holds the event loop for
more than 50 ms. ``bench_index_start.py`` measures the import made by the CLI (another process) and the serving
process applying it to the routing index; this script measures the in-process path:

- seeds a SQLite database with the 161 synthetic studios of ``bench_routing.make_roster`` and ``--solved``
  solved problems, builds the bot in this process and waits until its routing index is complete;
- a heartbeat task sleeps 5 ms at a time; each gap between its wake-ups beyond those 5 ms is how long something
  else held the loop. A watchdog thread records the loop thread's stack whenever the loop is held > 40 ms, so
  a miss names its cause;
- **idle** (the baseline, same process, same heartbeat): the loop with nothing to do for 2 s;
- **changed**: every studio's description changed; the file parsed (in a worker thread, as the console's
  upload does) and imported in-process, then the routing index refreshed;
- **added**: ``--added`` new studios imported (a change of the number of studios re-weighs every n-gram).

Run: ``.venv/bin/python bench/bench_loop_hold.py --solved 100000`` (most of the time is seeding and the
first index build). Compare with another checkout by ``--root DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import math
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class LoopWatch:
    """Heartbeat gaps on the event loop, and the loop thread's stacks while it is held > ``hold`` seconds."""

    def __init__(self, *, every: float = 0.005, hold: float = 0.04) -> None:
        self.every, self.hold = every, hold
        self.gaps: list[float] = []
        self.stacks: collections.Counter[str] = collections.Counter()
        self._beat = time.perf_counter()
        self._running = False

    async def _heartbeat(self) -> None:
        while self._running:
            before = time.perf_counter()
            await asyncio.sleep(self.every)
            now = time.perf_counter()
            self.gaps.append(max(0.0, now - before - self.every))
            self._beat = now

    def _watchdog(self, loop_thread: int) -> None:
        while self._running:
            time.sleep(0.01)
            if time.perf_counter() - self._beat > self.hold:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    every = [f for f in traceback.extract_stack(frame) if "asyncio" not in f.filename]
                    ours = [f for f in every[:-3] if "/bot/" in f.filename or "sqlalchemy/orm" in f.filename][-8:]
                    stack = ours + every[-3:]  # the innermost frames and our code that led there
                    key = " ← ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
                    self.stacks[key] += 1

    async def start(self) -> None:
        """Count from here (the work's set-up before it is not measured)."""
        self.gaps.clear()
        self.stacks.clear()
        self._beat = time.perf_counter()

    async def during(self, work: Any) -> None:
        """Run the awaitable ``work`` while watching the loop."""
        self.gaps.clear()
        self.stacks.clear()
        self._running, self._beat = True, time.perf_counter()
        beat = asyncio.create_task(self._heartbeat())
        thread = threading.Thread(target=self._watchdog, args=(threading.get_ident(),), daemon=True)
        thread.start()
        try:
            await work
            await asyncio.sleep(0.05)
        finally:
            self._running = False
            await beat
            thread.join()

    def row(self, label: str, seconds: float) -> str:
        gaps = sorted(self.gaps) or [0.0]
        p99 = gaps[min(len(gaps) - 1, math.ceil(0.99 * len(gaps)) - 1)]
        return (
            f"| {label} | {seconds:.2f} | {len(gaps)} | {statistics.median(gaps) * 1000:.1f} | {p99 * 1000:.1f} "
            f"| {gaps[-1] * 1000:.1f} |"
        )


async def main(args: argparse.Namespace, root: Path) -> None:
    sys.path.insert(0, str(root))
    from bench.bench_index_start import roster_yaml, seed
    from bot.app import BotApp
    from bot.services.problems import ProblemService
    from bot.services.studios import load_roster, parse_roster_text
    from bot.settings import Settings

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite+aiosqlite:///{tmp}/bot.db"
        settings = Settings(database_url=url, data_dir=str(tmp / "data"), semantic_routing=False, _env_file=None)
        bot = await BotApp.create(settings)
        try:
            roster = tmp / "roster.yaml"
            roster_yaml(roster)
            await bot.store.studios.import_roster(load_roster(roster))
            await seed(url, args.solved)
            service = bot.runtime.feature(ProblemService)
            started = time.perf_counter()
            await service.ready()
            gc.freeze()  # as `serve` does once its warm-ups are done (bot/cli/main.py)
            print(f"routing index with {args.solved:,} solved problems in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
            watch = LoopWatch()
            rows: list[str] = []
            causes: list[tuple[str, collections.Counter[str]]] = []

            async def measure(label: str, work: Any) -> None:
                began = time.perf_counter()
                await watch.during(work)
                rows.append(watch.row(label, time.perf_counter() - began))
                causes.append((label, collections.Counter(watch.stacks)))

            await measure("idle (baseline)", asyncio.sleep(2.0))

            async def apply(note: str, added: int = 0) -> None:
                await watch.start()  # the upload itself is written off the loop (it is not the bot's work) …
                await asyncio.to_thread(roster_yaml, roster, note=note)
                text = await asyncio.to_thread(roster.read_text, encoding="utf-8")
                parsed = await asyncio.to_thread(parse_roster_text, text)  # … parsed as the console does
                if added:
                    extra = parsed.model_copy(deep=True) if hasattr(parsed, "model_copy") else parsed
                    first = extra.studios[0]
                    for i in range(added):
                        clone = first.model_copy(update={"id": f"N{i + 1:03d}", "name": f"新增工作室{i + 1}"})
                        extra.studios.append(clone)
                    parsed = extra
                await bot.store.studios.import_roster(parsed)
                await service.index()

            await measure("161 changed studios imported in-process, index refreshed", apply("，本年度新增一项说明"))
            await measure(f"{args.added} studios added in-process, index refreshed", apply("", args.added))
        finally:
            await bot.close()

    print(f"\n{args.solved:,} solved problems, 161 studios, SQLite, semantic routing off; tree: {root}\n")
    print("| event loop | seconds | heartbeats | held p50 ms | held p99 ms | held max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)
    for label, stacks in causes:
        for stack, count in stacks.most_common(3):
            print(f"\n- {label}: held > 40 ms in ~{count * 10} ms of samples at {stack}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solved", type=int, default=100_000)
    parser.add_argument("--added", type=int, default=5, help="studios added in the last import")
    parser.add_argument("--root", help="run another checkout's bot (the baseline of a change)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments, Path(arguments.root).resolve() if arguments.root else ROOT))
