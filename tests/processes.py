"""Helpers for tests that run real ``alliance-bot serve`` processes against a fake WeCom.

A ``ServeProcess`` is ``python -m bot serve`` on a free port with its own working directory; its stderr (the
bot's log) goes to a file the test can read, so a test can check that no traceback was logged. ``RoutedFake``
is the fake WeCom listening on one port per bot process, so a test can tell which process made each call, and
able to hold message sends until the test lets them through.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.core.clock import SystemClock
from bot.services.studios import load_roster
from bot.store import Store
from tests.fake_wecom import (
    AGENT_ID,
    AIBOT_AES_KEY,
    AIBOT_TOKEN,
    APP_AES_KEY,
    APP_TOKEN,
    CORP_ID,
    SECRET,
    FakeWeCom,
    Recorded,
    WeComCallbacks,
)
from tests.harness import EXAMPLE_ROSTER

# The alliance leads of the example roster: each may add events for their own alliance.
LEADS = {"bridge": "gaojiaqiao", "tunnel": "mushandong", "urban": "jiaditie", "power": "zhongdianqi"}
SEND_PATHS = ("/cgi-bin/message/send", "/cgi-bin/appchat/send", "/cgi-bin/webhook/send")


@dataclass(slots=True)
class Tally:
    """What one fault scenario did to its messages, for the run's summary: ``sent`` distinct callbacks,
    ``answered`` those WeCom got a 200 for, ``stored`` those acted on exactly once, ``duplicated`` those acted
    on (or announced) more than once, ``missing`` those answered 200 and never acted on; ``in_doubt`` sends a
    takeover found in flight (the only ones allowed to reach a group twice)."""

    scenario: str
    sent: int = 0
    answered: int = 0
    stored: int = 0
    duplicated: int = 0
    missing: int = 0
    in_doubt: int = 0

    def line(self) -> str:
        """One row of the summary table."""
        return (
            f"{self.scenario:<56} {self.sent:>5} {self.answered:>8} {self.stored:>6} {self.duplicated:>10} "
            f"{self.missing:>7} {self.in_doubt:>8}"
        )


# filled by the fault scenarios as they run; printed at the end of the run (tests/conftest.py)
TALLIES: list[Tally] = []


def tally_table() -> list[str]:
    """The fault scenarios' tallies as a table, or nothing when none ran."""
    if not TALLIES:
        return []
    head = f"{'fault scenario':<56} {'sent':>5} {'answered':>8} {'stored':>6} {'duplicated':>10} {'missing':>7} {'in doubt':>8}"
    return [head, *(t.line() for t in TALLIES)]


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the bot's own settings (the harness's ``BOT_TEST_*`` stay), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") or k.startswith("BOT_TEST_")}
    env.update(extra)
    return env


def wecom_env(database_url: str, api_base: str, **extra: str) -> dict[str, str]:
    """The settings of a bot with both WeCom channels and the API configured, pointing at a fake, as variables."""
    env = {
        "BOT_DATABASE_URL": database_url,
        "BOT_ADMINS": "admin1",
        "BOT_RATE_LIMIT_PER_MIN": "0",
        "BOT_WECOM_CORP_ID": CORP_ID,
        "BOT_WECOM_AGENT_ID": AGENT_ID,
        "BOT_WECOM_SECRET": SECRET,
        "BOT_WECOM_APP_TOKEN": APP_TOKEN,
        "BOT_WECOM_APP_AES_KEY": APP_AES_KEY,
        "BOT_WECOM_AIBOT_TOKEN": AIBOT_TOKEN,
        "BOT_WECOM_AIBOT_AES_KEY": AIBOT_AES_KEY,
        "BOT_WECOM_API_BASE": api_base,
        # These tests are about coordination between processes (dedupe, outbox, jobs, escalation). A cold process
        # loading the embedding model and embedding the roster at a timed sweep made the escalation test flaky in
        # the full suite; routing with embeddings is tested in-process (tests/test_routing_signals.py).
        "BOT_SEMANTIC_ROUTING": "false",
    }
    env.update(extra)
    return env


def announcing_roster(tmp_path: Path) -> Path:
    """The example roster with every alliance announcing to its own robot webhook and app chat.

    One pair of targets per alliance keeps a burst spread over several targets, under WeCom's per-target
    limits (20/min per robot), so the outbox is not paced during a test.
    """
    data = yaml.safe_load(EXAMPLE_ROSTER.read_text(encoding="utf-8"))
    for alliance in data["alliances"]:
        alliance["announce"] = {
            "webhooks": [f"hook-{alliance['id']}"],
            "appchats": [f"chat-{alliance['id']}"],
        }
    path = tmp_path / "roster-announce.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def prepare_database(database_url: str, roster: Path) -> None:
    """Migrate the database and import a roster, as ``alliance-bot studios import`` would."""
    store = await Store.open(database_url)
    try:
        await store.studios.import_roster(load_roster(roster))
    finally:
        await store.close()


