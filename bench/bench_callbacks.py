"""Benchmark: time to answer a WeCom callback under a burst, against a decrypt-and-echo baseline in the same run.

- The bot runs as ``alliance-bot serve`` in its own process (SQLite in a temporary directory, example roster,
  both WeCom channels configured, ``BOT_WECOM_API_BASE`` pointing at a fake WeCom API in this process).
- The baseline is a minimal aiohttp server in its own process that only verifies and decrypts with wechatpy and
  answers an encrypted echo, for the same two wire formats.
- This process fires ``--n`` signed, encrypted ``/help`` callbacks (each with its own message id) at each
  endpoint, ``--concurrency`` at a time, and measures each request from send to complete answer.

Run: ``.venv/bin/python bench/bench_callbacks.py`` (about half a minute). Prints a Markdown table.
The per-user rate limit is switched off (``BOT_RATE_LIMIT_PER_MIN=0``): the burst comes from a few users.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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

# The baseline runs in a process of its own: it gets the keys through the environment.
AIBOT_AES_KEY = os.environ.get("BENCH_AIBOT_AES_KEY") or random_aes_key()
APP_AES_KEY = os.environ.get("BENCH_APP_AES_KEY") or random_aes_key()

USERS = ("chenjuejin", "zhanglali", "mushandong", "demo1", "demo2", "demo3", "demo4", "demo5")


@dataclass(slots=True, frozen=True)
class Run:
    """One endpoint's burst."""

    label: str
    n: int
    concurrency: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    rps: float
    errors: int


# -- the baseline server (its own process) -------------------------------------------------------------


def baseline_server(port: int) -> None:
    """A minimal aiohttp app: verify + decrypt with wechatpy, answer an encrypted echo. Runs until killed."""
    from aiohttp import web

    aibot = WeChatCrypto(AIBOT_TOKEN, AIBOT_AES_KEY, "")
    app_crypto = WeChatCrypto(APP_TOKEN, APP_AES_KEY, CORP_ID)

    async def handle_aibot(request: web.Request) -> web.Response:
        q = request.query
        body = json.loads(await request.read())
        plain = aibot.decrypt_message(
            {"Encrypt": body["encrypt"]}, q["msg_signature"], q["timestamp"], q["nonce"]
        )
        sealed = xmltodict.parse(aibot.encrypt_message(plain, q["nonce"], q["timestamp"]))["xml"]
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
        return web.Response(text=app_crypto.encrypt_message(plain, q["nonce"], q["timestamp"]))

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/wecom/aibot", handle_aibot)
    app.router.add_post("/wecom/app", handle_app)
    print("baseline ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the client -------------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _aibot_request(i: int) -> tuple[str, dict[str, str]]:
    crypto = WeChatCrypto(AIBOT_TOKEN, AIBOT_AES_KEY, "")
    payload = aibot_text("@联盟助手 /help", user=USERS[i % len(USERS)], msg_id=f"bench-{uuid.uuid4().hex}")
    return _seal(crypto, json.dumps(payload, ensure_ascii=False), lambda enc: json.dumps({"encrypt": enc}))


def _app_request(i: int) -> tuple[str, dict[str, str]]:
    crypto = WeChatCrypto(APP_TOKEN, APP_AES_KEY, CORP_ID)
    xml = app_text("/help", user=USERS[i % len(USERS)], msg_id=str(uuid.uuid4().int % 10**19))
    return _seal(crypto, xml, lambda enc: f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>")


def _seal(crypto: WeChatCrypto, plaintext: str, envelope: object) -> tuple[str, dict[str, str]]:
    nonce, timestamp = uuid.uuid4().hex[:10], str(int(time.time()))
    fields = xmltodict.parse(crypto.encrypt_message(plaintext, nonce, timestamp))["xml"]
    query = {
        "msg_signature": fields["MsgSignature"],
        "timestamp": fields["TimeStamp"],
        "nonce": fields["Nonce"],
    }
    return envelope(fields["Encrypt"]), query  # type: ignore[operator]


async def burst(
    http: aiohttp.ClientSession, url: str, label: str, kind: str, n: int, concurrency: int
) -> Run:
    """Fire ``n`` callbacks at ``url``, ``concurrency`` at a time; the requests are built before the clock starts."""
    build = _aibot_request if kind == "aibot" else _app_request
    requests = [build(i) for i in range(n)]
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def worker() -> None:
        nonlocal errors
        while not queue.empty():
            body, query = queue.get_nowait()
            started = time.perf_counter()
            async with http.post(url, params=query, data=body) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    latencies.sort()
    return Run(
        label=label,
        n=n,
        concurrency=concurrency,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        max_ms=latencies[-1] * 1000,
        rps=n / wall,
        errors=errors,
    )


async def _wait_line(process: asyncio.subprocess.Process, marker: str) -> None:
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=120)).decode()
        if not line:
            raise RuntimeError(f"process exited before printing {marker!r}")
        if marker in line:
            return


