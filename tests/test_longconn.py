"""The AI bot's long connection against the fake WeCom WebSocket (``tests/fake_wecom_ws.py``), over real sockets:
a conversation (a problem asked and answered), exactly-once on a repeated msgid, stream replacement for a slow
answer, pings, reconnection after a drop (timed), a refused secret, a takeover by another deployment, and pushes
queued by any process reaching the socket through the outbox."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func
from sqlmodel import select

from bot.app import BotApp, build_web_app
from bot.channels.wecom.aibot import PLACEHOLDER, stream_id_for
from bot.channels.wecom.longconn import LongConnChannel, backoff
from bot.core.clock import SystemClock
from bot.core.dispatcher import Context, Router
from bot.core.messages import Outbound, Target, TargetKind
from bot.core.outbox import Outbox
from bot.services.studios import load_roster
from bot.settings import Settings
from bot.store import Store
from bot.store.problems import Problem
from tests.conftest import ADMIN
from tests.fake_wecom_ws import BOT_ID, BOT_SECRET, FakeWeComWS, text_message
from tests.harness import EXAMPLE_ROSTER, PG_URL, POSTGRES, fresh_postgres_database
from tests.processes import until

T1_LEAD = "chenjuejin"  # 盾构掘进控制劳模创新工作室 (T1)
ASKER = "foreman1"
GROUP = "wr-tunnel-group"
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"

slow_router = Router("测试")


@slow_router.command("slow", summary="测试：很慢的命令")
async def handle_slow(ctx: Context) -> str:
    await asyncio.sleep(1.5)
    return "慢慢的答复"


@dataclass
class WsStack:
    """A running bot (HTTP on port 0, for /healthz) holding a long connection to the fake."""

    bot: BotApp
    fake: FakeWeComWS
    http: aiohttp.ClientSession
    server: TestServer

    @property
    def channel(self) -> LongConnChannel:
        return self.bot.runtime.feature(LongConnChannel)

    async def health(self) -> dict[str, Any]:
        async with self.http.get(self.server.make_url("/healthz")) as response:
            data: dict[str, Any] = await response.json()
            return data

    async def ask(
        self, text: str, *, user: str, chat_id: str | None = GROUP, msg_id: str | None = None
    ) -> str:
        """Send a message over the socket and return the stream's final content."""
        body = text_message(text, user=user, chat_id=chat_id, msg_id=msg_id)
        await self.fake.deliver(body)
        stream_id = stream_id_for(body["msgid"])
        stream = await self.fake.wait_for(
            lambda: (s := self.fake.streams.get(stream_id)) and s.get("finish") and s,
            what=f"the answer to {text!r}",
        )
        return str(stream["content"])


