"""Benchmark: WeCom callbacks under a burst, against a decrypt-and-echo baseline driven in the same run.

- The bot runs as one or more ``alliance-bot serve`` processes (SQLite in a temporary directory, or a fresh
  PostgreSQL database with ``--postgres``), both WeCom channels configured, ``BOT_WECOM_API_BASE`` pointing at a
  fake WeCom API served by this process, the development roster from ``../shared/samples`` imported.
- The baseline is a minimal aiohttp app in its own process that only verifies and decrypts with wechatpy,
  parses, and answers an encrypted echo, for the same two wire formats. Beside it runs the peer a user would
  otherwise deploy: the same echo in Flask + wechatpy under gunicorn, two sync workers (``bench/peer_flask.py``;
  ``--no-flask`` skips it).
- This process is the load generator: it builds ``--n`` distinct, signed and encrypted callbacks per endpoint
  and kind before the clock starts, fires them ``--concurrency`` at a time (split round-robin over the bot
  processes), and measures each request from send to complete answer. Kinds: ``help`` (a ``/help`` command)
  and ``problem`` (a new technical problem: judged, logged, routed, studio leads notified through the outbox).
- Afterwards it waits until the outbox is empty and reports how long delivery took and how many messages the
  fake WeCom API received. ``--slow-api 3`` makes the fake answer every API call after 3 s.

Run (each prints a Markdown table):
    .venv/bin/python bench/bench_callbacks.py                          # SQLite, one process
    .venv/bin/python bench/bench_callbacks.py --postgres --processes 2  # PostgreSQL, two processes
    .venv/bin/python bench/bench_callbacks.py --slow-api 3 --kinds problem --n 100 --deliver-within 900
The per-user rate limit and the studios' daily cap are switched off (``BOT_RATE_LIMIT_PER_MIN=0``,
``BOT_STUDIO_DAILY_CAP=1000000``): the burst comes from a few users, and every problem notifies its leads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

from bot.settings import normalise_database_url  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.fake_wecom import (  # noqa: E402
    AIBOT_TOKEN,
    APP_TOKEN,
    CORP_ID,
    SECRET,
    FakeWeCom,
    aibot_text,
    app_text,
    random_aes_key,
)
from tests.harness import EXAMPLE_ROSTER, SHARED, fresh_postgres_database  # noqa: E402

# The baseline runs in a process of its own: it gets the keys through the environment.
AIBOT_AES_KEY = os.environ.get("BENCH_AIBOT_AES_KEY") or random_aes_key()
APP_AES_KEY = os.environ.get("BENCH_APP_AES_KEY") or random_aes_key()

USERS = ("zhangsan", "lisi", "wangwu", "zhaoliu", "sunqi", "zhouba", "wujiu", "zhengshi")
SAMPLE_ROSTER = SHARED / "samples" / "studios.yaml"
SAMPLE_QUESTIONS = SHARED / "samples" / "questions.jsonl"
FALLBACK_QUESTIONS = (
    "盾构掘进时刀盘扭矩突然增大，推力也上不去，该怎么处理？",
    "接触网吊弦安装后导线高度偏差大，调整有什么好办法？",
    "箱梁预应力张拉后出现裂缝，可能是什么原因？",
)


# Distinct technical problems: every labelled question set we have (a burst longer than the pool re-posts
# questions, which the bot links to the open problem instead of logging a new one — a different path).
QUESTION_SETS = (
    SAMPLE_QUESTIONS,
    SHARED / "samples" / "questions_hard.jsonl",
    ROOT / "tests" / "routing_eval" / "questions.jsonl",
    ROOT / "tests" / "routing_heldout" / "questions.jsonl",
    ROOT / "tests" / "routing_heldout" / "questions_fresh.jsonl",
)


def questions() -> list[str]:
    """Technical problems to send, each once: the labelled question sets, or a few built-in ones."""
    texts: dict[str, None] = {}
    for path in QUESTION_SETS:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    texts.setdefault(json.loads(line)["text"], None)
    return list(texts) or list(FALLBACK_QUESTIONS)


@dataclass(slots=True, frozen=True)
class Run:
    """One burst at one server."""

    label: str
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    rps: float
    errors: int
    cpu_ms: float | None = None  # CPU time of the server's processes (and their children) per request


# -- the baseline server (its own process) -------------------------------------------------------------


def baseline_server(port: int) -> None:
    """A minimal aiohttp app: verify + decrypt with wechatpy, parse, answer an encrypted echo. Runs until killed."""
    from aiohttp import web

    aibot = WeChatCrypto(AIBOT_TOKEN, AIBOT_AES_KEY, "")
    app_crypto = WeChatCrypto(APP_TOKEN, APP_AES_KEY, CORP_ID)

    async def handle_aibot(request: web.Request) -> web.Response:
        q = request.query
        body = json.loads(await request.read())
        plain = aibot.decrypt_message(
            {"Encrypt": body["encrypt"]}, q["msg_signature"], q["timestamp"], q["nonce"]
        )
        message = json.loads(plain)
        echo = json.dumps({"msgtype": "text", "text": {"content": message["text"]["content"]}})
        sealed = xmltodict.parse(aibot.encrypt_message(echo, q["nonce"], q["timestamp"]))["xml"]
        return web.json_response(
            {
                "encrypt": sealed["Encrypt"],
                "msgsignature": sealed["MsgSignature"],
                "timestamp": int(sealed["TimeStamp"]),
                "nonce": sealed["Nonce"],
            }
        )

    async def handle_app(request: web.Request) -> web.Response:
        q = request.query
        plain = app_crypto.decrypt_message(
            await request.read(), q["msg_signature"], q["timestamp"], q["nonce"]
        )
        xmltodict.parse(plain)
        return web.Response(text=app_crypto.encrypt_message(plain, q["nonce"], q["timestamp"]))

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/wecom/aibot", handle_aibot)
    app.router.add_post("/wecom/app", handle_app)
    print("baseline ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- requests ---------------------------------------------------------------------------------------------

Request = tuple[str, dict[str, str]]


_POOL = questions()
_PROBLEMS = itertools.cycle(_POOL)  # shared by every burst: each takes the next questions of the pool
SENT = {"problems": 0}


def build_requests(
    endpoint: str, kind: str, n: int, users: tuple[str, ...] = USERS, *, fresh: bool = True
) -> list[Request]:
    """``n`` distinct signed, encrypted callbacks (each its own message id), from ``users`` in turn. Problems
    for the bot are ``fresh``: the next questions of the pool (the echo peers take any)."""
    if kind == "problem" and fresh:
        SENT["problems"] += n
    if kind == "problem":
        texts: Iterator[str] = _PROBLEMS if fresh else itertools.cycle(_POOL)
    else:
        texts = itertools.repeat("/help")
    if endpoint == "aibot":
        crypto = WeChatCrypto(AIBOT_TOKEN, AIBOT_AES_KEY, "")
        return [
            _seal(
                crypto,
                json.dumps(
                    aibot_text(
                        f"@联盟助手 {text}",
                        user=users[i % len(users)],
                        chat_id="wrgroup-bench",
                        msg_id=f"bench-{uuid.uuid4().hex}",
                    ),
                    ensure_ascii=False,
                ),
                lambda enc: json.dumps({"encrypt": enc}),
            )
            for i, text in zip(range(n), texts, strict=False)
        ]
    crypto = WeChatCrypto(APP_TOKEN, APP_AES_KEY, CORP_ID)
    return [
        _seal(
            crypto,
            app_text(text if kind == "help" else f"/提问 {text}", user=users[i % len(users)]),
            lambda enc: f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>",
        )
        for i, text in zip(range(n), texts, strict=False)
    ]


def _seal(crypto: WeChatCrypto, plaintext: str, envelope: Callable[[str], str]) -> Request:
    nonce, timestamp = uuid.uuid4().hex[:10], str(int(time.time()))
    fields = xmltodict.parse(crypto.encrypt_message(plaintext, nonce, timestamp))["xml"]
    query = {
        "msg_signature": fields["MsgSignature"],
        "timestamp": fields["TimeStamp"],
        "nonce": fields["Nonce"],
    }
    return envelope(fields["Encrypt"]), query


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` and all their descendants (gunicorn's workers), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    wanted = set(pids)
    grew = True
    while grew:
        extra = {pid for pid, parent in parents.items() if parent in wanted and pid not in wanted}
        wanted |= extra
        grew = bool(extra)
    return sum(times.get(pid, 0.0) for pid in wanted)


async def burst(
    http: aiohttp.ClientSession,
    urls: list[str],
    label: str,
    requests: list[Request],
    concurrency: int,
    pids: list[int] | None = None,
) -> Run:
    """Fire ``requests``, ``concurrency`` at a time, worker ``i`` at ``urls[i % len(urls)]``; with ``pids``, also
    the servers' CPU time per request."""
    cpu_before = cpu_seconds(pids) if pids else 0.0
    latencies: list[float] = []
    errors = 0
    pending = iter(requests)

    async def worker(url: str) -> None:
        nonlocal errors
        for body, query in pending:
            started = time.perf_counter()
            try:
                async with http.post(url, params=query, data=body) as response:
                    await response.read()
                    errors += response.status != 200
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(concurrency)))
    wall = time.perf_counter() - began
    cpu_ms = (cpu_seconds(pids) - cpu_before) * 1000 / len(requests) if pids else None
    latencies.sort()
    return Run(
        label=label,
        n=len(requests),
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        max_ms=latencies[-1] * 1000,
        rps=len(requests) / wall,
        errors=errors,
        cpu_ms=cpu_ms,
    )


