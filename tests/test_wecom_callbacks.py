"""Both WeCom callback channels over real HTTP: real encrypted callbacks (wechatpy) POSTed to the running app."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import BotApp
from bot.channels.wecom.agent import AppChannel
from bot.channels.wecom.aibot import PLACEHOLDER, AibotChannel, stream_id_for, strip_mentions
from bot.core.clock import ManualClock
from bot.core.dispatcher import Context, Router
from bot.store.dedupe import ProcessedMessage
from tests.fake_wecom import (
    AIBOT_AES_KEY,
    AIBOT_TOKEN,
    APP_AES_KEY,
    APP_TOKEN,
    SECRET,
    Stack,
    WeComCallbacks,
    aibot_text,
    app_text,
    running_stack,
    wecom_settings,
)

acted: list[str] = []
test_router = Router("测试")


@test_router.command("ping", summary="测试：记录一次")
async def handle_ping(ctx: Context) -> str:
    acted.append(ctx.event.msg_id or "")
    return f"pong {len(acted)}"


@test_router.command("slow", summary="测试：很慢的命令")
async def handle_slow(ctx: Context) -> str:
    await asyncio.sleep(2.0)
    acted.append(ctx.event.msg_id or "")
    return "慢慢的答复"


def _prepare(bot: BotApp) -> None:
    bot.add_router(test_router)
    # the deadline, shortened: a handler slower than this is answered "later"
    bot.runtime.feature(AibotChannel).reply_wait = 0.8
    bot.runtime.feature(AppChannel).reply_wait = 0.8
    bot.runtime.feature(AibotChannel).stream_grace = 5.0


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    acted.clear()
    async with running_stack(
        lambda base: wecom_settings(database_url, base), clock, tmp_path, prepare=_prepare
    ) as running:
        yield running


async def _processed(bot: BotApp) -> list[str]:
    async with bot.store.sessions() as session:
        return list((await session.exec(select(ProcessedMessage.key))).all())


# -- URL verification -------------------------------------------------------------------------------


async def test_url_verification_answers_the_decrypted_echostr(stack: Stack) -> None:
    for callbacks in (stack.aibot, stack.app):
        response = await callbacks.verify_url("echo-5512345")
        assert response.status == 200
        assert await response.text() == "echo-5512345"
        assert response.content_type == "text/plain"
    forged = stack.aibot.seal("echo")
    async with stack.http.get(
        stack.aibot.url, params={**forged.query, "msg_signature": "0" * 40, "echostr": forged.encrypt}
    ) as response:
        assert response.status == 403
    async with stack.http.get(stack.app.url) as response:
        assert response.status == 403


# -- messages ---------------------------------------------------------------------------------------


async def test_group_mention_gets_a_decryptable_passive_stream_reply(stack: Stack) -> None:
    body, query = stack.aibot.aibot_body(aibot_text("@联盟助手\u2005/帮助", user="chenjuejin"))
    status, text, seconds = await stack.aibot.post_raw(body, query)
    assert status == 200, text
    reply = stack.aibot.open_aibot_reply(text)
    assert reply["msgtype"] == "stream"
    assert reply["stream"]["finish"] is True
    assert "工作室联盟助手" in reply["stream"]["content"]
    assert "工作室负责人" in reply["stream"]["content"]  # chenjuejin leads T1: the @mention was stripped
    assert seconds < 5


async def test_one_to_one_app_command_gets_an_encrypted_xml_reply(stack: Stack) -> None:
    body, query = stack.app.app_body(app_text("/ping", user="lisi", msg_id="7001"))
    status, text, _ = await stack.app.post_raw(body, query)
    assert status == 200, text
    fields = stack.app.open_app_reply(text)
    assert fields["ToUserName"] == "lisi"
    assert fields["MsgType"] == "text"
    assert fields["Content"] == "pong 1"
    assert "app:7001" in await _processed(stack.bot)


async def test_a_message_retried_three_times_is_acted_on_once(stack: Stack) -> None:
    payload = aibot_text("@助手 /ping", msg_id="retry-aibot-1")
    answers = []
    for _ in range(3):
        body, query = stack.aibot.aibot_body(payload)  # each retry is signed anew, as WeCom does
        status, text, _ = await stack.aibot.post_raw(body, query)
        assert status == 200
        answers.append(stack.aibot.open_aibot_reply(text)["stream"]["content"])
    assert acted == ["retry-aibot-1"]
    assert answers == ["pong 1"] * 3  # a retry whose first answer was lost still gets the answer

    xml = app_text("/ping", msg_id="8001")
    statuses = []
    for _ in range(3):
        body, query = stack.app.app_body(xml)
        statuses.append((await stack.app.post_raw(body, query))[0])
    assert statuses == [200, 200, 200]
    assert acted == ["retry-aibot-1", "8001"]


async def test_concurrent_retries_are_acted_on_once(stack: Stack) -> None:
    payload = aibot_text("/ping", chat_id=None, msg_id="retry-concurrent")
    calls = [stack.aibot.post_raw(*stack.aibot.aibot_body(payload)) for _ in range(3)]
    results = await asyncio.gather(*calls)
    # copies arriving while the first is being handled get 503, so WeCom would try them again later
    statuses = [status for status, _, _ in results]
    assert 200 in statuses and set(statuses) <= {200, 503}, statuses
    assert acted == ["retry-concurrent"]
    status, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(payload))  # WeCom's later retry
    assert status == 200 and stack.aibot.open_aibot_reply(text)["stream"]["content"] == "pong 1"
    assert acted == ["retry-concurrent"]


async def test_a_slow_handler_is_answered_in_time_and_its_result_polled(stack: Stack) -> None:
    payload = aibot_text(
        "@助手 /slow", msg_id="slow-1", response_url=f"{stack.fake.url}/aibot/response/slow-1"
    )
    body, query = stack.aibot.aibot_body(payload)
    status, text, seconds = await stack.aibot.post_raw(body, query)
    assert status == 200
    assert seconds < 1.6  # the (shortened) deadline is 0.8 s; the handler takes 2 s
    first = stack.aibot.open_aibot_reply(text)["stream"]
    assert first == {"id": stream_id_for("slow-1"), "finish": False, "content": PLACEHOLDER}
    poll = {
        "msgid": "poll-1",
        "msgtype": "stream",
        "stream": {"id": first["id"]},
        "from": {"userid": "zhangsan"},
    }
    status, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(poll))
    assert stack.aibot.open_aibot_reply(text)["stream"]["finish"] is False  # still working
    await stack.idle()
    status, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(poll))
    assert stack.aibot.open_aibot_reply(text)["stream"] == {
        "id": first["id"],
        "finish": True,
        "content": "慢慢的答复",
    }
    # the response URL fallback, due after the grace period, does not send it a second time
    stack.bot.clock.advance(seconds=10)  # type: ignore[attr-defined]
    await stack.deliver()
    assert stack.fake.calls("/aibot/response/slow-1") == []
    assert acted == ["slow-1"]


async def test_a_slow_answer_nobody_polls_goes_out_through_response_url(
    stack: Stack, clock: ManualClock
) -> None:
    url = f"{stack.fake.url}/aibot/response/slow-2"
    body, query = stack.aibot.aibot_body(aibot_text("/slow", msg_id="slow-2", response_url=url))
    status, _, seconds = await stack.aibot.post_raw(body, query)
    assert status == 200 and seconds < 1.6
    await stack.idle()
    await stack.deliver()
    assert stack.fake.calls("/aibot/response/slow-2") == []  # held back for a stream poll
    clock.advance(seconds=6)
    await stack.deliver()
    [posted] = stack.fake.delivered("/aibot/response/slow-2")
    assert posted.body == {"msgtype": "markdown", "markdown": {"content": "慢慢的答复"}}
    # a late poll now learns the answer went out separately instead of repeating it
    poll = {"msgid": "p2", "msgtype": "stream", "stream": {"id": stream_id_for("slow-2")}}
    _, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(poll))
    assert "另行发送" in stack.aibot.open_aibot_reply(text)["stream"]["content"]


async def test_a_slow_app_command_is_acknowledged_then_sent_by_message_send(stack: Stack) -> None:
    body, query = stack.app.app_body(app_text("/slow", user="wangwu", msg_id="9001"))
    status, text, seconds = await stack.app.post_raw(body, query)
    assert (status, text) == (200, "")
    assert seconds < 1.6
    await stack.idle()
    await stack.deliver()
    [sent] = stack.fake.delivered("/cgi-bin/message/send")
    assert sent.body["touser"] == "wangwu"
    assert sent.body["text"]["content"] == "慢慢的答复"
    assert sent.body["agentid"] == 1000002


# -- bad input ----------------------------------------------------------------------------------------


async def test_bad_callbacks_are_rejected_and_never_reach_a_handler(stack: Stack, clock: ManualClock) -> None:
    good_body, good_query = stack.aibot.aibot_body(aibot_text("/ping"))
    cases: list[tuple[str, WeComCallbacks, str | bytes, dict[str, str], int]] = []
    for name, callbacks, (body, query) in (
        ("aibot", stack.aibot, (good_body, good_query)),
        ("app", stack.app, stack.app.app_body(app_text("/ping"))),
    ):
        cases += [
            (f"{name}: forged signature", callbacks, body, {**query, "msg_signature": "f" * 40}, 403),
            (f"{name}: no signature", callbacks, body, {"timestamp": query["timestamp"], "nonce": "1"}, 403),
            (f"{name}: garbage body", callbacks, b"\x00\xffnot json or xml", query, 400),
            (f"{name}: oversize body", callbacks, b"x" * (64 * 1024 + 1), query, 413),
        ]
        stale = str(int(clock.now().timestamp()) - 301)
        cases.append(
            (f"{name}: stale timestamp", callbacks, *_resealed(callbacks, name, timestamp=stale), 403)
        )
        future = str(int(clock.now().timestamp()) + 301)
        cases.append(
            (f"{name}: future timestamp", callbacks, *_resealed(callbacks, name, timestamp=future), 403)
        )
        # bad base64 under a valid signature
        bad = "!!not-base64!!"
        signed_bad = _signed_envelope(callbacks, name, bad)
        cases.append((f"{name}: bad base64", callbacks, *signed_bad, 400))
        cases.append(
            (f"{name}: bad block length", callbacks, *_signed_envelope(callbacks, name, "QUJD"), 400)
        )
    # addressed to another receiver: same token and key, other receive id
    for name, callbacks, receive_id in (("aibot", stack.aibot, "wwsomeothercorp"), ("app", stack.app, "")):
        other = WeComCallbacks(
            stack.http,
            callbacks.url,
            token=AIBOT_TOKEN if name == "aibot" else APP_TOKEN,
            aes_key=AIBOT_AES_KEY if name == "aibot" else APP_AES_KEY,
            receive_id=receive_id,
            clock=clock,
        )
        body, query = (
            other.aibot_body(aibot_text("/ping")) if name == "aibot" else other.app_body(app_text("/ping"))
        )
        cases.append((f"{name}: wrong receiveid", callbacks, body, query, 403))
    # decrypts fine but is not the expected format
    signed = stack.aibot.seal("this is not json")
    cases.append(
        ("aibot: plaintext not JSON", stack.aibot, json.dumps({"encrypt": signed.encrypt}), signed.query, 400)
    )
    signed = stack.app.seal("<xml><unclosed></xml>")
    envelope = f"<xml><Encrypt><![CDATA[{signed.encrypt}]]></Encrypt></xml>"
    cases.append(("app: plaintext not XML", stack.app, envelope, signed.query, 400))
    cases.append(
        (
            "app: DTD",
            stack.app,
            '<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
            good_query,
            400,
        )
    )
    cases.append(("aibot: JSON without encrypt", stack.aibot, json.dumps({"x": 1}), good_query, 400))

    for label, callbacks, body, query, expected in cases:
        status, _, _ = await callbacks.post_raw(body, query)
        assert status == expected, label
    assert acted == []
    assert await _processed(stack.bot) == []


def _resealed(callbacks: WeComCallbacks, name: str, *, timestamp: str) -> tuple[str, dict[str, str]]:
    if name == "aibot":
        return callbacks.aibot_body(aibot_text("/ping"), timestamp=timestamp)
    return callbacks.app_body(app_text("/ping"), timestamp=timestamp)


def _signed_envelope(callbacks: WeComCallbacks, name: str, encrypt: str) -> tuple[str, dict[str, str]]:
    from bot.channels.wecom.crypto import signature

    timestamp, nonce = callbacks.timestamp(), "nonce42"
    token = AIBOT_TOKEN if name == "aibot" else APP_TOKEN
    query = {
        "msg_signature": signature(token, timestamp, nonce, encrypt),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    if name == "aibot":
        return json.dumps({"encrypt": encrypt}), query
    return f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>", query


async def test_nothing_secret_is_logged_at_info(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    secret_text = f"机密内容-{uuid.uuid4().hex}"
    body, query = stack.aibot.aibot_body(aibot_text(f"@助手 {secret_text}"))
    await stack.aibot.post_raw(body, query)
    await stack.aibot.post_raw(body, {**query, "msg_signature": "0" * 40})
    await stack.bot.runtime.outbox.announce("tunnel", "公告：测试")
    stack.fake.expire_tokens()
    await stack.bot.runtime.outbox.notify_user("chenjuejin", "私信：测试")
    await stack.deliver()
    await stack.idle()
    logged = "\n".join(
        r.getMessage() for r in caplog.records if r.name != "aiohttp.access"
    )  # the fake's own log
    tokens = [r.answer["access_token"] for r in stack.fake.calls("/cgi-bin/gettoken") if r.answer]
    assert tokens
    for secret in (
        SECRET,
        APP_TOKEN,
        AIBOT_TOKEN,
        APP_AES_KEY,
        AIBOT_AES_KEY,
        secret_text,
        *tokens,
        "hook-key-tunnel",
    ):
        assert secret not in logged


async def test_a_database_outage_answers_503_and_the_retry_is_acted_on(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("simulated by making the SQLite file unreachable")
    path = Path(database_url.split(":///", 1)[1])

    def no_background_worker(bot: BotApp) -> None:
        _prepare(bot)
        bot.worker = None  # nothing else may hold a connection while the database is away

    async with running_stack(
        lambda base: wecom_settings(database_url, base), clock, tmp_path, prepare=no_background_worker
    ) as stack:
        aibot_call = stack.aibot.aibot_body(aibot_text("/ping", msg_id="outage-1"))
        app_call = stack.app.app_body(app_text("/ping", msg_id="4242"))
        await stack.bot.drain()  # start-up work (re-arming reminders) holds a connection for a moment
        await stack.bot.store.engine.dispose()  # closes (and checkpoints) every connection
        await asyncio.to_thread(_database_away, path)
        try:
            assert (await stack.aibot.post_raw(*aibot_call))[0] == 503
            assert (await stack.app.post_raw(*app_call))[0] == 503
        finally:
            await stack.bot.store.engine.dispose()
            await asyncio.to_thread(_database_back, path)
            # aiosqlite leaves the object of a failed connect unclosed (it warns when collected): collect the
            # ones this outage made here, rather than in whichever test runs next
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
        assert acted == []
        # WeCom retries; the database is back; the message is acted on (once)
        status, text, _ = await stack.aibot.post_raw(*aibot_call)
        assert status == 200
        assert stack.aibot.open_aibot_reply(text)["stream"]["content"] == "pong 1"
        assert (await stack.app.post_raw(*app_call))[0] == 200
        assert acted == ["outage-1", "4242"]


def _database_away(path: Path) -> None:
    path.rename(path.with_suffix(".away"))
    path.mkdir()  # a directory where the database was: connecting fails


def _database_back(path: Path) -> None:
    path.rmdir()
    path.with_suffix(".away").rename(path)


def test_strip_mentions() -> None:
    assert strip_mentions("@联盟助手 /帮助") == "/帮助"
    assert strip_mentions("@联盟助手\u2005/帮助") == "/帮助"
    assert strip_mentions("  @A @B 盾构掘进参数怎么调") == "盾构掘进参数怎么调"
    assert (
        strip_mentions("/活动 添加 讲座 明天下午3点 新技术 @隧道")
        == "/活动 添加 讲座 明天下午3点 新技术 @隧道"
    )
    assert strip_mentions("@联盟助手") == ""
