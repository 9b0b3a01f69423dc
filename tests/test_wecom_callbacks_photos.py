"""Photos on the AI-bot callback channel, over real HTTP with real crypto: ``image`` and ``mixed`` callbacks whose
image URLs point at the fake WeCom, the images encrypted with the callback's EncodingAESKey (path/100719); the
bot downloads them at once, decrypts, checks and stores them content-addressed and attaches them to the asker's
problem exactly as the long connection does. A failed download or bad ciphertext gets a clear Chinese reply,
and a retried callback attaches once."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp
from bot.channels.wecom.aibot import AibotChannel
from bot.core.clock import ManualClock
from bot.core.dispatcher import Context, Router
from bot.routing.text import warm_up
from bot.services.problems import ProblemService
from bot.store.media import PhotoRepo, ProblemPhoto
from tests.fake_wecom import Stack, aibot_images, aibot_text, random_aes_key, running_stack, wecom_settings

ASKER = "foreman1"
GROUP = "wrgroup-tunnel"
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(5000)

slow_router = Router("测试")


@slow_router.command("slowask", summary="测试：很慢地登记问题")
async def handle_slow_ask(ctx: Context) -> str:
    await asyncio.sleep(1.0)
    from bot.handlers.problems import handle_ask

    return await handle_ask(ctx)


def _prepare(bot: BotApp) -> None:
    bot.add_router(slow_router)
    bot.runtime.feature(AibotChannel).reply_wait = 4.0  # the first problem builds the routing index
    bot.runtime.feature(AibotChannel).stream_grace = 60.0


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(
        lambda base: wecom_settings(database_url, base, data_dir=str(tmp_path), semantic_routing=False),
        clock,
        tmp_path,
        prepare=_prepare,
    ) as running:
        # jieba's dictionary and the routing index, loaded before the first message (its answer is timed)
        await asyncio.to_thread(warm_up)
        await running.bot.runtime.feature(ProblemService).index()
        yield running


async def post(stack: Stack, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one callback; the decrypted passive reply."""
    status, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(payload))
    assert status == 200, text
    return stack.aibot.open_aibot_reply(text)


def poll(stream_id: str) -> dict[str, Any]:
    """WeCom's stream refresh callback."""
    return {
        "msgid": f"poll-{os.urandom(4).hex()}",
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"userid": ASKER},
        "msgtype": "stream",
        "stream": {"id": stream_id},
    }


async def answer(stack: Stack, payload: dict[str, Any]) -> str:
    """POST a message and read its answer: the passive reply, or (a slow answer, e.g. while the routing index
    is first built on a loaded machine) the finished stream WeCom's next poll collects."""
    reply = await post(stack, payload)
    if reply.get("msgtype") == "stream" and not reply["stream"]["finish"]:
        await stack.idle()
        reply = await post(stack, poll(reply["stream"]["id"]))
    return shown(reply)


def shown(reply: dict[str, Any]) -> str:
    """What the user reads: the stream's content, or a card's text."""
    if reply.get("msgtype") == "template_card":
        return str(reply["template_card"]["sub_title_text"])
    return str(reply["stream"]["content"])


async def photos_of(stack: Stack, problem_id: int) -> list[ProblemPhoto]:
    return await PhotoRepo(stack.bot.store.sessions).of_problem(problem_id)


async def test_a_photo_after_a_problem_is_downloaded_decrypted_stored_and_attached_once(
    stack: Stack, tmp_path: Path
) -> None:
    logged = await answer(stack, aibot_text(SHIELD, user=ASKER, chat_id=None))
    assert logged.startswith("已登记技术问题 #1"), logged
    url = stack.fake.add_media(PNG)
    photo = aibot_images([url], user=ASKER, msg_id="img-1")  # a 1:1 image message, right after the problem
    reply = await post(stack, photo)
    assert "已把 1 张照片附到问题 #1" in shown(reply) and reply["stream"]["finish"] is True
    (stored,) = await photos_of(stack, 1)
    assert stored.sha256 == hashlib.sha256(PNG).hexdigest() and stored.mime == "image/png"
    assert stored.msg_key == "aibot:img-1#1"
    path = tmp_path / "media" / stored.sha256[:2] / f"{stored.sha256}.png"
    assert path.read_bytes() == PNG  # decrypted with the EncodingAESKey, byte for byte
    # WeCom retries the callback (same msgid): downloaded again, attached once
    again = await post(stack, photo)
    assert "问题 #1" in shown(again) and "共 1 张" in shown(again)
    assert len(await photos_of(stack, 1)) == 1 and stack.fake.media_fetches == 2
    details = shown(await post(stack, aibot_text("/问题详情 1", user=ASKER, chat_id=None)))
    assert "照片：1 张" in details and stored.sha256[:12] in details


