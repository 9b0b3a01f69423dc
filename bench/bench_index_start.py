"""Benchmark: a serving process with a large routing history — start-up, the event loop while the history is
read, and a whole-roster change while serving.

Seeds a SQLite database with 161 synthetic studios (``bench_routing.make_roster``) and ``--solved`` solved
problems (``bench_routing.make_history``), then starts ``alliance-bot serve`` (semantic routing off: embedding
100,000 problems is a separate, background cost) and measures, from the load generator's process:

- **first answer**: seconds from the process start until a signed ``/help`` callback on ``/wecom/aibot`` is
  answered 200 (WeCom retries a callback after 5 s; issue 14's target is within 3 s);
- **index ready**: seconds until the process logs that the history is in the index;
- **while reading**: latency of a request for a page nobody serves (aiohttp's 404: no handler, no database,
  so it measures the event loop alone) probed every 20 ms and of signed ``/help`` callbacks while the
  history is read (p50 / p99 / max: the probe's max bounds how long the event loop was held);
- **roster change**: every studio's description is changed and imported by ``alliance-bot studios import`` (its
  own process) while the server is probed every 10 ms; a new problem makes the server apply the change; the
  probe's max latency bounds how long that held the event loop (target ≤ 50 ms).

Baseline for ratios: the same probes against the same process once it is idle (``idle`` rows).

Run: ``.venv/bin/python bench/bench_index_start.py --solved 100000`` (a few minutes, most of it seeding);
``--root DIR`` runs another checkout's bot (e.g. the commit before a change, ``git worktree add DIR REV``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import yaml
from wechatpy.enterprise.crypto import WeChatCrypto

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_callbacks import AIBOT_AES_KEY, _seal, free_port  # noqa: E402
from bench.bench_routing import ALLIANCES, TYPES, make_history, make_roster  # noqa: E402
from bot.routing import SolvedProblem  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.store.problems import Problem, ProblemRepo, ProblemStatus  # noqa: E402
from tests.fake_wecom import AIBOT_TOKEN, FakeWeCom, aibot_text  # noqa: E402

READY = re.compile(r"routing index: \d+ solved problems in [\d.]+ s")  # the service's log line


def roster_yaml(path: Path, *, note: str = "") -> None:
    """Write the 161 synthetic studios as a roster file (``note`` is appended to every description)."""
    studios = make_roster()
    data = {
        "alliances": [
            {"id": aid, "name": name, "lead": {"name": f"负责人{n}", "wecom_userid": f"lead-{aid}"}}
            for n, (aid, name) in enumerate(ALLIANCES)
        ],
        "studios": [
            {
                "id": s.id,
                "name": s.name,
                "alliance": s.alliance,
                "unit": f"示例工程公司{i % 34 + 1}",
                "type": TYPES[i % len(TYPES)],
                "stars": 3 + i % 3,
                "lead": {"name": f"工作室负责人{i}", "wecom_userid": f"lead-{s.id}"},
                "expertise": list(s.expertise),
                "description": s.description + note,
            }
            for i, s in enumerate(studios)
        ],
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


async def seed(url: str, solved: int) -> None:
    """Store ``solved`` solved problems, 5,000 to a transaction."""
    store = await Store.open(url, migrate=False)
    repo = ProblemRepo(store.sessions)
    alliance = {s.id: s.alliance for s in make_roster()}
    now = datetime.now(UTC)
    try:
        history = make_history(make_roster(), solved)
        for start in range(0, len(history), 5000):
            await repo.add_imported(
                [
                    _solved_row(h, alliance[h.studio_id], now)
                    for h in history[start : start + 5000]
                ]
            )
            print(f"  seeded {min(start + 5000, solved)}/{solved}", file=sys.stderr, flush=True)
    finally:
        await store.close()


def _solved_row(h: SolvedProblem, alliance: str, now: datetime) -> Problem:
    return Problem(
        ref=h.ref, text=h.text, asker="import", alliance_id=alliance, status=ProblemStatus.SOLVED.value,
        studio_id=h.studio_id, answer=h.answer, source="import",
        created_at=now, claimed_at=now, answered_at=now, solved_at=now,
    )  # fmt: skip


def signed(text: str) -> tuple[str, dict[str, str]]:
    """One signed, encrypted AI-bot callback carrying ``text``."""
    crypto = WeChatCrypto(AIBOT_TOKEN, AIBOT_AES_KEY, "")
    body = aibot_text(f"@联盟助手 {text}", user="bench-user", chat_id="wrgroup-bench", msg_id=uuid.uuid4().hex)
    return _seal(crypto, json.dumps(body, ensure_ascii=False), lambda enc: json.dumps({"encrypt": enc}))


class Probe:
    """Latencies of requests fired every ``every`` seconds until stopped."""

    def __init__(self, http: aiohttp.ClientSession, base: str, *, every: float, callbacks: bool) -> None:
        self.http, self.base, self.every, self.callbacks = http, base, every, callbacks
        self.latencies: list[float] = []
        self.errors = 0
        self._stop = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    async def _one(self) -> None:
        started = time.perf_counter()
        try:
            if self.callbacks:
                body, query = signed("/help")
                async with self.http.post(f"{self.base}/wecom/aibot", params=query, data=body) as r:
                    await r.read()
                    self.errors += r.status != 200
            else:
                # a path nobody serves: aiohttp answers 404 at once, so the latency is the event loop's
                async with self.http.get(f"{self.base}/no-such-page") as r:
                    await r.read()
                    self.errors += r.status != 404
        except aiohttp.ClientError:
            self.errors += 1
        self.latencies.append(time.perf_counter() - started)

    async def run(self) -> None:
        while not self._stop.is_set():
            task = asyncio.create_task(self._one())
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            try:
                await asyncio.wait_for(self._stop.wait(), self.every)
            except TimeoutError:
                pass
        if self._inflight:
            await asyncio.wait(self._inflight)

    def stop(self) -> None:
        self._stop.set()

    def row(self, label: str) -> str:
        values = sorted(self.latencies) or [0.0]
        p99 = values[max(0, int(len(values) * 0.99) - 1)]
        return (
            f"| {label} | {len(values)} | {statistics.median(values) * 1000:.1f} | {p99 * 1000:.1f} | "
            f"{values[-1] * 1000:.1f} | {self.errors} |"
        )


async def probing(http: aiohttp.ClientSession, base: str, seconds: float, *, every: float, callbacks: bool) -> Probe:
    probe = Probe(http, base, every=every, callbacks=callbacks)
    task = asyncio.create_task(probe.run())
    await asyncio.sleep(seconds)
    probe.stop()
    await task
    return probe


def rss_mib(pid: int) -> float:
    """The resident set size of ``pid`` (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(args: argparse.Namespace, root: Path) -> None:
    fake = await FakeWeCom().start()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite:///{tmp / 'bot.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        env.update(
            PYTHONPATH=str(root),
            BOT_DATABASE_URL=url,
            BOT_DATA_DIR=str(tmp / "data"),
            BOT_SEMANTIC_ROUTING="0",
            BOT_RATE_LIMIT_PER_MIN="0",
            BOT_STUDIO_DAILY_CAP="1000000",
            BOT_WECOM_AIBOT_TOKEN=AIBOT_TOKEN,
            BOT_WECOM_AIBOT_AES_KEY=AIBOT_AES_KEY,
            BOT_WECOM_API_BASE=fake.url,
        )
        roster = tmp / "roster.yaml"
        roster_yaml(roster)

        async def cli(*argv: str) -> None:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *argv, cwd=tmp, env=env, stdout=asyncio.subprocess.DEVNULL
            )
            if await process.wait() != 0:
                raise RuntimeError(f"alliance-bot {' '.join(argv)} failed")

        await cli("studios", "import", str(roster))
        await seed(url.replace("sqlite://", "sqlite+aiosqlite://"), args.solved)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        began = time.perf_counter()
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve",
            cwd=tmp, env={**env, "BOT_PORT": str(port)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        ready_at: list[float] = []
        rss: list[float] = []  # the serve process's resident memory once the history is in, MiB

        async def watch() -> None:
            assert server.stdout is not None
            while line := await server.stdout.readline():
                text = line.decode(errors="replace")
                if READY.search(text) and not ready_at:
                    ready_at.append(time.perf_counter() - began)

        watcher = asyncio.create_task(watch())
        rows: list[str] = []
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
                first = None
                while first is None:
                    try:
                        body, query = signed("/help")
                        async with http.post(f"{base}/wecom/aibot", params=query, data=body) as r:
                            if r.status == 200:
                                first = time.perf_counter() - began
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.05)
                print(f"first answer after {first:.2f} s", file=sys.stderr)
                reading = Probe(http, base, every=0.02, callbacks=False)
                calls = Probe(http, base, every=0.1, callbacks=True)
                tasks = [asyncio.create_task(reading.run()), asyncio.create_task(calls.run())]
                deadline = time.perf_counter() + args.wait
                while not ready_at and time.perf_counter() < deadline:  # noqa: ASYNC110 (the marker is a log line)
                    await asyncio.sleep(0.2)
                reading.stop()
                calls.stop()
                await asyncio.gather(*tasks)
                rows += [reading.row("loop probe (404) while the history is read"), calls.row("`/help` callback, same")]
                rss.append(rss_mib(server.pid))
                idle = await probing(http, base, 3, every=0.02, callbacks=False)
                idle_calls = await probing(http, base, 3, every=0.1, callbacks=True)
                rows += [idle.row("loop probe (404), idle"), idle_calls.row("`/help` callback, idle")]
                roster_yaml(roster, note="另承担新线联调联试的技术支持。")
                await cli("studios", "import", str(roster))
                probe = Probe(http, base, every=0.01, callbacks=False)
                task = asyncio.create_task(probe.run())
                await asyncio.sleep(6)  # past the index's freshness window
                body, query = signed("桥墩承台大体积混凝土浇筑后表面出现裂缝怎么处理")
                async with http.post(f"{base}/wecom/aibot", params=query, data=body) as r:
                    await r.read()
                await asyncio.sleep(3)
                probe.stop()
                await task
                rows.append(probe.row("loop probe (404) while 161 changed studios are applied"))
        finally:
            server.terminate()
            await server.wait()
            watcher.cancel()
            await fake.close()
    memory = f"; resident memory then {rss[0]:.0f} MiB" if rss else ""
    ready = (f"{ready_at[0]:.1f} s" if ready_at else f"not within {args.wait:.0f} s (or not logged)") + memory
    print(f"\n{args.solved:,} solved problems, 161 studios, SQLite, semantic routing off; tree: {root}\n")
    print(f"- first `/help` answered {first:.2f} s after the process started; history in the index after {ready}\n")
    print("| probe | requests | p50 ms | p99 ms | max ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solved", type=int, default=100_000)
    parser.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the history to be read")
    parser.add_argument("--root", help="run the bot from another checkout (the baseline of a change)")
    parsed = parser.parse_args()
    asyncio.run(main(parsed, Path(parsed.root).resolve() if parsed.root else ROOT))
