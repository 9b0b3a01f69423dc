"""The WeCom contracts not covered elsewhere: which channels are mounted and reported live, app and AI-bot
events, edge cases of bad input, the constant-time signature check, and secrets kept out of INFO logs."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot.app import BotApp, build_web_app
from bot.channels.wecom import crypto as crypto_module
from bot.channels.wecom.agent import UNSUPPORTED as APP_UNSUPPORTED
from bot.channels.wecom.aibot import UNSUPPORTED as AIBOT_UNSUPPORTED
from bot.channels.wecom.aibot import WELCOME as AIBOT_WELCOME
from bot.core.clock import ManualClock
from bot.store.dedupe import ProcessedMessage
from tests.fake_wecom import (
    AGENT_ID,
    AIBOT_AES_KEY,
    AIBOT_TOKEN,
    APP_AES_KEY,
    APP_TOKEN,
    CORP_ID,
    SECRET,
    Stack,
    WeComCallbacks,
    aibot_text,
    app_text,
    running_stack,
    wecom_settings,
)
from tests.test_server import free_port


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(lambda base: wecom_settings(database_url, base), clock, tmp_path) as running:
        yield running


async def _processed(bot: BotApp) -> list[str]:
    async with bot.store.sessions() as session:
        return sorted((await session.exec(select(ProcessedMessage.key))).all())


# -- which channels are mounted ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("only", "mounted", "live"),
    [
        (
            {"wecom_aibot_token": AIBOT_TOKEN, "wecom_aibot_aes_key": AIBOT_AES_KEY},
            {"/wecom/aibot"},
            ["aibot", "webhook"],
        ),
        (
            {"wecom_corp_id": CORP_ID, "wecom_app_token": APP_TOKEN, "wecom_app_aes_key": APP_AES_KEY},
            {"/wecom/app"},
            ["app", "webhook"],
        ),
        (
            {"wecom_corp_id": CORP_ID, "wecom_secret": SECRET, "wecom_agent_id": AGENT_ID},
            set(),
            ["message/send", "appchat/send", "webhook"],
        ),
        ({}, set(), []),
    ],
    ids=["aibot only", "app only", "api only", "nothing"],
)
async def test_a_channel_without_its_settings_is_not_mounted(
    only: dict[str, str], mounted: set[str], live: list[str], database_url: str, clock: ManualClock
) -> None:
    from bot.settings import Settings

    bot = await BotApp.create(Settings(database_url=database_url, **only), clock=clock)
    server = TestServer(build_web_app(bot), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        assert bot.live_channels == live
        async with aiohttp.ClientSession() as http:
            for path in ("/wecom/aibot", "/wecom/app"):
                async with http.post(server.make_url(path), data=b"{}") as response:
                    # mounted: the unsigned request is refused; not mounted: there is nothing there
                    assert response.status == (403 if path in mounted else 404), path
            async with http.get(server.make_url("/healthz")) as response:
                assert (await response.json())["channels"] == live
    finally:
        await server.close()


async def _serve(tmp_path: Path, database_url: str, **variables: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") or k.startswith("BOT_TEST_")}
    env.update(BOT_PORT=str(free_port()), BOT_DATABASE_URL=database_url, **variables)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_serve_says_which_channels_are_live(tmp_path: Path, database_url: str) -> None:
    process = await _serve(
        tmp_path,
        database_url,
        BOT_WECOM_CORP_ID=CORP_ID,
        BOT_WECOM_AGENT_ID=AGENT_ID,
        BOT_WECOM_SECRET=SECRET,
        BOT_WECOM_APP_TOKEN=APP_TOKEN,
        BOT_WECOM_APP_AES_KEY=APP_AES_KEY,
        BOT_WECOM_AIBOT_TOKEN=AIBOT_TOKEN,
        BOT_WECOM_AIBOT_AES_KEY=AIBOT_AES_KEY,
        BOT_WECOM_API_BASE="http://127.0.0.1:9",  # never called: nothing is sent
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        assert "live channels: aibot、app、message/send、appchat/send、webhook" in banner
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    for secret in (SECRET, APP_TOKEN, APP_AES_KEY, AIBOT_TOKEN, AIBOT_AES_KEY):
        assert secret not in banner and secret not in stderr.decode()


async def test_serve_refuses_a_malformed_aes_key_by_name(tmp_path: Path, database_url: str) -> None:
    process = await _serve(
        tmp_path, database_url, BOT_WECOM_AIBOT_TOKEN=AIBOT_TOKEN, BOT_WECOM_AIBOT_AES_KEY="too-short"
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "BOT_WECOM_AIBOT_AES_KEY" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert b"serving" not in stdout


# -- app events and non-text messages ------------------------------------------------------------------


def _app_event(event: str, *, user: str = "lisi", create_time: int = 1_700_000_100, key: str = "") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
        f"<AgentID>{AGENT_ID}</AgentID></xml>"
    )


async def test_app_events_are_answered_once_and_unknown_ones_ignored(stack: Stack) -> None:
    # following the app greets with the help text; WeCom's retry of the event is not acted on again
    subscribe = _app_event("subscribe", create_time=1_700_000_100)
    status, text, _ = await stack.app.post_raw(*stack.app.app_body(subscribe))
    assert status == 200
    reply = stack.app.open_app_reply(text)
    assert reply["ToUserName"] == "lisi" and "/帮助" in reply["Content"]
    status, _, _ = await stack.app.post_raw(*stack.app.app_body(subscribe))
    assert status == 200
    assert await _processed(stack.bot) == ["app:lisi:1700000100:subscribe"]
    # a menu button whose key is a command runs it
    status, text, _ = await stack.app.post_raw(
        *stack.app.app_body(_app_event("click", key="/帮助", create_time=1_700_000_200))
    )
    assert "/帮助" in stack.app.open_app_reply(text)["Content"]
    # an event the bot does not act on: an empty answer (no passive reply), nothing recorded
    for event in (_app_event("enter_agent", create_time=1_700_000_300), _app_event("click", key="menu-1")):
        status, text, _ = await stack.app.post_raw(*stack.app.app_body(event))
        assert (status, text) == (200, "")
    assert len(await _processed(stack.bot)) == 2
    # a picture with no problem of its sender to join: the user is told to describe the problem first
    media_id = stack.fake.add_app_media(b"\xff\xd8\xff\xe0" + b"photo" * 100)
    image = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName>"
        "<CreateTime>1700000400</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        "<PicUrl><![CDATA[http://example.invalid/p.jpg]]></PicUrl>"
        f"<MediaId><![CDATA[{media_id}]]></MediaId><MsgId>990001</MsgId></xml>"
    )
    _, text, _ = await stack.app.post_raw(*stack.app.app_body(image))
    assert stack.app.open_app_reply(text)["Content"].startswith("收到照片。请先用文字描述问题")
    # what the app still cannot read (a file): the user is told to write instead
    file = image.replace("<![CDATA[image]]>", "<![CDATA[file]]>").replace("990001", "990002")
    _, text, _ = await stack.app.post_raw(*stack.app.app_body(file))
    assert stack.app.open_app_reply(text)["Content"] == APP_UNSUPPORTED


async def test_aibot_events_single_chats_and_non_text_messages(stack: Stack) -> None:
    enter = {
        "msgid": "ev-1",
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"userid": "lisi"},
        "msgtype": "event",
        "event": {"eventtype": "enter_chat"},
    }
    _, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(enter))
    assert stack.aibot.open_aibot_reply(text) == {"msgtype": "text", "text": {"content": AIBOT_WELCOME}}
    # a 1:1 message needs no @mention
    _, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(aibot_text("/帮助", chat_id=None)))
    stream = stack.aibot.open_aibot_reply(text)["stream"]
    assert stream["finish"] is True and "工作室联盟助手" in stream["content"]
    # an image (its URL expired): answered at once that it could not be kept; no handler runs
    image = {
        "msgid": "img-1",
        "aibotid": "AIBOTID",
        "chattype": "group",
        "chatid": "wrgroup-tunnel",
        "from": {"userid": "lisi"},
        "msgtype": "image",
        "image": {"url": f"{stack.fake.url}/media/expired"},
    }
    _, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(image))
    assert "照片未能保存" in stack.aibot.open_aibot_reply(text)["stream"]["content"]
    # a message the bot cannot read at all (a file) is answered that only text is understood
    file = {**image, "msgid": "file-1", "msgtype": "file", "file": {"url": f"{stack.fake.url}/media/f"}}
    del file["image"]
    _, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(file))
    assert stack.aibot.open_aibot_reply(text)["stream"]["content"] == AIBOT_UNSUPPORTED
    # a mixed message (text and picture): its text parts are the message
    mixed = {
        "msgid": "mixed-1",
        "aibotid": "AIBOTID",
        "chattype": "group",
        "chatid": "wrgroup-tunnel",
        "from": {"userid": "lisi"},
        "msgtype": "mixed",
        "mixed": {
            "msg_item": [
                {"msgtype": "text", "text": {"content": "@联盟助手 /帮助"}},
                {"msgtype": "image", "image": {"url": f"{stack.fake.url}/media/expired"}},
            ]
        },
    }
    _, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(mixed))
    assert "工作室联盟助手" in stack.aibot.open_aibot_reply(text)["stream"]["content"]
    assert "aibot:mixed-1" in await _processed(stack.bot)
    assert "aibot:img-1" not in await _processed(stack.bot)


# -- bad input: the cases test_wecom_callbacks does not reach -----------------------------------------


async def _chunks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_an_oversize_body_without_content_length_is_413(stack: Stack) -> None:
    body, query = stack.aibot.aibot_body(aibot_text("/帮助 " + "很长" * 40_000))
    assert len(body) > 64 * 1024
    for url in (stack.aibot.url, stack.app.url):
        async with stack.http.post(url, params=query, data=_chunks(body.encode())) as response:
            assert response.status == 413, url
    assert await _processed(stack.bot) == []


async def test_url_verification_rejects_bad_input(stack: Stack, clock: ManualClock) -> None:
    for callbacks in (stack.aibot, stack.app):
        signed = callbacks.seal("echo-ok")
        # stale
        stale = callbacks.seal("echo", timestamp=str(int(clock.now().timestamp()) - 3600))
        async with stack.http.get(
            callbacks.url, params={**stale.query, "echostr": stale.encrypt}
        ) as response:
            assert response.status == 403
        # no echostr
        async with stack.http.get(callbacks.url, params=signed.query) as response:
            assert response.status == 400
        # signed but not base64 / not a whole number of AES blocks
        for garbage in ("%%%not-base64%%%", "QUJD"):
            query = _signed_query(callbacks, garbage)
            async with stack.http.get(callbacks.url, params={**query, "echostr": garbage}) as response:
                assert response.status == 400, garbage
        # timestamp that is not a number
        async with stack.http.get(
            callbacks.url, params={**signed.query, "timestamp": "yesterday", "echostr": signed.encrypt}
        ) as response:
            assert response.status == 403


def _signed_query(callbacks: WeComCallbacks, encrypt: str) -> dict[str, str]:
    token = AIBOT_TOKEN if callbacks.url.endswith("/aibot") else APP_TOKEN
    timestamp, nonce = callbacks.timestamp(), "n0nce"
    return {
        "msg_signature": crypto_module.signature(token, timestamp, nonce, encrypt),
        "timestamp": timestamp,
        "nonce": nonce,
    }


async def test_non_object_json_and_a_wrong_method_never_500(stack: Stack) -> None:
    _, query = stack.aibot.aibot_body(aibot_text("/帮助"))
    for body in ("[1, 2]", '"encrypt"', "null", '{"encrypt": 5}', '{"encrypt": ""}', "\udcff"):
        status, _, _ = await stack.aibot.post_raw(body.encode("utf-8", "surrogateescape"), query)
        assert status == 400, body
    _, query = stack.app.app_body("<xml/>")
    for body in ("<xml><Encrypt></Encrypt></xml>", "<a><b></a>", ""):
        status, _, _ = await stack.app.post_raw(body, query)
        assert status == 400, body
    async with stack.http.put(stack.aibot.url, data=b"{}") as response:
        assert response.status == 405


# -- constant-time signature check --------------------------------------------------------------------


async def test_signatures_are_compared_in_constant_time(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every signature check goes through ``hmac.compare_digest``, with the expected and the sent value."""
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording_compare_digest(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(crypto_module.hmac, "compare_digest", recording_compare_digest)
    for callbacks, body_query in (
        (stack.aibot, stack.aibot.aibot_body(aibot_text("/帮助"))),
        (stack.app, stack.app.app_body("<xml/>")),
    ):
        body, query = body_query
        forged = "0123456789abcdef0123456789abcdef01234567"
        compared.clear()
        status, _, _ = await callbacks.post_raw(body, {**query, "msg_signature": forged})
        assert status == 403
        assert forged.encode() in [b for _, b in compared], "the forged signature was not compared"
        signed = callbacks.seal("echo")
        compared.clear()
        async with stack.http.get(
            callbacks.url, params={**signed.query, "msg_signature": forged, "echostr": signed.encrypt}
        ) as response:
            assert response.status == 403
        assert forged.encode() in [b for _, b in compared]
        compared.clear()
        assert (await callbacks.verify_url("echo-ct")).status == 200
        assert any(a == b for a, b in compared)  # the good signature passed through the same compare


# -- secrets ----------------------------------------------------------------------------------------------


async def test_app_callbacks_and_url_verification_log_nothing_secret(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret_text = f"机密-{uuid.uuid4().hex}"
    echo = f"echo-{uuid.uuid4().hex}"
    await stack.app.post_raw(*stack.app.app_body(app_text(f"/帮助 {secret_text}")))
    await stack.app.post_raw(*stack.app.app_body(app_text(secret_text)))
    body, query = stack.app.app_body(app_text(secret_text))
    await stack.app.post_raw(body, {**query, "msg_signature": "0" * 40})
    for callbacks in (stack.aibot, stack.app):
        assert (await callbacks.verify_url(echo)).status == 200
    url = f"{stack.fake.url}/aibot/response/{uuid.uuid4().hex}"
    await stack.aibot.post_raw(*stack.aibot.aibot_body(aibot_text(secret_text, response_url=url)))
    await stack.idle()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    for secret in (secret_text, echo, APP_TOKEN, APP_AES_KEY, AIBOT_TOKEN, AIBOT_AES_KEY, SECRET, url):
        assert secret not in logged
    assert "URL verified" in logged  # the log is not simply empty