async def test_a_mixed_message_is_the_problem_and_its_photos_attach_to_it(stack: Stack) -> None:
    urls = [stack.fake.add_media(JPEG), stack.fake.add_media(PNG)]
    payload = aibot_images(urls, f"@联盟助手\u2005{SHIELD}", user=ASKER, chat_id=GROUP, msg_id="mixed-1")
    text = await answer(stack, payload)
    assert text.startswith("已登记技术问题 #1") and "已把 2 张照片附到问题 #1（共 2 张" in text
    photos = await photos_of(stack, 1)
    assert [p.mime for p in photos] == ["image/jpeg", "image/png"]
    assert [p.chat_id for p in photos] == [GROUP, GROUP] and {p.user_id for p in photos} == {ASKER}
    # the retried callback is answered from the record and attaches nothing more
    assert "问题 #1" in shown(await post(stack, payload))
    assert len(await photos_of(stack, 1)) == 2
    # another asker's photo in the same group does not join it
    other = aibot_images([stack.fake.add_media(PNG)], "@联盟助手 补一张", user="someone", chat_id=GROUP)
    assert "请先用文字描述问题" in shown(await post(stack, other))
    assert len(await photos_of(stack, 1)) == 2


async def test_failed_downloads_and_bad_ciphertext_get_a_clear_answer(stack: Stack) -> None:
    alone = await post(stack, aibot_images([stack.fake.add_media(PNG)], user=ASKER))
    assert "请先用文字描述问题" in shown(alone)  # no problem of this asker in this chat yet: nothing kept
    assert (await answer(stack, aibot_text(SHIELD, user=ASKER, chat_id=None))).startswith("已登记技术问题 #1")
    expired = f"{stack.fake.url}/media/gone"  # the URL has expired: 404
    assert "1 张照片未能保存" in shown(await post(stack, aibot_images([expired], user=ASKER)))
    wrong_key = stack.fake.add_media(PNG, aes_key=random_aes_key())  # not our key: bad padding
    assert "未能保存" in shown(await post(stack, aibot_images([wrong_key], user=ASKER)))
    not_image = stack.fake.add_media(b"%PDF-1.7 not an image" + os.urandom(100))
    assert "未能保存" in shown(await post(stack, aibot_images([not_image], user=ASKER)))
    # one good and one bad image in a mixed message: the good one is kept, the other named
    mixed = aibot_images([stack.fake.add_media(JPEG), expired], "现场照片", user=ASKER)
    text = shown(await post(stack, mixed))
    assert "已把 1 张照片附到问题 #1" in text and "另有 1 张照片未能保存" in text
    assert len(await photos_of(stack, 1)) == 1


async def test_a_slow_download_is_cut_off_within_the_callbacks_deadline(stack: Stack) -> None:
    assert (await answer(stack, aibot_text(SHIELD, user=ASKER, chat_id=None))).startswith("已登记技术问题 #1")
    channel = stack.bot.runtime.feature(AibotChannel)
    channel.fetch_wait = 0.3
    url = stack.fake.add_media(PNG)
    stack.fake.slow_next(3.0, path=url.removeprefix(stack.fake.url))
    status, text, seconds = await stack.aibot.post_raw(*stack.aibot.aibot_body(aibot_images([url], user=ASKER)))
    assert status == 200 and seconds < 2.0
    assert "未能保存" in shown(stack.aibot.open_aibot_reply(text))
    assert await photos_of(stack, 1) == []


async def test_a_slow_answer_to_a_mixed_message_carries_the_photo_note_in_its_stream(stack: Stack) -> None:
    url = stack.fake.add_media(PNG)
    payload = aibot_images([url], f"/slowask {SHIELD}", user=ASKER, chat_id=GROUP, msg_id="mixed-slow")
    stack.bot.runtime.feature(AibotChannel).reply_wait = 0.3
    first = await post(stack, payload)
    assert first["stream"]["finish"] is False  # answered "later": WeCom polls the stream
    await stack.idle()
    collected = await post(stack, poll(first["stream"]["id"]))
    final = collected["stream"]
    assert final["finish"] is True and final["content"].startswith("已登记技术问题 #1")
    assert "已把 1 张照片附到问题 #1" in final["content"]
    # the late answer offers /认领 1: its buttons come in a card under the stream
    assert collected["msgtype"] == "stream_with_template_card"
    assert collected["template_card"]["button_list"][0]["key"] == "problem:claim:1"
    assert len(await photos_of(stack, 1)) == 1