async def main(n: int, concurrency: int) -> None:
    fake = await FakeWeCom().start()
    processes: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            bot_port, base_port = _free_port(), _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
            env.update(BENCH_AIBOT_AES_KEY=AIBOT_AES_KEY, BENCH_APP_AES_KEY=APP_AES_KEY)
            env.update(
                BOT_DATABASE_URL=f"sqlite:///{Path(tmp) / 'bot.db'}",
                BOT_PORT=str(bot_port),
                BOT_RATE_LIMIT_PER_MIN="0",
                BOT_WECOM_CORP_ID=CORP_ID,
                BOT_WECOM_AGENT_ID="1000002",
                BOT_WECOM_SECRET=SECRET,
                BOT_WECOM_APP_TOKEN=APP_TOKEN,
                BOT_WECOM_APP_AES_KEY=APP_AES_KEY,
                BOT_WECOM_AIBOT_TOKEN=AIBOT_TOKEN,
                BOT_WECOM_AIBOT_AES_KEY=AIBOT_AES_KEY,
                BOT_WECOM_API_BASE=fake.url,
            )
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bot",
                    "studios",
                    "import",
                    str(ROOT / "config" / "roster.example.yaml"),
                ],
                cwd=tmp,
                env=env,
                check=True,
                capture_output=True,
            )
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "serve", cwd=tmp, env=env, stdout=asyncio.subprocess.PIPE
            )
            processes.append(bot)
            await _wait_line(bot, "live channels")
            baseline = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--baseline-server",
                str(base_port),
                env=env,
                stdout=asyncio.subprocess.PIPE,
            )
            processes.append(baseline)
            await _wait_line(baseline, "baseline ready")
            await asyncio.sleep(0.3)  # let the baseline bind its port
            connector = aiohttp.TCPConnector(limit=concurrency)
            runs: list[tuple[Run, Run]] = []
            async with aiohttp.ClientSession(connector=connector) as http:
                for kind in ("aibot", "app"):
                    path = f"/wecom/{kind}"
                    # a short warm-up of each server (imports, jieba dictionary, connection pools)
                    await burst(http, f"http://127.0.0.1:{bot_port}{path}", "warm-up", kind, 20, 4)
                    await burst(http, f"http://127.0.0.1:{base_port}{path}", "warm-up", kind, 20, 4)
                    ours = await burst(
                        http, f"http://127.0.0.1:{bot_port}{path}", f"bot {path}", kind, n, concurrency
                    )
                    base = await burst(
                        http, f"http://127.0.0.1:{base_port}{path}", f"baseline {path}", kind, n, concurrency
                    )
                    runs.append((ours, base))
        finally:
            for process in processes:
                process.terminate()
                await process.wait()
            await fake.close()
    print(
        f"\n{n} callbacks per endpoint, {concurrency} concurrent, SQLite, one `alliance-bot serve` process\n"
    )
    print("| endpoint | p50 ms | p99 ms | max ms | req/s | non-200 |")
    print("|---|---:|---:|---:|---:|---:|")
    for ours, base in runs:
        for run in (ours, base):
            print(
                f"| {run.label} | {run.p50_ms:.1f} | {run.p99_ms:.1f} | {run.max_ms:.1f} | {run.rps:.0f} | {run.errors} |"
            )
        print(
            f"| ratio bot/baseline | {ours.p50_ms / base.p50_ms:.1f}× | {ours.p99_ms / base.p99_ms:.1f}× | "
            f"{ours.max_ms / base.max_ms:.1f}× | {ours.rps / base.rps:.2f}× | |"
        )
    print(f"\nfake WeCom API requests during the run: {len(fake.requests)} (a /help answer needs none)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="callbacks per endpoint (default 500)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        baseline_server(args.baseline_server)
    else:
        asyncio.run(main(args.n, args.concurrency))