def ws_settings(database_url: str, fake: FakeWeComWS, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admins": [ADMIN],
        "wecom_aibot_id": BOT_ID,
        "wecom_aibot_secret": BOT_SECRET,
        "wecom_ws_url": fake.url,
        "wecom_ws_standby_seconds": 0.5,
        "rate_limit_per_min": 0,
        "semantic_routing": False,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def ws_stack(
    database_url: str, *, fake: FakeWeComWS | None = None, **overrides: Any
) -> AsyncIterator[WsStack]:
    fake = fake or FakeWeComWS()
    await fake.start()
    try:
        bot = await BotApp.create(ws_settings(database_url, fake, **overrides), clock=SystemClock())
        await bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        bot.add_router(slow_router)
        bot.runtime.feature(LongConnChannel).reply_wait = 0.6
        server = TestServer(build_web_app(bot), host="127.0.0.1", port=0)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield WsStack(bot, fake, http, server)
        finally:
            await server.close()
    finally:
        await fake.close()


async def state_is(stack: WsStack, state: str) -> bool:
    return bool((await stack.health())["longconn"]["state"] == state)


async def online(stack: WsStack) -> None:
    await stack.fake.wait_for(lambda: stack.fake.live, what="a subscription")
    await until(lambda: state_is(stack, "online"), within=10, what="the bot to report the connection online")


def push_texts(fake: FakeWeComWS, chat_id: str) -> list[str]:
    """The texts pushed to a chat (a card's text for a card)."""
    return [
        str(p.body["markdown"]["content"])
        if "markdown" in p.body
        else f"{p.body['template_card']['main_title']['title']}\n{p.body['template_card']['sub_title_text']}"
        for p in fake.pushes(chat_id)
    ]


async def test_a_problem_is_asked_and_answered_over_the_socket(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        health = await stack.health()
        assert "longconn" in health["channels"]
        assert health["longconn"]["leader"] is True and health["longconn"]["kicked"] is False
        logged = await stack.ask(f"@联盟助手\u2005{SHIELD}", user=ASKER)
        assert logged.startswith("已登记技术问题 #1"), logged
        # the lead's request arrives as a push to the lead's 1:1 chat (no app configured)
        (request,) = await stack.fake.wait_for(
            lambda: push_texts(stack.fake, T1_LEAD), what="the lead's request"
        )
        assert "/认领 1" in request
        assert "已认领问题 #1" in await stack.ask("/认领 1", user=T1_LEAD, chat_id=None)
        assert "已答复问题 #1" in await stack.ask(
            "/答复 1 降低推进速度，检查土压传感器", user=T1_LEAD, chat_id=None
        )
        answers = await stack.fake.wait_for(
            lambda: [t for t in push_texts(stack.fake, ASKER) if "答复了您的问题 #1" in t], what="the answer"
        )
        assert "检查土压传感器" in answers[0]
        # solved: the group where it was asked gets one line with the answer, once (a re-solve adds none)
        assert "已标记为解决" in await stack.ask("/解决 1", user=ASKER)
        line = "#1 已由盾构掘进控制劳模创新工作室解决：降低推进速度，检查土压传感器"
        await stack.fake.wait_for(lambda: line in push_texts(stack.fake, GROUP), what="the line in the group")
        await stack.ask("/重开 1", user=ASKER)
        assert "已标记为解决" in await stack.ask("/解决 1", user=ASKER)
        await asyncio.sleep(1.5)
        assert push_texts(stack.fake, GROUP) == [line]
        # every reply reused its callback's req_id (the fake refuses any other)
        assert all(r.errcode == 0 for r in stack.fake.frames("aibot_respond_msg"))


async def test_a_repeated_msgid_is_acted_on_once(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        first = await stack.ask(SHIELD, user=ASKER, msg_id="dup-1")
        await stack.fake.deliver(text_message(SHIELD, user=ASKER, chat_id=GROUP, msg_id="dup-1"))
        await asyncio.sleep(0.5)
        await stack.channel.idle()
        async with stack.bot.store.sessions() as session:
            problems = (await session.exec(select(func.count()).select_from(Problem))).one()
        assert problems == 1
        assert first.startswith("已登记技术问题 #1")
        frames = stack.fake.frames("aibot_respond_msg")
        assert len({f.req_id for f in frames}) <= 2  # the repeat is answered from the record, never redone


async def test_a_slow_answer_replaces_its_placeholder_in_the_same_stream(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        body = text_message("/slow", user=ASKER, chat_id=None)
        req_id = await stack.fake.deliver(body)
        stream_id = stream_id_for(body["msgid"])
        await stack.fake.wait_for(
            lambda: len(stack.fake.stream_frames.get(stream_id, [])) >= 2, what="the final frame"
        )
        placeholder, final = stack.fake.stream_frames[stream_id]
        assert (placeholder["content"], placeholder["finish"]) == (PLACEHOLDER, False)
        assert (final["content"], final["finish"]) == ("慢慢的答复", True)
        assert (
            stack.fake.streams[stream_id]["content"] == "慢慢的答复"
        )  # the final frame replaced the placeholder
        assert {f.req_id for f in stack.fake.frames("aibot_respond_msg")} == {req_id}


async def test_pings_are_acknowledged_and_two_missed_ones_mean_a_dead_connection(database_url: str) -> None:
    async with ws_stack(database_url, wecom_ws_ping_seconds=0.2) as stack:
        await online(stack)
        await stack.fake.wait_for(lambda: stack.fake.pings >= 4, what="pings")
        assert stack.fake.accepted_subscriptions() == 1  # acknowledged pings keep the one connection
        stack.fake.answer_pings = False
        started = time.monotonic()
        await stack.fake.wait_for(lambda: stack.fake.accepted_subscriptions() == 2, what="a new connection")
        took = time.monotonic() - started
        print(f"\nunanswered pings (every 0.2 s) -> new connection after {took:.2f} s")
        assert took < 4
        assert (await stack.health())["longconn"]["connects"] == 2


async def test_the_bot_reconnects_after_a_drop(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        dropped = time.monotonic()
        await stack.fake.drop()
        await stack.fake.wait_for(lambda: stack.fake.accepted_subscriptions() == 2, what="a reconnection")
        _, at, _ = stack.fake.subscriptions[-1]
        took = at - dropped
        print(f"\nreconnect after a drop: {took:.2f} s")
        assert 0.4 < took < 2.5  # the first reconnect waits 0.5-1 s (jittered)
        await online(stack)
        assert (await stack.ask("/帮助", user=ASKER)).strip()


def test_backoff_doubles_to_thirty_seconds_with_jitter() -> None:
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (4, 16), (5, 30), (12, 30)]:
        delays = [backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


async def test_a_wrong_secret_is_logged_clearly_and_shown_in_healthz(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bot.channels.wecom.longconn")
    async with ws_stack(database_url, wecom_aibot_secret="wrong-secret") as stack:
        await stack.fake.wait_for(lambda: stack.fake.subscriptions, what="a subscription attempt")
        await until(lambda: state_is(stack, "auth_failed"), within=10, what="auth_failed in /healthz")
        health = (await stack.health())["longconn"]
        assert "40001" in health["error"]
        assert stack.fake.accepted_subscriptions() == 0
        assert any(
            "refused the subscription" in r.getMessage() and "BOT_WECOM_AIBOT_SECRET" in r.getMessage()
            for r in caplog.records
        )
        assert "wrong-secret" not in caplog.text  # the secret itself is never logged


async def test_a_takeover_by_another_deployment_is_reported_not_fought(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bot.channels.wecom.longconn")
    async with ws_stack(database_url) as stack:
        await online(stack)
        await stack.fake.kick()
        await until(lambda: _kicked(stack), within=10, what="kicked: true in /healthz")
        assert (await stack.health())["longconn"]["state"] == "kicked"
        await asyncio.sleep(2.5)  # longer than the first backoffs: no reconnection attempt
        assert stack.fake.accepted_subscriptions() == 1 and len(stack.fake.conns) == 1
        assert any("taken over by another deployment" in r.getMessage() for r in caplog.records)
        queued = await stack.bot.store.outbox.listing(statuses=("pending", "sent", "failed"))
        notices = [m for m in queued if m.target == ADMIN and "长连接被接管" in m.text]
        assert len(notices) == 1


async def _kicked(stack: WsStack) -> bool:
    return bool((await stack.health())["longconn"]["kicked"])


async def test_pushes_queued_by_any_process_reach_the_socket_through_the_outbox(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        other = await Store.open(database_url, migrate=False)  # another process's view of the database
        try:
            outbox = Outbox(other, now=SystemClock().now)
            await outbox.send(
                Outbound(Target(TargetKind.LONGCONN, "group:wr-elsewhere"), "来自另一进程的通知")
            )
        finally:
            await other.close()
        (text,) = await stack.fake.wait_for(lambda: push_texts(stack.fake, "wr-elsewhere"), what="the push")
        assert text == "来自另一进程的通知"


async def test_while_the_socket_is_down_long_connection_messages_wait_unattempted(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        stack.fake.secret = "rotated"  # the reconnection is refused: the link stays down
        await stack.fake.drop()
        await until(lambda: state_is(stack, "auth_failed"), within=10, what="the link to stay down")
        await stack.bot.runtime.outbox.send(Outbound(Target(TargetKind.LONGCONN, "single:x1"), "稍后送达"))
        assert stack.bot.worker is not None
        await stack.bot.worker.run_once()  # does not claim (and fail) what only the socket can deliver
        (pending,) = [m for m in await stack.bot.store.outbox.listing() if m.target == "single:x1"]
        assert pending.attempts == 0 and pending.lease_until is None
        stack.fake.secret = BOT_SECRET
        await stack.fake.wait_for(lambda: push_texts(stack.fake, "x1"), within=15, what="the push once back")


async def test_entering_the_chat_gets_the_welcome(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        body = {
            "msgid": "enter-1",
            "aibotid": BOT_ID,
            "chattype": "single",
            "from": {"userid": ASKER},
            "msgtype": "event",
            "event": {"eventtype": "enter_chat"},
        }
        req_id = await stack.fake.event(body)
        (welcome,) = await stack.fake.wait_for(
            lambda: stack.fake.frames("aibot_respond_welcome_msg", req_id=req_id), what="the welcome"
        )
        assert welcome.errcode == 0 and "/帮助" in welcome.body["text"]["content"]


@pytest.mark.skipif(not PG_URL, reason=f"a standby needs PostgreSQL: {POSTGRES.reason}")
async def test_a_standby_process_leaves_long_connection_messages_to_the_holder(tmp_path: Path) -> None:
    async with fresh_postgres_database() as url, ws_stack(url) as holder:
        await online(holder)
        standby = await BotApp.create(ws_settings(url, holder.fake), clock=SystemClock())
        server = TestServer(build_web_app(standby), host="127.0.0.1", port=0)
        await server.start_server()  # starts its long connection: it finds the lease taken and stands by
        try:
            channel = standby.runtime.feature(LongConnChannel)
            await until(lambda: _standby(channel), within=10, what="the second bot standing by")
            await standby.runtime.outbox.send(
                Outbound(Target(TargetKind.LONGCONN, "group:wr-from-standby"), "由待命进程排队")
            )
            (text,) = await holder.fake.wait_for(
                lambda: push_texts(holder.fake, "wr-from-standby"), what="the holder's push"
            )
            assert text == "由待命进程排队"
            assert all(r.conn == 1 for r in holder.fake.received) and len(holder.fake.conns) == 1
            assert channel.report()["leader"] is False
        finally:
            await server.close()


async def _standby(channel: LongConnChannel) -> bool:
    return channel.report()["state"] == "standby"
