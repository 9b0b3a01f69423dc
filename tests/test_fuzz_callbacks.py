"""Fuzzing both WeCom callback endpoints of the running app over real HTTP, with ``hypothesis``.

Four kinds of input, each at ``/wecom/aibot`` and ``/wecom/app``: garbage (random query strings and bodies of any
size and encoding), mutations of a valid callback (signature, timestamp, nonce, envelope, ciphertext), correctly
signed ciphertexts whose decrypted layout is wrong (padding, length prefix, receive id, bytes that are not
UTF-8), and valid envelopes carrying random messages (Chinese, ASCII, emoji, full-width, very long lines, random
JSON and XML). What must hold for every request: an answer within the deadline, never a 5xx, never a traceback
or an error in the log; valid messages are answered 200 with a reply that decrypts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import struct
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.wecom.crypto import aes_key, signature
from bot.core.clock import ManualClock
from tests.fake_wecom import (
    AIBOT_AES_KEY,
    AIBOT_TOKEN,
    APP_AES_KEY,
    APP_TOKEN,
    CORP_ID,
    Stack,
    WeComCallbacks,
    aibot_text,
    app_text,
    running_stack,
    wecom_settings,
)

pytestmark = pytest.mark.slow

DEADLINE = 10.0  # seconds; WeCom allows 5, a hang shows as a timeout here
EXAMPLES = 150  # per property and database; the whole file stays well under a minute

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
FULL_WIDTH = st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E)
EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
ANY_CHAR = st.characters(blacklist_categories=("Cs",))
MESSAGE_TEXT = st.one_of(
    st.text(st.one_of(CJK, FULL_WIDTH, EMOJI, ANY_CHAR, st.sampled_from(" /／#@\n\t")), max_size=60),
    st.tuples(
        st.sampled_from(["/", "／", "@联盟助手 /", ""]), st.sampled_from(["帮助", "help", "活动", "课题"])
    )
    .map("".join)
    .flatmap(lambda head: st.text(ANY_CHAR, max_size=30).map(lambda tail: head + " " + tail)),
    st.text(st.one_of(CJK, EMOJI, FULL_WIDTH), min_size=2000, max_size=6000),  # very long lines
)
QUERY_VALUE = st.one_of(st.text(ANY_CHAR, max_size=50), st.from_regex(r"[0-9a-f]{40}", fullmatch=True))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(ANY_CHAR, max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
AIBOT_FIELDS = ("msgid", "aibotid", "chatid", "chattype", "from", "response_url", "msgtype", "text", "stream")
APP_FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "AgentID", "Event")


class Target:
    """One endpoint under fuzz: its callback client and how to wrap ciphertext in its envelope."""

    def __init__(self, name: str, callbacks: WeComCallbacks, token: str, key: str, receive_id: str) -> None:
        self.name = name
        self.callbacks = callbacks
        self.token = token
        self.key = aes_key(key)
        self.receive_id = receive_id

    def envelope(self, encrypt: str) -> str:
        """The request body around a ciphertext."""
        if self.name == "aibot":
            return json.dumps({"encrypt": encrypt})
        return f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"

    def signed(self, encrypt: str, *, nonce: str = "fuzznonce") -> tuple[str, dict[str, str]]:
        """A body and a correctly signed query for any ciphertext string."""
        timestamp = self.callbacks.timestamp()
        query = {"msg_signature": signature(self.token, timestamp, nonce, encrypt), "timestamp": timestamp}
        return self.envelope(encrypt), {**query, "nonce": nonce}

    def valid(self, text: str) -> tuple[str, dict[str, str]]:
        """A valid text message callback."""
        if self.name == "aibot":
            return self.callbacks.aibot_body(aibot_text(text, user="fuzzer"))
        return self.callbacks.app_body(app_text(text, user="fuzzer"))

    def raw_ciphertext(self, plain: bytes, *, pad: bytes | None = None) -> str:
        """AES-256-CBC of ``plain`` as WeCom lays it out, with PKCS#7 padding to 32 bytes (or ``pad`` instead)."""
        if pad is None:
            n = 32 - len(plain) % 32
            pad = bytes([n]) * n
        data = plain + pad
        data += b"\0" * (-len(data) % 16)
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


