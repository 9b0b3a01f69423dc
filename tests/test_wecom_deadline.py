"""The 5 s deadline with WeCom's real timing, shutdown draining, and "acted on once" across processes.

A handler here blocks on a gate the test opens, so "slower than 5 s" is a fact, not a shortened stand-in. The
"processes" are separate ``BotApp`` instances, each with its own engine, HTTP server and caches, sharing nothing
but the database — which is all that deduplication may rely on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.channels.wecom.agent import AppChannel
from bot.channels.wecom.aibot import PLACEHOLDER, AibotChannel, stream_id_for
from bot.channels.wecom.callback import REPLY_WAIT
from bot.core.clock import ManualClock
from bot.core.dispatcher import Context, Router
from tests.fake_wecom import Stack, aibot_text, app_text, deliver_due, running_stack, wecom_settings

DEADLINE = 5.0  # WeCom's, in seconds

acted: list[str] = []
gates: list[asyncio.Event] = []  # one per test: an event belongs to the loop it is first used in
router = Router("测试")


@router.command("block", summary="测试：等测试放行才答复")
async def handle_block(ctx: Context) -> str:
    await gates[-1].wait()
    acted.append(ctx.event.msg_id or "")
    return f"放行后的答复 {ctx.event.msg_id}"


@router.command("ping", summary="测试：记录一次")
async def handle_ping(ctx: Context) -> str:
    acted.append(ctx.event.msg_id or "")
    return f"pong {len(acted)}"


def _prepare(reply_wait: float | None) -> Callable[[BotApp], None]:
    def prepare(bot: BotApp) -> None:
        bot.add_router(router)
        if reply_wait is not None:
            bot.runtime.feature(AibotChannel).reply_wait = reply_wait
            bot.runtime.feature(AppChannel).reply_wait = reply_wait

    return prepare


@pytest.fixture(autouse=True)
def _reset() -> None:
    acted.clear()
    gates.append(asyncio.Event())


@asynccontextmanager
async def _stack(
    database_url: str, clock: ManualClock, tmp_path: Path, *, reply_wait: float | None = 0.2
) -> AsyncIterator[Stack]:
    async with running_stack(
        lambda base: wecom_settings(database_url, base), clock, tmp_path, prepare=_prepare(reply_wait)
    ) as stack:
        stack.bot.runtime.feature(AibotChannel).stream_grace = 5.0
        yield stack


def _poll(stream_id: str) -> dict[str, object]:
    return {"msgid": f"poll-{stream_id}", "msgtype": "stream", "stream": {"id": stream_id}}


async def test_handlers_slower_than_5s_are_answered_in_time_with_the_default_wait(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    """No shortened timings: the default wait, a handler that really takes longer than WeCom's 5 s."""
    assert REPLY_WAIT < DEADLINE
    async with _stack(database_url, clock, tmp_path, reply_wait=None) as stack:
        assert stack.bot.runtime.feature(AibotChannel).reply_wait == REPLY_WAIT
        loop = asyncio.get_running_loop()
        started = loop.time()
        aibot_call = stack.aibot.post_raw(
            *stack.aibot.aibot_body(
                aibot_text(
                    "@联盟助手 /block",
                    msg_id="deadline-aibot",
                    response_url=f"{stack.fake.url}/aibot/response/d1",
                )
            )
        )
        app_call = stack.app.post_raw(*stack.app.app_body(app_text("/block", user="wangwu", msg_id="5005")))
        (
            (aibot_status, aibot_text_, aibot_seconds),
            (app_status, app_body, app_seconds),
        ) = await asyncio.gather(aibot_call, app_call)
        # both answered within the deadline, while the handlers are still blocked
        assert aibot_status == 200 and aibot_seconds < DEADLINE
        assert (app_status, app_body) == (200, "") and app_seconds < DEADLINE
        first = stack.aibot.open_aibot_reply(aibot_text_)["stream"]
        assert first == {"id": stream_id_for("deadline-aibot"), "finish": False, "content": PLACEHOLDER}
        assert acted == []
        # the handlers finish only after WeCom's deadline has passed
        await asyncio.sleep(max(0.0, started + DEADLINE + 0.2 - loop.time()))
        gates[-1].set()
        await stack.idle()
        assert loop.time() - started > DEADLINE
        # the AI bot's result is collected by the stream poll …
        _, polled, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(_poll(first["id"])))
        assert stack.aibot.open_aibot_reply(polled)["stream"] == {
            "id": first["id"],
            "finish": True,
            "content": "放行后的答复 deadline-aibot",
        }
        # … and the app's goes out through message/send
        await stack.deliver()
        [sent] = stack.fake.delivered("/cgi-bin/message/send")
        assert sent.body["touser"] == "wangwu"
        assert sent.body["text"]["content"] == "放行后的答复 5005"
        assert sorted(acted) == ["5005", "deadline-aibot"]


