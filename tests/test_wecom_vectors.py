"""The official crypto vectors (../shared/samples/wecom_vectors.json) verify and decrypt through our endpoints.

Their timestamps are from 2014, so the age check is off (``BOT_CALLBACK_MAX_AGE=0``) — with the default it
rejects them. The AI bot's receive id is empty, so the same vectors sent to ``/wecom/aibot`` are refused.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from sqlmodel import select
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.core.clock import ManualClock
from bot.store.dedupe import ProcessedMessage
from tests.fake_wecom import Stack, running_stack, wecom_settings
from tests.harness import SHARED

VECTORS: list[dict[str, Any]] = json.loads(
    (SHARED / "samples" / "wecom_vectors.json").read_text(encoding="utf-8")
)
ECHO = next(v for v in VECTORS if v["kind"] == "wecom_echostr")
POSTS = [v for v in VECTORS if v["kind"] in ("wecom_post_xml", "mp_post_xml")]


def _query(vector: dict[str, Any]) -> dict[str, str]:
    return {
        "msg_signature": vector["msg_signature"],
        "timestamp": vector["timestamp"],
        "nonce": vector["nonce"],
    }


@asynccontextmanager
async def _stack_for(
    vector: dict[str, Any], database_url: str, clock: ManualClock, tmp_path: Path, *, max_age: int = 0
) -> AsyncIterator[Stack]:
    def settings(base: str) -> Any:
        return wecom_settings(
            database_url,
            base,
            wecom_corp_id=vector["corp_or_app_id"],
            wecom_app_token=vector["token"],
            wecom_app_aes_key=vector["encoding_aes_key"],
            wecom_aibot_token=vector["token"],
            wecom_aibot_aes_key=vector["encoding_aes_key"],
            callback_max_age=max_age,
        )

    async with running_stack(settings, clock, tmp_path) as stack:
        yield stack


async def test_url_verification_vector(database_url: str, clock: ManualClock, tmp_path: Path) -> None:
    async with _stack_for(ECHO, database_url, clock, tmp_path) as stack:
        params = {**_query(ECHO), "echostr": ECHO["echostr_or_encrypted"]}
        async with stack.http.get(stack.app.url, params=params) as response:
            assert response.status == 200
            assert await response.text() == ECHO["expected_plaintext"]
        async with stack.http.get(stack.aibot.url, params=params) as response:
            assert response.status == 403  # addressed to a corp, not to the AI bot


@pytest.mark.parametrize("vector", POSTS, ids=[v["name"] for v in POSTS])
async def test_message_vectors_decrypt_and_are_answered(
    vector: dict[str, Any], database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    expected = xmltodict.parse(vector["expected_plaintext"])["xml"]
    async with _stack_for(vector, database_url, clock, tmp_path) as stack:
        status, text, _ = await stack.app.post_raw(vector["echostr_or_encrypted"], _query(vector))
        assert status == 200, text
        # the bot acted on the decrypted message, once …
        await stack.bot.store.dedupe.flush()
        async with stack.bot.store.sessions() as session:
            rows = list((await session.exec(select(ProcessedMessage))).all())
        assert [row.key for row in rows] == [f"app:{expected['MsgId']}"]
        # … and its passive reply decrypts with the vector's key and receive id
        crypto = WeChatCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_or_app_id"])
        outer = xmltodict.parse(text)["xml"]
        reply = xmltodict.parse(
            crypto.decrypt_message(text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
        )["xml"]
        assert reply["ToUserName"] == expected["FromUserName"]
        assert reply["MsgType"] == "text"
        # what free text is answered with belongs to other features; here: the passive reply is that answer
        assert reply["Content"] and reply["Content"] == rows[0].reply
        # the AI bot endpoint refuses it: wrong receive id
        status, _, _ = await stack.aibot.post_raw(
            json.dumps({"encrypt": xmltodict.parse(vector["echostr_or_encrypted"])["xml"]["Encrypt"]}),
            _query(vector),
        )
        assert status == 403


async def test_vectors_are_stale_with_the_default_age_check(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    vector = POSTS[0]
    async with _stack_for(vector, database_url, clock, tmp_path, max_age=300) as stack:
        status, _, _ = await stack.app.post_raw(vector["echostr_or_encrypted"], _query(vector))
        assert status == 403