class Fuzz:
    """A running bot (the real aiohttp app on a port) driven from synchronous hypothesis tests."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stack: Stack) -> None:
        self.loop = loop
        self.stack = stack
        self.targets = {
            "aibot": Target("aibot", stack.aibot, AIBOT_TOKEN, AIBOT_AES_KEY, ""),
            "app": Target("app", stack.app, APP_TOKEN, APP_AES_KEY, CORP_ID),
        }
        self.statuses: list[int] = []

    def post(self, target: Target, body: bytes | str, query: dict[str, str]) -> tuple[int, str]:
        """POST and return status and text; fails on a 5xx or when no answer comes within the deadline."""

        async def send() -> tuple[int, str]:
            timeout = aiohttp.ClientTimeout(total=DEADLINE)
            async with self.stack.http.post(
                target.callbacks.url, params=query, data=body, timeout=timeout
            ) as response:
                return response.status, await response.text(errors="replace")

        try:
            status, text = self.loop.run_until_complete(send())
        except TimeoutError:
            pytest.fail(f"{target.name}: no answer within {DEADLINE} s")
        self.statuses.append(status)
        assert status < 500, f"{target.name}: {status} {text[:200]!r}"
        return status, text


@pytest.fixture
def fuzz(database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Any:
    """The running stack on its own event loop; afterwards, the log must hold no error and no traceback."""
    caplog.set_level(logging.WARNING)
    loop = asyncio.new_event_loop()
    exits = AsyncExitStack()
    clock = ManualClock(datetime.now(UTC))
    stack = loop.run_until_complete(
        exits.enter_async_context(
            running_stack(lambda base: wecom_settings(database_url, base), clock, tmp_path)
        )
    )
    try:
        yield Fuzz(loop, stack)
        loop.run_until_complete(stack.idle())
    finally:
        loop.run_until_complete(exits.aclose())
        loop.close()
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [f"{r.name}: {r.getMessage()}" for r in bad]


ENDPOINT = st.sampled_from(["aibot", "app"])
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run: CI is deterministic (explore with more examples locally)
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_garbage_is_answered_4xx(fuzz: Fuzz) -> None:
    body = st.one_of(
        st.binary(max_size=2000),
        st.text(ANY_CHAR, max_size=2000),
        JSON.map(lambda j: json.dumps(j, ensure_ascii=False)),
        st.text(ANY_CHAR, max_size=200).map(lambda t: f"<xml><Encrypt>{t}</Encrypt></xml>"),
        st.integers(64 * 1024 - 16, 70 * 1024).map(lambda n: b"x" * n),  # around the 64 KiB limit
    )
    query = st.dictionaries(
        st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr", "x"]), QUERY_VALUE
    )

    @FUZZ_SETTINGS
    @given(endpoint=ENDPOINT, body=body, query=query)
    def check(endpoint: str, body: bytes | str, query: dict[str, str]) -> None:
        status, _ = fuzz.post(fuzz.targets[endpoint], body, query)
        assert 400 <= status < 500

    check()


def _mutate(data: str, position: int, replacement: str) -> str:
    position %= max(len(data), 1)
    return data[:position] + replacement + data[position + 1 :]


def test_mutated_valid_callbacks_are_rejected_or_handled(fuzz: Fuzz) -> None:
    mutation = st.one_of(
        st.tuples(st.just("signature"), st.integers(0, 39), st.sampled_from("0123456789abcdefXYZ ")),
        st.tuples(st.just("timestamp"), st.integers(-(10**6), 10**6), st.just("")),
        st.tuples(st.just("nonce"), st.integers(0, 0), st.text(ANY_CHAR, max_size=20)),
        st.tuples(st.just("body"), st.integers(0, 10**4), st.text(ANY_CHAR, min_size=1, max_size=3)),
        st.tuples(st.just("truncate"), st.integers(0, 10**4), st.just("")),
        st.tuples(st.just("resigned"), st.integers(0, 10**4), st.text(ANY_CHAR, min_size=1, max_size=3)),
    )

    @FUZZ_SETTINGS
    @given(endpoint=ENDPOINT, text=MESSAGE_TEXT, mutation=mutation)
    def check(endpoint: str, text: str, mutation: tuple[str, int, str]) -> None:
        target = fuzz.targets[endpoint]
        body, query = target.valid(text)
        kind, where, what = mutation
        if kind == "signature":
            query["msg_signature"] = _mutate(query["msg_signature"], where, what)
        elif kind == "timestamp":
            query["timestamp"] = str(int(query["timestamp"]) + where)
        elif kind == "nonce":
            query["nonce"] = what
        elif kind == "body":
            body = _mutate(body, where, what)
        elif kind == "truncate":
            body = body[: where % max(len(body), 1)]
        else:  # the ciphertext changed and signed again: only decryption can tell
            encrypt = (
                json.loads(body)["encrypt"] if endpoint == "aibot" else body.split("CDATA[")[2].split("]]")[0]
            )
            body, query = target.signed(_mutate(encrypt, where, what))
        status, _ = fuzz.post(target, body, query)
        assert status in (200, 400, 403, 413)

    check()


def test_signed_ciphertexts_with_a_broken_layout_are_rejected(fuzz: Fuzz) -> None:
    @FUZZ_SETTINGS
    @given(
        endpoint=ENDPOINT,
        message=st.binary(max_size=300),
        declared=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
        receive_id=st.one_of(st.none(), st.text(ANY_CHAR, max_size=20)),
        pad=st.one_of(st.none(), st.binary(min_size=1, max_size=40)),
    )
    def check(
        endpoint: str, message: bytes, declared: int | None, receive_id: str | None, pad: bytes | None
    ) -> None:
        target = fuzz.targets[endpoint]
        rid = (target.receive_id if receive_id is None else receive_id).encode()
        length = len(message) if declared is None else declared
        plain = os.urandom(16) + struct.pack(">I", length) + message + rid
        body, query = target.signed(target.raw_ciphertext(plain, pad=pad))
        status, _ = fuzz.post(target, body, query)
        assert status in (200, 400, 403)

    check()


def test_valid_envelopes_with_random_messages_get_a_decryptable_answer(fuzz: Fuzz) -> None:
    aibot_payload = st.one_of(
        MESSAGE_TEXT.map(lambda t: aibot_text(t, user="fuzzer")),
        st.fixed_dictionaries({}, optional={f: JSON for f in AIBOT_FIELDS}),
        JSON,
    )
    app_fields = st.dictionaries(st.sampled_from(APP_FIELDS), st.text(ANY_CHAR, max_size=40), max_size=8)

    def app_xml(fields: dict[str, str]) -> str:
        inner = "".join(f"<{k}><![CDATA[{v.replace(']]>', '')}]]></{k}>" for k, v in fields.items())
        return f"<xml>{inner}</xml>"

    plaintext: Callable[[str], st.SearchStrategy[str]] = lambda endpoint: (  # noqa: E731
        aibot_payload.map(lambda p: json.dumps(p, ensure_ascii=False))
        if endpoint == "aibot"
        else st.one_of(
            MESSAGE_TEXT.map(lambda t: app_text(t.replace("]]>", ""), user="fuzzer")), app_fields.map(app_xml)
        )
    )

    @FUZZ_SETTINGS
    @given(data=st.data(), endpoint=ENDPOINT)
    def check(data: st.DataObject, endpoint: str) -> None:
        target = fuzz.targets[endpoint]
        plain = data.draw(plaintext(endpoint))
        signed = target.callbacks.seal(plain)
        body = target.envelope(signed.encrypt)
        status, text = fuzz.post(target, body, signed.query)
        assert status in (200, 400)
        if status == 200 and text:
            if endpoint == "aibot":
                assert isinstance(target.callbacks.open_aibot_reply(text), dict)
            else:
                assert "Content" in target.callbacks.open_app_reply(text)

    check()
    assert fuzz.statuses.count(200) >= EXAMPLES // 4, "too few examples reached a handler"

    # and a plain, valid message of each kind is answered
    for target in fuzz.targets.values():
        status, text = fuzz.post(target, *target.valid("/帮助"))
        assert status == 200 and text