async def test_shutdown_drains_late_answers_and_a_restart_delivers_them(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    async with _stack(database_url, clock, tmp_path) as stack:
        url = f"{stack.fake.url}/aibot/response/drain-1"
        status, text, _ = await stack.app.post_raw(
            *stack.app.app_body(app_text("/block", user="zhaoliu", msg_id="6006"))
        )
        assert (status, text) == (200, "")
        status, text, _ = await stack.aibot.post_raw(
            *stack.aibot.aibot_body(aibot_text("/block", msg_id="drain-aibot", response_url=url))
        )
        assert stack.aibot.open_aibot_reply(text)["stream"]["finish"] is False
        # the process is told to stop while both handlers are still working
        closing = asyncio.ensure_future(stack.server.close())
        await asyncio.sleep(0.2)
        assert not closing.done()  # shutdown waits for the work in flight …
        gates[-1].set()
        await asyncio.wait_for(closing, timeout=30)
        assert sorted(acted) == ["6006", "drain-aibot"]  # … which finished
        assert stack.fake.calls("/cgi-bin/message/send") == []  # the outbox worker had already stopped

        # the next process (same database) delivers both results, once
        restarted = await BotApp.create(wecom_settings(database_url, stack.fake.url), clock=clock)
        try:
            pending = await restarted.store.outbox.listing(statuses=("pending",))
            assert sorted(m.target_kind for m in pending) == ["response_url", "user"]
            clock.advance(seconds=6)  # past the response URL's grace period: nobody polled the stream
            await deliver_due(restarted)
        finally:
            await restarted.close()
        [sent] = stack.fake.delivered("/cgi-bin/message/send")
        assert sent.body["text"]["content"] == "放行后的答复 6006"
        [posted] = stack.fake.delivered("/aibot/response/drain-1")
        assert posted.body["markdown"]["content"] == "放行后的答复 drain-aibot"


async def test_a_retry_reaching_another_process_is_acted_on_once(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    async with (
        _stack(database_url, clock, tmp_path) as first,
        _stack(database_url, clock, tmp_path) as second,
    ):
        # a quick AI-bot answer: the retry to the other process gets the same answer, not a second action
        payload = aibot_text("@助手 /ping", msg_id="cross-aibot-1")
        answers = []
        for stack in (first, second, second):
            status, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(payload))
            assert status == 200
            answers.append(stack.aibot.open_aibot_reply(text)["stream"]["content"])
        assert answers == ["pong 1"] * 3
        assert acted == ["cross-aibot-1"]

        # the same message arriving at both processes at once
        payload = aibot_text("/ping", chat_id=None, msg_id="cross-aibot-2")
        xml = app_text("/ping", msg_id="7007")
        results = await asyncio.gather(
            *(s.aibot.post_raw(*s.aibot.aibot_body(payload)) for s in (first, second, first, second)),
            *(s.app.post_raw(*s.app.app_body(xml)) for s in (first, second, first, second)),
        )
        # one copy per message is handled; a copy arriving while it is still being handled gets 503, so WeCom
        # would try it again later (and then get the recorded answer)
        statuses = [status for status, _, _ in results]
        assert set(statuses) <= {200, 503} and 200 in statuses[:4] and 200 in statuses[4:], statuses
        assert sorted(acted) == sorted(["cross-aibot-1", "cross-aibot-2", "7007"])

        # a slow answer started in one process is collected through the other
        url = f"{first.fake.url}/aibot/response/cross-3"
        body = aibot_text("/block", msg_id="cross-aibot-3", response_url=url)
        status, text, _ = await first.aibot.post_raw(*first.aibot.aibot_body(body))
        stream_id = first.aibot.open_aibot_reply(text)["stream"]["id"]
        _, text, _ = await second.aibot.post_raw(*second.aibot.aibot_body(body))  # WeCom retries
        assert second.aibot.open_aibot_reply(text)["stream"] == {
            "id": stream_id,
            "finish": False,
            "content": PLACEHOLDER,
        }
        gates[-1].set()
        await first.idle()
        _, text, _ = await second.aibot.post_raw(*second.aibot.aibot_body(_poll(stream_id)))
        assert second.aibot.open_aibot_reply(text)["stream"]["content"] == "放行后的答复 cross-aibot-3"
        assert acted.count("cross-aibot-3") == 1

    # a restart: a fresh process on the same database still knows every message
    async with _stack(database_url, clock, tmp_path) as third:
        for payload in (
            aibot_text("@助手 /ping", msg_id="cross-aibot-1"),
            aibot_text("/ping", msg_id="cross-aibot-2"),
        ):
            status, _, _ = await third.aibot.post_raw(*third.aibot.aibot_body(payload))
            assert status == 200
        status, _, _ = await third.app.post_raw(*third.app.app_body(app_text("/ping", msg_id="7007")))
        assert status == 200
    assert sorted(acted) == sorted(["cross-aibot-1", "cross-aibot-2", "7007", "cross-aibot-3"])


async def test_a_slow_command_retried_after_the_deadline_is_acted_on_once(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    """WeCom retries when our answer did not reach it within 5 s (a slow network, a busy proxy); the first
    handler may well still be running then, and must not be joined by a second one."""
    async with _stack(database_url, clock, tmp_path) as stack:
        xml = app_text("/block", user="wangwu", msg_id="8008")
        url = f"{stack.fake.url}/aibot/response/late-retry"
        payload = aibot_text("@助手 /block", msg_id="late-retry", response_url=url)
        assert (await stack.app.post_raw(*stack.app.app_body(xml)))[:2] == (200, "")
        assert (await stack.aibot.post_raw(*stack.aibot.aibot_body(payload)))[0] == 200
        for _ in range(2):  # WeCom's two retries, 5 s apart
            clock.advance(seconds=DEADLINE)
            assert (await stack.app.post_raw(*stack.app.app_body(xml)))[0] == 200
            assert (await stack.aibot.post_raw(*stack.aibot.aibot_body(payload)))[0] == 200
        gates[-1].set()
        await stack.idle()
        clock.advance(seconds=10)  # past the response URL's grace period
        await stack.deliver()
        assert sorted(acted) == ["8008", "late-retry"]
        assert len(stack.fake.delivered("/cgi-bin/message/send")) == 1
        assert len(stack.fake.delivered("/aibot/response/late-retry")) == 1
