"""Photos over the long connection: images are fetched from the fake at once, decrypted with the message's own
key, checked, stored content-addressed under the data directory and attached to the asker's problem (the one
the same message logged, or the asker's latest in the same chat); ``/问题详情`` lists them."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.app import BotApp
from bot.channels.wecom.aibot import stream_id_for
from bot.channels.wecom.media import MediaError, decrypt
from bot.store.media import PhotoRepo, sniff_image
from tests.fake_wecom_ws import image_message, mixed_message
from tests.test_longconn import ASKER, GROUP, SHIELD, WsStack, online, push_texts, ws_stack

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(5000)


async def answer_to(stack: WsStack, body: dict[str, Any]) -> str:
    await stack.fake.deliver(body)
    stream_id = stream_id_for(body["msgid"])
    stream = await stack.fake.wait_for(
        lambda: (s := stack.fake.streams.get(stream_id)) and s.get("finish") and s, what="the answer"
    )
    return str(stream["content"])


async def photos_of(stack: WsStack, problem_id: int) -> list[Any]:
    return await PhotoRepo(stack.bot.store.sessions).of_problem(problem_id)


async def test_a_photo_after_a_problem_is_decrypted_stored_and_attached(
    database_url: str, tmp_path: Path
) -> None:
    async with ws_stack(database_url, data_dir=str(tmp_path)) as stack:
        await online(stack)
        assert (await stack.ask(SHIELD, user=ASKER)).startswith("已登记技术问题 #1")
        url, key = stack.fake.add_media(PNG)
        body = image_message(url, key, user=ASKER, chat_id=GROUP, msg_id="img-1")
        assert "已把 1 张照片附到问题 #1" in await answer_to(stack, body)
        (photo,) = await photos_of(stack, 1)
        assert photo.sha256 == hashlib.sha256(PNG).hexdigest() and photo.mime == "image/png"
        stored = tmp_path / "media" / photo.sha256[:2] / f"{photo.sha256}.png"
        assert stored.read_bytes() == PNG  # decrypted with the message's key, byte for byte
        # the same message delivered again attaches nothing more
        await stack.fake.deliver(image_message(url, key, user=ASKER, chat_id=GROUP, msg_id="img-1"))
        await stack.channel.idle()
        assert len(await photos_of(stack, 1)) == 1
        details = await stack.ask("/问题详情 1", user=ASKER)
        assert "照片：1 张" in details and photo.sha256[:12] in details


async def test_a_mixed_message_logs_the_problem_with_its_photos(database_url: str, tmp_path: Path) -> None:
    async with ws_stack(database_url, data_dir=str(tmp_path)) as stack:
        await online(stack)
        images = [stack.fake.add_media(JPEG), stack.fake.add_media(PNG)]
        reply = await answer_to(
            stack, mixed_message(f"@联盟助手 {SHIELD}", images, user=ASKER, chat_id=GROUP)
        )
        assert reply.startswith("已登记技术问题 #1")
        # with the answer, or (a slow answer) right after it
        note = "已把 2 张照片附到问题 #1"
        if note not in reply:
            await stack.fake.wait_for(
                lambda: any(note in t for t in push_texts(stack.fake, GROUP)), what="the note"
            )
        assert sorted(p.mime for p in await photos_of(stack, 1)) == ["image/jpeg", "image/png"]
        assert stack.fake.media_fetches == 2


async def test_what_is_not_a_photo_of_a_problem_gets_a_helpful_answer(
    database_url: str, tmp_path: Path
) -> None:
    async with ws_stack(database_url, data_dir=str(tmp_path)) as stack:
        await online(stack)
        url, key = stack.fake.add_media(PNG)
        alone = await answer_to(stack, image_message(url, key, user=ASKER, chat_id=GROUP))
        assert "请先用文字描述问题" in alone  # no problem of this asker in this chat yet
        assert (await stack.ask(SHIELD, user=ASKER)).startswith("已登记技术问题 #1")
        url, key = stack.fake.add_media(b"%PDF-1.7 not an image" + os.urandom(100))
        refused = await answer_to(stack, image_message(url, key, user=ASKER, chat_id=GROUP))
        assert "未能保存" in refused
        url, _ = stack.fake.add_media(PNG)
        wrong_key = base64.b64encode(os.urandom(32)).decode()
        assert "未能保存" in await answer_to(stack, image_message(url, wrong_key, user=ASKER, chat_id=GROUP))
        # another chat's photo does not join this asker's problem
        url, key = stack.fake.add_media(PNG)
        elsewhere = await answer_to(stack, image_message(url, key, user=ASKER, chat_id="wr-other-group"))
        assert "请先用文字描述问题" in elsewhere
        assert await photos_of(stack, 1) == []


def test_decryption_checks_key_and_padding() -> None:
    key = os.urandom(32)
    with pytest.raises(MediaError):
        decrypt(os.urandom(64), base64.b64encode(key).decode())
    with pytest.raises(MediaError):
        decrypt(b"short", base64.b64encode(key).decode())
    with pytest.raises(MediaError):
        decrypt(os.urandom(64), "not base64!")
    assert sniff_image(PNG) == "image/png" and sniff_image(JPEG) == "image/jpeg"
    assert sniff_image(b"GIF89a....") == "image/gif" and sniff_image(b"<svg>") is None


TABLES = ("problem_photo", "problem_feedback")


def _differences(connection: Connection) -> list[Any]:
    ours = MetaData()
    for name in TABLES:
        SQLModel.metadata.tables[name].to_metadata(ours)

    def include(obj: Any, name: str | None, kind: str, _reflected: bool, _other: Any) -> bool:
        table = name if kind == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in TABLES

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
    return list(compare_metadata(context, ours))


async def test_the_photo_and_feedback_migrations_match_the_models(bot: BotApp) -> None:
    async with bot.store.engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_a_slow_answer_to_a_mixed_message_is_followed_by_the_photo_note(
    database_url: str, tmp_path: Path
) -> None:
    async with ws_stack(database_url, data_dir=str(tmp_path)) as stack:
        await online(stack)
        stack.channel.reply_wait = 0.001  # every answer is "later": placeholder, then the final frame
        images = [stack.fake.add_media(PNG)]
        reply = await answer_to(stack, mixed_message(SHIELD, images, user=ASKER, chat_id=GROUP))
        assert reply.startswith("已登记技术问题 #1")
        await stack.fake.wait_for(
            lambda: any("已把 1 张照片附到问题 #1" in t for t in push_texts(stack.fake, GROUP)),
            what="the note",
        )
        assert len(await photos_of(stack, 1)) == 1
