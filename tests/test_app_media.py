"""Photos through the self-built app: an ``image`` callback (real WeChat crypto, real HTTP) is downloaded at once
through ``media/get`` from the fake, checked, stored content-addressed and attached to the asker's problem like
a long-connection photo; failures get a clear Chinese reply, a retried callback attaches once."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.app import BotApp
from bot.channels.wecom.agent import AppChannel
from bot.channels.wecom.media import MAX_IMAGE_BYTES
from bot.core.clock import ManualClock
from bot.store.media import PhotoRepo
from tests.fake_wecom import Stack, app_image, app_text, running_stack, wecom_settings
from tests.test_console import login_path

ASKER = "foreman1"
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(5000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)


def _prepare(bot: BotApp) -> None:
    bot.runtime.feature(AppChannel).reply_wait = 2.0


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(
        lambda base: wecom_settings(database_url, base, data_dir=str(tmp_path / "data"), semantic_routing=False),
        clock,
        tmp_path,
        prepare=_prepare,
    ) as running:
        yield running


async def say(stack: Stack, xml: str) -> tuple[int, str]:
    """POST an app callback; the status and the decrypted passive reply's text ("" for an empty answer)."""
    body, query = stack.app.app_body(xml)
    status, text, _ = await stack.app.post_raw(body, query)
    if status != 200 or not text:
        return status, ""
    return status, stack.app.open_app_reply(text)["Content"]


async def ask_problem(stack: Stack) -> None:
    status, reply = await say(stack, app_text(SHIELD, user=ASKER))
    if status == 200 and not reply:  # a slow first answer (the routing index warming up) comes by message
        await stack.idle()
        await stack.deliver()
        reply = next(
            r.body["text"]["content"]
            for r in stack.fake.delivered("/cgi-bin/message/send")
            if r.body["touser"] == ASKER
        )
    assert status == 200 and reply.startswith("已登记技术问题 #1"), reply


async def test_an_app_photo_after_a_problem_is_downloaded_stored_and_attached_once(
    stack: Stack, tmp_path: Path
) -> None:
    await ask_problem(stack)
    media_id = stack.fake.add_app_media(JPEG)
    status, reply = await say(stack, app_image(media_id, user=ASKER, msg_id="5001"))
    assert status == 200 and "已把 1 张照片附到问题 #1" in reply, reply
    (get,) = stack.fake.calls("/cgi-bin/media/get")
    assert get.query["media_id"] == media_id and get.query["access_token"].startswith("token-")
    (photo,) = await PhotoRepo(stack.bot.store.sessions).of_problem(1)
    assert photo.sha256 == hashlib.sha256(JPEG).hexdigest() and photo.mime == "image/jpeg"
    assert photo.user_id == ASKER and photo.msg_key == "app:5001#1"
    stored = tmp_path / "data" / "media" / photo.sha256[:2] / f"{photo.sha256}.jpg"
    assert stored.read_bytes() == JPEG
    # WeCom retries the same callback: nothing attached twice, nothing downloaded again
    status, again = await say(stack, app_image(media_id, user=ASKER, msg_id="5001"))
    assert status == 200 and "已附到问题 #1" in again
    assert len(await PhotoRepo(stack.bot.store.sessions).of_problem(1)) == 1
    assert len(stack.fake.calls("/cgi-bin/media/get")) == 1
    # a second photo joins the same problem; /问题详情 lists both
    status, second = await say(stack, app_image(stack.fake.add_app_media(PNG), user=ASKER, msg_id="5002"))
    assert "共 2 张" in second
    _, details = await say(stack, app_text("/问题详情 1", user=ASKER))
    assert "照片：2 张" in details and photo.sha256[:12] in details
    # and the console shows them, served from the store
    _, link = await say(stack, app_text("/后台", user=ASKER))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        base = str(stack.server.make_url("")).rstrip("/")
        async with browser.get(base + login_path(link), allow_redirects=False) as response:
            assert response.status == 302
        async with browser.get(f"{base}/console/problems/1") as response:
            page = await response.text()
        assert "照片（2 张）" in page
        async with browser.get(f"{base}/console/problems/1/photos/{photo.id}") as response:
            assert response.status == 200 and await response.read() == JPEG


@pytest.mark.parametrize(
    ("serve", "why"),
    [
        ("unknown", "企业微信返回错误 40007，可能已过期"),
        ("oversized", "超过 10 MB"),
        ("not-an-image", "不是 JPEG、PNG、GIF 或 WebP 图片"),
        ("http-500", "暂时无法从企业微信下载"),
    ],
)
async def test_a_photo_that_cannot_be_kept_gets_a_clear_answer(stack: Stack, serve: str, why: str) -> None:
    await ask_problem(stack)
    if serve == "unknown":
        media_id = "no-such-media"
    elif serve == "oversized":
        media_id = stack.fake.add_app_media(b"\xff\xd8\xff\xe0" + b"\0" * MAX_IMAGE_BYTES)
    elif serve == "not-an-image":
        media_id = stack.fake.add_app_media(b"%PDF-1.7 not a photo", "image/jpeg")
    else:
        media_id = stack.fake.add_app_media(JPEG)
        stack.fake.fail_next(status=500, path="/cgi-bin/media/get")
    status, reply = await say(stack, app_image(media_id, user=ASKER))
    assert status == 200
    assert reply == f"1 张照片未能保存（{why}），请重新发送。", reply
    assert await PhotoRepo(stack.bot.store.sessions).of_problem(1) == []


async def test_a_photo_without_a_problem_asks_for_the_text_first(stack: Stack) -> None:
    status, reply = await say(stack, app_image(stack.fake.add_app_media(JPEG), user=ASKER))
    assert status == 200 and reply.startswith("收到照片。请先用文字描述问题")


async def test_an_expired_token_is_refreshed_once_for_the_download(stack: Stack) -> None:
    await ask_problem(stack)
    await say(stack, app_image(stack.fake.add_app_media(JPEG), user=ASKER))
    stack.fake.expire_tokens()
    fetched = stack.fake.token_fetches
    _, reply = await say(stack, app_image(stack.fake.add_app_media(PNG), user=ASKER))
    assert "共 2 张" in reply
    assert stack.fake.token_fetches == fetched + 1


async def test_a_slow_download_is_acknowledged_at_once_and_answered_by_message(stack: Stack) -> None:
    await ask_problem(stack)
    media_id = stack.fake.add_app_media(JPEG)
    stack.fake.slow_next(3.0, path="/cgi-bin/media/get")
    body, query = stack.app.app_body(app_image(media_id, user=ASKER, msg_id="6001"))
    status, text, seconds = await stack.app.post_raw(body, query)
    assert status == 200 and text == "" and seconds < 2.8
    await stack.idle()
    await stack.deliver()
    notes = [r.body for r in stack.fake.delivered("/cgi-bin/message/send") if r.body["touser"] == ASKER]
    assert any("已把 1 张照片附到问题 #1" in n["text"]["content"] for n in notes), notes
    assert len(await PhotoRepo(stack.bot.store.sessions).of_problem(1)) == 1