async def until(check: Callable[[], Awaitable[Any]], *, within: float, what: str, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for: {what}")
        await asyncio.sleep(every)


@dataclass
class ServeProcess:
    """One ``python -m bot serve`` (or another ``-m`` module's CLI) on its own port and working directory."""

    name: str
    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    module: tuple[str, ...] = ("-m", "bot")
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """The base URL the process serves on."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The file the process's stderr (its log) is appended to."""
        return self.workdir / "serve.log"

    def log(self) -> str:
        """Everything the process (over all its starts) has logged."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    async def start(self, *, within: float = 60.0) -> ServeProcess:
        """Start the process and wait until it serves (its banner line on stdout)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.module,
                "serve",
                cwd=self.workdir,
                env=clean_env(**self.env, BOT_PORT=str(self.port)),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        assert self.process.stdout is not None
        banner = (await asyncio.wait_for(self.process.stdout.readline(), timeout=within)).decode()
        if "serving on" not in banner:
            await self.process.wait()
            raise AssertionError(f"{self.name} did not start: {banner!r}\n{self.log()[-3000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when the machine or the OOM killer stops it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def wait(self, within: float = 30.0) -> int:
        """Wait for the process to exit; its return code."""
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout=within)

    async def stop(self) -> None:
        """SIGTERM and wait (a clean shutdown); SIGKILL if it does not stop in time."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await self.wait(30)
        except TimeoutError:
            self.process.kill()
            await self.wait(10)

    async def healthz(self, http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
        """``GET /healthz``: status and JSON."""
        async with http.get(f"{self.url}/healthz") as response:
            return response.status, await response.json(content_type=None)

    def callbacks(self, http: aiohttp.ClientSession) -> tuple[WeComCallbacks, WeComCallbacks]:
        """Clients posting real encrypted callbacks to this process: (AI bot, app)."""
        clock = SystemClock()
        aibot = WeComCallbacks(
            http,
            f"{self.url}/wecom/aibot",
            token=AIBOT_TOKEN,
            aes_key=AIBOT_AES_KEY,
            receive_id="",
            clock=clock,
        )
        app = WeComCallbacks(
            http,
            f"{self.url}/wecom/app",
            token=APP_TOKEN,
            aes_key=APP_AES_KEY,
            receive_id=CORP_ID,
            clock=clock,
        )
        return aibot, app


def tracebacks(log: str) -> list[str]:
    """The tracebacks in a process log (an unhandled exception, or one logged with ``log.exception``)."""
    chunks = log.split("Traceback (most recent call last):")
    return [chunk[:1500] for chunk in chunks[1:]]


@dataclass
class RoutedFake(FakeWeCom):
    """The fake WeCom on several ports (one per bot process), so each recorded request shows which process
    made it (``Recorded.port``).

    ``hold_sends()`` makes message sends wait until ``release_sends()``; a held send whose client has gone
    away meanwhile (a killed process) is not recorded: WeCom never got to act on it.
    """

    held: int = 0  # sends that have waited at the gate so far
    answers_held: int = 0  # sends acted on whose answer waited at the answer gate
    _servers: list[TestServer] = field(default_factory=list)
    _gate: asyncio.Event = field(default_factory=asyncio.Event)
    _answer_gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._gate.set()
        self._answer_gate.set()

    async def start_ports(self, count: int) -> list[str]:
        """Listen on ``count`` free ports; their base URLs (one per bot process)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._routed)
        for _ in range(count):
            server = TestServer(app, host="127.0.0.1", port=0)
            await server.start_server()
            self._servers.append(server)
        self._server = self._servers[0]
        return [str(s.make_url("")).rstrip("/") for s in self._servers]

    async def close(self) -> None:
        """Stop listening on every port."""
        self._gate.set()
        self._answer_gate.set()
        for server in self._servers:
            await server.close()

    def hold_sends(self) -> None:
        """From now on, message sends wait for ``release_sends``."""
        self._gate.clear()

    def release_sends(self) -> None:
        """Let held and future sends through."""
        self._gate.set()

    def hold_answers(self) -> None:
        """From now on WeCom acts on each message send at once but holds back its answer until
        ``release_answers``: a sender killed meanwhile cannot know its message went out (a send in flight)."""
        self._answer_gate.clear()

    def release_answers(self) -> None:
        """Answer held and future sends."""
        self._answer_gate.set()

    @staticmethod
    def port_of(url: str) -> int:
        """The port of one of the base URLs ``start_ports`` returned."""
        return int(url.rsplit(":", 1)[1])

    def sends(self) -> list[Recorded]:
        """Every successful message send (user, app chat, robot), in arrival order."""
        return [
            r
            for r in self.requests
            if r.path in SEND_PATHS and r.answer and r.answer.get("errcode") == 0 and not r.repeat
        ]

    async def _routed(self, request: web.Request) -> web.StreamResponse:
        if request.path in SEND_PATHS and not self._gate.is_set():
            self.held += 1
            await self._gate.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499, text="client gone")
        response = await self._handle(request)
        if request.path in SEND_PATHS and not self._answer_gate.is_set():
            self.answers_held += 1
            await self._answer_gate.wait()
        return response
