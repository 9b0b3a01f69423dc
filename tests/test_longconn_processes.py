"""One long connection per bot across real ``alliance-bot serve`` processes on PostgreSQL: exactly one holds the
socket (the leader lease), the other stands by, and when the holder is killed (SIGKILL) the other takes over;
the hand-over time is measured and printed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.wecom.aibot import stream_id_for
from tests.fake_wecom_ws import BOT_ID, BOT_SECRET, FakeWeComWS, text_message
from tests.harness import EXAMPLE_ROSTER, PG_URL, POSTGRES, fresh_postgres_database
from tests.processes import ServeProcess, prepare_database, tracebacks, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason=f"the hand-over runs on PostgreSQL: {POSTGRES.reason}"),
]

SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"
T1_LEAD = "chenjuejin"


def env(database_url: str, fake: FakeWeComWS) -> dict[str, str]:
    return {
        "BOT_DATABASE_URL": database_url,
        "BOT_ADMINS": "admin1",
        "BOT_RATE_LIMIT_PER_MIN": "0",
        "BOT_SEMANTIC_ROUTING": "false",
        "BOT_WECOM_AIBOT_ID": BOT_ID,
        "BOT_WECOM_AIBOT_SECRET": BOT_SECRET,
        "BOT_WECOM_WS_URL": fake.url,
        "BOT_WECOM_WS_STANDBY_SECONDS": "0.5",
    }


async def longconn(process: ServeProcess, http: aiohttp.ClientSession) -> dict[str, Any]:
    _, health = await process.healthz(http)
    report: dict[str, Any] = health["longconn"]
    return report


async def test_one_process_holds_the_socket_and_the_other_takes_over_when_it_is_killed(
    tmp_path: Path,
) -> None:
    fake = await FakeWeComWS().start()
    try:
        async with fresh_postgres_database() as url, aiohttp.ClientSession() as http:
            await prepare_database(url, EXAMPLE_ROSTER)
            first = await ServeProcess("first", tmp_path / "first", env(url, fake)).start()
            second = ServeProcess("second", tmp_path / "second", env(url, fake))
            try:
                await fake.wait_for(lambda: fake.live, within=30, what="the first process's subscription")
                await second.start()
                _, health = await second.healthz(http)
                assert "longconn" in health["channels"]
                await until(
                    lambda: _state(second, http, "standby"), within=10, what="the second process standing by"
                )
                await asyncio.sleep(2.0)  # several standby rounds: the second never dials in
                assert fake.accepted_subscriptions() == 1 and len(fake.conns) == 1
                assert (await longconn(first, http))["leader"] is True
                assert (await longconn(second, http))["leader"] is False

                killed = time.monotonic()
                first.kill()
                await first.wait()
                await fake.wait_for(
                    lambda: fake.accepted_subscriptions() == 2, within=30, what="the standby's subscription"
                )
                _, subscribed, _ = fake.subscriptions[-1]
                took = subscribed - killed
                print(f"\nlong connection hand-over after SIGKILL of the holder: {took:.2f} s")
                assert took < 5
                await until(
                    lambda: _state(second, http, "online"), within=10, what="the second process online"
                )
                assert (await longconn(second, http))["leader"] is True

                # the new holder answers on the socket and its outbox pushes the lead's request
                body = text_message(SHIELD, user="foreman1", chat_id="wr-tunnel-group")
                await fake.deliver(body)
                stream = await fake.wait_for(
                    lambda: (s := fake.streams.get(stream_id_for(body["msgid"]))) and s.get("finish") and s,
                    within=30,
                    what="the answer from the new holder",
                )
                assert str(stream["content"]).startswith("已登记技术问题 #1")
                await fake.wait_for(lambda: fake.pushes(T1_LEAD), within=30, what="the lead's request")
                assert all(r.conn == 2 for r in fake.received)
                assert not tracebacks(second.log())
            finally:
                await second.stop()
                await first.stop()
    finally:
        await fake.close()


async def _state(process: ServeProcess, http: aiohttp.ClientSession, state: str) -> bool:
    return bool((await longconn(process, http))["state"] == state)