# -- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_line(process: asyncio.subprocess.Process, marker: str) -> None:
    """Read the process's output until a line contains ``marker``."""
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=120)).decode()
        if not line:
            raise RuntimeError(f"process exited before printing {marker!r}")
        if marker in line:
            return


async def wait_port(port: int, within: float = 20.0) -> None:
    """Until something accepts connections on ``port``."""
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            await asyncio.sleep(0.1)
        else:
            writer.close()
            return


async def drain_output(process: asyncio.subprocess.Process) -> None:
    """Keep reading a process's output so it never blocks on a full pipe."""
    assert process.stdout is not None
    while await process.stdout.readline():
        pass


@contextlib.asynccontextmanager
async def database(postgres: str | None, tmp: Path) -> AsyncIterator[str]:
    """A fresh database URL: a SQLite file in ``tmp``, or a new PostgreSQL database dropped afterwards."""
    if postgres is None:
        yield f"sqlite:///{tmp / 'bot.db'}"
        return
    async with fresh_postgres_database(postgres) as url:
        yield url


async def wait_warm(http: aiohttp.ClientSession, ports: list[int], within: float = 120.0) -> None:
    """Until no bot process reports a warm-up at work (the routing index is built in the background)."""
    deadline = time.monotonic() + within
    for port in ports:
        while True:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                if not (await response.json()).get("warming") or time.monotonic() > deadline:
                    break
            await asyncio.sleep(0.2)


async def database_calls(http: aiohttp.ClientSession, ports: list[int]) -> dict[str, int]:
    """The bot processes' database call counters, summed (zeros from a tree without them)."""
    total = {"statements": 0, "commits": 0, "trips": 0}
    for port in ports:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            counters = (await response.json()).get("database_calls", {})
        for key in total:
            total[key] += int(counters.get(key, 0))
    return total


async def wait_delivered(url: str, within: float) -> tuple[float, dict[str, int]]:
    """Seconds until no outbox message is pending (or ``within``), and the outbox counts then."""
    store = await Store.open(normalise_database_url(url), migrate=False)
    began = time.perf_counter()
    try:
        while True:
            counts = await store.outbox.counts()
            if not counts.get("pending") or time.perf_counter() - began >= within:
                return time.perf_counter() - began, counts
            await asyncio.sleep(0.2)
    finally:
        await store.close()


# -- the run ------------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    fake = await FakeWeCom().start()
    if args.slow_api:
        fake.slow_next(args.slow_api, times=10**9)
    processes: list[asyncio.subprocess.Process] = []
    drains: list[asyncio.Task[None]] = []
    results: list[tuple[str, Run, Run, Run | None]] = []
    calls: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with database(args.postgres, Path(tmp)) as url:
            try:
                env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
                env.update(BENCH_AIBOT_AES_KEY=AIBOT_AES_KEY, BENCH_APP_AES_KEY=APP_AES_KEY)
                env.update(
                    BOT_DATABASE_URL=url,
                    BOT_RATE_LIMIT_PER_MIN="0",
                    BOT_STUDIO_DAILY_CAP="1000000",
                    BOT_WECOM_CORP_ID=CORP_ID,
                    BOT_WECOM_AGENT_ID="1000002",
                    BOT_WECOM_SECRET=SECRET,
                    BOT_WECOM_APP_TOKEN=APP_TOKEN,
                    BOT_WECOM_APP_AES_KEY=APP_AES_KEY,
                    BOT_WECOM_AIBOT_TOKEN=AIBOT_TOKEN,
                    BOT_WECOM_AIBOT_AES_KEY=AIBOT_AES_KEY,
                    BOT_WECOM_API_BASE=fake.url,
                )
                if args.lexical:
                    env["BOT_SEMANTIC_ROUTING"] = "false"
                roster = SAMPLE_ROSTER if SAMPLE_ROSTER.exists() else EXAMPLE_ROSTER
                importer = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "studios", "import", str(roster),
                    cwd=tmp, env=env, stdout=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                if await importer.wait() != 0:
                    raise RuntimeError("roster import failed")
                bot_ports = [free_port() for _ in range(args.processes)]
                for port in bot_ports:
                    bot = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "bot", "serve",
                        cwd=tmp, env={**env, "BOT_PORT": str(port)}, stdout=asyncio.subprocess.PIPE,
                    )  # fmt: skip
                    processes.append(bot)
                    await wait_line(bot, "live channels")
                    drains.append(asyncio.create_task(drain_output(bot)))
                bot_pids = [p.pid for p in processes]
                base_port = free_port()
                baseline = await asyncio.create_subprocess_exec(
                    sys.executable, str(SCRIPT), "--baseline-server", str(base_port),
                    env=env, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                processes.append(baseline)
                await wait_line(baseline, "baseline ready")
                await asyncio.sleep(0.3)  # let the baseline bind its port
                flask_port = free_port() if args.flask else None
                flask_pid = None
                if flask_port is not None:
                    peer = await asyncio.create_subprocess_exec(
                        str(Path(sys.executable).parent / "gunicorn"), "--workers", "2",
                        "--bind", f"127.0.0.1:{flask_port}", "--log-level", "warning", "bench.peer_flask:app",
                        cwd=ROOT, env=env,
                    )  # fmt: skip
                    processes.append(peer)
                    flask_pid = peer.pid
                    await wait_port(flask_port)
                connector = aiohttp.TCPConnector(limit=args.concurrency)
                timeout = aiohttp.ClientTimeout(total=30)
                async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                    await wait_warm(http, bot_ports)
                    for endpoint in ("aibot", "app"):
                        ours = [f"http://127.0.0.1:{port}/wecom/{endpoint}" for port in bot_ports]
                        base = [f"http://127.0.0.1:{base_port}/wecom/{endpoint}"]
                        flask = [f"http://127.0.0.1:{flask_port}/wecom/{endpoint}"] if flask_port else []
                        for kind in args.kinds:
                            # warm-up: imports, the segmenter's dictionary, connection pools
                            await burst(http, ours, "warm-up", build_requests(endpoint, kind, 40), 4)
                            await burst(http, base, "warm-up", build_requests(endpoint, kind, 40, fresh=False), 4)
                            if flask:
                                await burst(http, flask, "warm-up", build_requests(endpoint, kind, 40, fresh=False), 4)
                            users = (
                                USERS
                                if args.users <= len(USERS)
                                else tuple(f"u{i:05d}" for i in range(args.users))
                            )
                            if args.pause:
                                # the same users wrote a while ago: whatever the bot caches about them has
                                # had ``--pause`` seconds to expire
                                prime = build_requests(endpoint, kind, len(users), users)
                                await burst(http, ours, "prime", prime, args.concurrency)
                                await asyncio.sleep(args.pause)
                            mine = build_requests(endpoint, kind, args.n, users)
                            theirs = build_requests(endpoint, kind, args.n, users, fresh=False)
                            before = await database_calls(http, bot_ports)
                            bot_run = await burst(
                                http, ours, f"bot /wecom/{endpoint}", mine, args.concurrency, bot_pids
                            )
                            after = await database_calls(http, bot_ports)
                            calls[(kind, endpoint)] = {k: (after[k] - before[k]) / args.n for k in after}
                            base_run = await burst(
                                http, base, f"baseline /wecom/{endpoint}", theirs, args.concurrency,
                                [baseline.pid],
                            )  # fmt: skip
                            flask_run = None
                            if flask:
                                flask_run = await burst(
                                    http, flask, f"Flask + gunicorn /wecom/{endpoint}",
                                    build_requests(endpoint, kind, args.n, users, fresh=False), args.concurrency,
                                    [flask_pid] if flask_pid else None,
                                )  # fmt: skip
                            results.append((kind, bot_run, base_run, flask_run))
                    delivery_s, counts = await wait_delivered(url, within=args.deliver_within)
            finally:
                for process in processes:
                    with contextlib.suppress(ProcessLookupError):
                        process.terminate()
                    await process.wait()
                for task in drains:
                    task.cancel()
                await fake.close()

    db = "PostgreSQL" if args.postgres else "SQLite"
    slow = f", fake WeCom API answers after {args.slow_api:g} s" if args.slow_api else ""
    if args.lexical:
        slow += ", lexical routing (no sentence embeddings)"
    if args.users > len(USERS) or args.pause:
        slow += f", {args.users} senders" + (f" who wrote {args.pause:g} s before" if args.pause else "")
    print(
        f"\n{args.n} callbacks per endpoint and kind, {args.concurrency} concurrent, {db}, "
        f"{args.processes} `alliance-bot serve` process(es){slow}\n"
    )
    print("| kind | server | p50 ms | p99 ms | max ms | req/s | CPU ms/request | non-200 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind, ours, base, flask_run in results:
        for run in (ours, base, *([flask_run] if flask_run else [])):
            print(
                f"| {kind} | {run.label} | {run.p50_ms:.1f} | {run.p99_ms:.1f} | {run.max_ms:.1f} | "
                f"{run.rps:.0f} | {_cpu(run)} | {run.errors} |"
            )
        print(
            f"| {kind} | **ratio bot/baseline** | {ours.p50_ms / base.p50_ms:.1f}× | "
            f"{ours.p99_ms / base.p99_ms:.1f}× | {ours.max_ms / base.max_ms:.1f}× | "
            f"**{ours.rps / base.rps:.2f}×** | {_cpu_ratio(ours, base)} | |"
        )
        if flask_run is not None:
            print(
                f"| {kind} | **ratio bot/Flask** | {ours.p50_ms / flask_run.p50_ms:.1f}× | "
                f"{ours.p99_ms / flask_run.p99_ms:.1f}× | {ours.max_ms / flask_run.max_ms:.1f}× | "
                f"**{ours.rps / flask_run.rps:.2f}×** | {_cpu_ratio(ours, flask_run)} | |"
            )
    if calls:
        print(
            "\nDatabase calls per message (the servers' `/healthz` counters over the burst, delivery included):\n"
        )
        print("| kind | endpoint | SQL statements | commits | database-thread trips (SQLite) |")
        print("|---|---|---:|---:|---:|")
        for (kind, endpoint), per in calls.items():
            trips = f"{per['trips']:.1f}" if not args.postgres else "—"
            print(
                f"| {kind} | /wecom/{endpoint} | {per['statements']:.1f} | {per['commits']:.2f} | {trips} |"
            )
    if "problem" in args.kinds:
        print(
            f"\nproblems to the bot: {SENT['problems']} sent (warm-ups included) from a pool of {len(_POOL)} distinct questions; "
            "past the pool a question is a re-post, linked to its open problem"
        )
    sent = sum(1 for r in fake.requests if r.path in ("/cgi-bin/message/send", "/cgi-bin/appchat/send"))
    emptied = "emptied" if not counts.get("pending") else "not empty"
    print(
        f"\noutbox {delivery_s:.1f} s after the last burst ({emptied}): {counts}; "
        f"fake WeCom API: {len(fake.requests)} requests, {sent} message sends"
    )


def _cpu(run: Run) -> str:
    return f"{run.cpu_ms:.2f}" if run.cpu_ms is not None else "—"


def _cpu_ratio(ours: Run, theirs: Run) -> str:
    """The peer's CPU per request over ours: the throughput ratio a CPU-bound server would reach."""
    if not ours.cpu_ms or not theirs.cpu_ms:
        return "—"
    return f"{theirs.cpu_ms / ours.cpu_ms:.2f}× by CPU"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="callbacks per endpoint and kind (default 1000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--kinds", default="help,problem", help="comma-separated: help, problem")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=os.environ.get("BOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="run on a fresh PostgreSQL database created on this server (default: $BOT_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--processes", type=int, default=1, help="bot processes (default 1)")
    parser.add_argument("--users", type=int, default=len(USERS), help="distinct senders (default 8)")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="first send one callback from every sender, wait this many seconds, then measure (occasional users)",
    )
    parser.add_argument("--slow-api", type=float, default=0.0, help="fake WeCom API delay per call, s")
    parser.add_argument(
        "--deliver-within",
        type=float,
        default=0.0,
        help="wait up to this many seconds for the outbox to empty (default 0: just report it; WeCom's limit of "
        "30 messages a minute per member makes a burst of thousands of problems take hours to deliver)",
    )
    parser.add_argument(
        "--lexical", action="store_true", help="the bot routes without the sentence-embedding signal"
    )
    parser.add_argument(
        "--no-flask", dest="flask", action="store_false", help="skip the Flask + gunicorn peer"
    )
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    arguments.kinds = [k.strip() for k in arguments.kinds.split(",") if k.strip()]
    if arguments.baseline_server:
        baseline_server(arguments.baseline_server)
    else:
        asyncio.run(main(arguments))
