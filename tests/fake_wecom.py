"""The WeCom side of the tests: a fake WeCom API server and a client that sends real encrypted callbacks.

``FakeWeCom`` is an aiohttp server on port 0 that records every request, issues access tokens, enforces the
group robot limit (20/min per key, by the injected clock) and can be told to fail the next call with an errcode
or an HTTP status, to answer slowly, or to expire every token. ``WeComCallbacks`` builds callbacks with wechatpy
(the reference implementation) and POSTs them to the running bot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import xmltodict
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.app import BotApp, build_web_app
from bot.core.clock import Clock
from bot.services.studios import load_roster
from bot.settings import Settings
from tests.harness import EXAMPLE_ROSTER

CORP_ID = "wwtestcorp00000001"
SECRET = "app-secret-do-not-log"
AGENT_ID = "1000002"
APP_TOKEN = "appTokenSecret"
AIBOT_TOKEN = "aibotTokenSecret"
ADMIN = "admin1"
WEBHOOK_KEY = "hook-key-tunnel-0001"
APPCHAT_ID = "wrchat-tunnel"


def random_aes_key() -> str:
    """A fresh 43-character EncodingAESKey."""
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


APP_AES_KEY = random_aes_key()
AIBOT_AES_KEY = random_aes_key()


@dataclass(slots=True, frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: datetime  # by the fake's clock
    answer: dict[str, Any] | None = None  # the JSON answered (None: an HTTP error status)
    port: int = 0  # the local port it arrived on (a fake listening on several ports tells callers apart)
    repeat: bool = False  # a message/send WeCom's duplicate check dropped: answered ok, not delivered again


@dataclass(slots=True)
class _Fault:
    path: str | None
    errcode: int | None = None
    status: int | None = None
    delay: float = 0.0
    times: int = 1


@dataclass
class FakeWeCom:
    """A fake of the WeCom server API, webhook robots and AI-bot response URLs."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    token_ttl: int = 7200
    webhook_per_minute: int = 20
    requests: list[Recorded] = field(default_factory=list)
    _faults: deque[_Fault] = field(default_factory=deque)
    _tokens: dict[str, datetime] = field(default_factory=dict)
    _issued: int = 0
    _used_response_urls: set[str] = field(default_factory=set)
    _media: int = 0
    media: dict[str, bytes] = field(default_factory=dict)  # name → encrypted bytes, served at /media/<name>
    media_fetches: int = 0
    _server: TestServer | None = None
    app_media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media/get: media_id → file, type
    response_codes: set[str] = field(default_factory=set)  # issued, not yet used (update_template_card)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # task_id → the card as last sent or updated
    directory: dict[str, str] = field(default_factory=dict)  # user/get: userid → name
    directory_denied: bool = False  # user/get answers 60011 (the app may not read the directory)

    # -- control -------------------------------------------------------------------------------

    def fail_next(
        self,
        *,
        errcode: int | None = None,
        status: int | None = None,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """Fail the next ``times`` calls (to ``path``, if given; gettoken only when named) with an errcode or status."""
        self._faults.append(_Fault(path, errcode=errcode, status=status, times=times))

    def slow_next(self, seconds: float, *, path: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` calls only after ``seconds``."""
        self._faults.append(_Fault(path, delay=seconds, times=times))

    def add_app_media(self, data: bytes, content_type: str = "image/jpeg") -> str:
        """Serve ``data`` through ``media/get`` (an app user's photo); its MediaId."""
        media_id = f"app-media-{len(self.app_media) + 1}-{uuid.uuid4().hex[:6]}"
        self.app_media[media_id] = (data, content_type)
        return media_id

    def click_code(self) -> str:
        """A ResponseCode as WeCom puts in a ``template_card_event`` (usable once for update_template_card)."""
        code = f"rc-click-{uuid.uuid4().hex[:10]}"
        self.response_codes.add(code)
        return code

    def add_media(self, data: bytes, *, aes_key: str = AIBOT_AES_KEY) -> str:
        """Serve ``data`` as an AI-bot callback's image: encrypted with the callback's EncodingAESKey (AES-256-CBC,
        IV = the key's first 16 bytes, PKCS#7 to 32 bytes; path/100719); its download URL."""
        key = base64.b64decode(aes_key + "=")
        pad = 32 - len(data) % 32
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        name = uuid.uuid4().hex
        self.media[name] = encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()
        return f"{self.url}/media/{name}"

    def expire_tokens(self) -> None:
        """Every issued token stops working (the next API call answers 42001)."""
        for token in self._tokens:
            self._tokens[token] = datetime.min.replace(tzinfo=UTC)

    def calls(self, path: str) -> list[Recorded]:
        """The requests to one path, in order."""
        return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> list[Recorded]:
        """The successful requests to one path (errcode 0) that reached someone (duplicate-checked repeats do not)."""
        return [
            r for r in self.calls(path) if r.answer is not None and r.answer.get("errcode") == 0 and not r.repeat
        ]

    @property
    def token_fetches(self) -> int:
        """How many tokens were issued."""
        return self._issued

    # -- server --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL (``BOT_WECOM_API_BASE``)."""
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> FakeWeCom:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            await self._server.close()

    def _fault_for(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.path == path or (fault.path is None and path != "/cgi-bin/gettoken"):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        path = request.path
        query = dict(request.query)
        if path == "/cgi-bin/media/upload" and isinstance(body, str):
            body = _multipart_file(request.headers.get("Content-Type", ""), raw)
        index = len(self.requests)  # recorded on arrival, so a call the client gave up on still shows
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = int(sockname[1]) if sockname else 0
        self.requests.append(Recorded(request.method, path, query, body, self.now(), None, port))
        fault = self._fault_for(path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            return web.Response(status=fault.status, text="fault")
        if path.startswith("/media/"):  # an image's download URL (gone after five minutes: 404)
            self.media_fetches += 1
            sealed = self.media.get(path.removeprefix("/media/"))
            if sealed is None:
                return web.Response(status=404, text="expired")
            return web.Response(body=sealed, content_type="application/octet-stream")
        if fault is not None and fault.errcode is not None:
            answer: dict[str, Any] = {"errcode": fault.errcode, "errmsg": "injected fault"}
        elif path == "/cgi-bin/media/get":
            return self._media_get(index, query)
        else:
            answer = self._answer(path, query, body)
        repeat = answer.get("errcode") == 0 and self._is_repeat(path, body, index)
        self.requests[index] = replace(self.requests[index], answer=answer, repeat=repeat)
        return web.json_response(answer)

    def _is_repeat(self, path: str, body: Any, index: int) -> bool:
        """WeCom's duplicate check on message/send (``enable_duplicate_check``): the same request JSON within
        ``duplicate_check_interval`` seconds (default 1800) is accepted but not delivered again."""
        if path != "/cgi-bin/message/send" or not isinstance(body, dict) or body.get("enable_duplicate_check") != 1:
            return False
        since = self.requests[index].at - timedelta(seconds=int(body.get("duplicate_check_interval", 1800)))
        return any(
            r.body == body and r.at >= since and r.answer is not None and r.answer.get("errcode") == 0 and not r.repeat
            for r in self.requests[:index]
            if r.path == path
        )

    def _token_error(self, query: dict[str, str]) -> dict[str, Any] | None:
        token = query.get("access_token", "")
        if token not in self._tokens:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if self._tokens[token] <= self.now():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    def _media_get(self, index: int, query: dict[str, str]) -> web.Response:
        """获取临时素材: the file itself (with its Content-Type), or a JSON error."""
        error = self._token_error(query)
        media = self.app_media.get(query.get("media_id", ""))
        if error is None and media is None:
            error = {"errcode": 40007, "errmsg": "invalid media_id"}
        if error is not None:
            self.requests[index] = replace(self.requests[index], answer=error)
            return web.json_response(error)
        data, content_type = media  # type: ignore[misc]
        self.requests[index] = replace(self.requests[index], answer={"errcode": 0, "size": len(data)})
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-disposition": 'attachment; filename="photo"'},
        )

    def _answer(self, path: str, query: dict[str, str], body: Any = None) -> dict[str, Any]:
        now = self.now()
        if path == "/cgi-bin/gettoken":
            if query.get("corpid") != CORP_ID or query.get("corpsecret") != SECRET:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            self._issued += 1
            token = f"token-{self._issued}-{uuid.uuid4().hex[:8]}"
            self._tokens[token] = now + timedelta(seconds=self.token_ttl)
            return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl}
        if path in ("/cgi-bin/message/send", "/cgi-bin/appchat/send"):
            error = self._token_error(query)
            if error is not None:
                return error
            if isinstance(body, dict) and body.get("msgtype") == "template_card":
                card = body.get("template_card") or {}
                if not card.get("task_id") or not card.get("button_list"):
                    return {"errcode": 40058, "errmsg": "template_card: task_id and button_list required"}
                self.cards[str(card["task_id"])] = card
                code = f"rc-send-{uuid.uuid4().hex[:10]}"
                self.response_codes.add(code)
                return {"errcode": 0, "errmsg": "ok", "response_code": code}
            return {"errcode": 0, "errmsg": "ok"}
        if path == "/cgi-bin/user/get":
            error = self._token_error(query)
            if error is not None:
                return error
            if self.directory_denied:
                return {"errcode": 60011, "errmsg": "no privilege to access/modify contact/party/agent"}
            user_id = query.get("userid", "")
            if user_id not in self.directory:
                return {"errcode": 60111, "errmsg": "userid not found"}
            return {"errcode": 0, "errmsg": "ok", "userid": user_id, "name": self.directory[user_id]}
        if path == "/cgi-bin/message/update_template_card":
            error = self._token_error(query)
            if error is not None:
                return error
            if not isinstance(body, dict) or body.get("response_code") not in self.response_codes:
                # the fake's own errcode for an unknown or used code (each code updates a card once)
                return {"errcode": 40058, "errmsg": "invalid response_code"}
            self.response_codes.discard(body["response_code"])
            card = body.get("template_card")
            if isinstance(card, dict) and card.get("task_id"):
                self.cards[str(card["task_id"])] = card
            return {"errcode": 0, "errmsg": "ok", "invaliduser": []}
        if path == "/cgi-bin/media/upload":  # temporary media: answered with a media_id, valid three days
            token = query.get("access_token", "")
            if token not in self._tokens or self._tokens[token] <= now:
                return {"errcode": 42001 if token in self._tokens else 40014, "errmsg": "invalid access_token"}
            if query.get("type") not in ("image", "voice", "video", "file"):
                return {"errcode": 40004, "errmsg": "invalid media type"}
            self._media += 1
            return {"errcode": 0, "errmsg": "ok", "type": query["type"], "media_id": f"media-{self._media}"}
        if path == "/cgi-bin/webhook/send":
            key = query.get("key", "")
            if not key:
                return {"errcode": 93000, "errmsg": "invalid webhook url"}
            recent = [
                r
                for r in self.delivered(path)
                if r.query.get("key") == key and r.at > now - timedelta(seconds=60)
            ]
            if len(recent) >= self.webhook_per_minute:
                return {"errcode": 45009, "errmsg": "api freq out of limit"}
            return {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/aibot/response/"):
            if path in self._used_response_urls:
                return {"errcode": 40058, "errmsg": "response_url used"}
            self._used_response_urls.add(path)
            return {"errcode": 0, "errmsg": "ok"}
        return {"errcode": 404, "errmsg": "unknown path"}


def _multipart_file(content_type: str, raw: bytes) -> dict[str, Any]:
    """The ``media`` part of a media/upload request: its field name, filename, size and bytes."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    for part in message.iter_parts():  # type: ignore[attr-defined]
        content = part.get_payload(decode=True) or b""
        return {"name": part.get_param("name", header="content-disposition"), "filename": part.get_filename(),
                "size": len(content), "content": content}
    return {}


# -- callbacks ---------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Signed:
    """A callback's query string and ciphertext."""

    query: dict[str, str]
    encrypt: str


class WeComCallbacks:
    """Builds and POSTs real encrypted callbacks for one channel, and decrypts the bot's replies (wechatpy)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        *,
        token: str,
        aes_key: str,
        receive_id: str,
        clock: Clock,
    ) -> None:
        self.http = http
        self.url = url
        self.crypto = WeChatCrypto(token, aes_key, receive_id)
        self.clock = clock

    def timestamp(self) -> str:
        """The current time by the bot's clock, as WeCom sends it."""
        return str(int(self.clock.now().timestamp()))

    def seal(self, plaintext: str, *, timestamp: str | None = None) -> Signed:
        """Encrypt and sign ``plaintext`` as WeCom would."""
        nonce = uuid.uuid4().hex[:10]
        xml = self.crypto.encrypt_message(plaintext, nonce, timestamp or self.timestamp())
        fields = xmltodict.parse(xml)["xml"]
        query = {
            "msg_signature": fields["MsgSignature"],
            "timestamp": fields["TimeStamp"],
            "nonce": fields["Nonce"],
        }
        return Signed(query, fields["Encrypt"])

    async def verify_url(self, echo: str = "1616140317555161061") -> aiohttp.ClientResponse:
        """``GET`` URL verification with an encrypted echostr."""
        signed = self.seal(echo)
        async with self.http.get(self.url, params={**signed.query, "echostr": signed.encrypt}) as response:
            await response.read()
            return response

    async def post_raw(self, body: bytes | str, query: dict[str, str]) -> tuple[int, str, float]:
        """POST a body as is; returns status, text and seconds taken."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with self.http.post(self.url, params=query, data=body) as response:
            text = await response.text()
            return response.status, text, loop.time() - started

    def aibot_body(self, payload: dict[str, Any], **kwargs: Any) -> tuple[str, dict[str, str]]:
        """The JSON envelope and query of an AI-bot callback."""
        signed = self.seal(json.dumps(payload, ensure_ascii=False), **kwargs)
        return json.dumps({"encrypt": signed.encrypt}), signed.query

    def app_body(self, xml: str, **kwargs: Any) -> tuple[str, dict[str, str]]:
        """The XML envelope and query of an app callback."""
        signed = self.seal(xml, **kwargs)
        envelope = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<Encrypt><![CDATA[{signed.encrypt}]]></Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>"
        )
        return envelope, signed.query

    def open_aibot_reply(self, text: str) -> dict[str, Any]:
        """Decrypt an AI-bot passive reply (checking its signature) into its JSON."""
        reply = json.loads(text)
        plain = self.crypto.decrypt_message(
            {"Encrypt": reply["encrypt"]}, reply["msgsignature"], str(reply["timestamp"]), reply["nonce"]
        )
        data: dict[str, Any] = json.loads(plain)
        return data

    def open_app_reply(self, text: str) -> dict[str, str]:
        """Decrypt an app passive reply (checking its signature) into its XML fields."""
        outer = xmltodict.parse(text)["xml"]
        plain = self.crypto.decrypt_message(text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
        fields: dict[str, str] = xmltodict.parse(plain)["xml"]
        return fields


def aibot_text(
    text: str,
    *,
    user: str = "zhangsan",
    chat_id: str | None = "wrgroup-tunnel",
    msg_id: str | None = None,
    response_url: str | None = None,
) -> dict[str, Any]:
    """An AI-bot text message (a group message when ``chat_id`` is given)."""
    payload: dict[str, Any] = {
        "msgid": msg_id or f"msg-{uuid.uuid4().hex}",
        "aibotid": "AIBOTID",
        "chattype": "group" if chat_id else "single",
        "from": {"userid": user},
        "response_url": response_url or "",
        "msgtype": "text",
        "text": {"content": text},
    }
    if chat_id:
        payload["chatid"] = chat_id
    return payload


def aibot_images(
    urls: list[str],
    text: str | None = None,
    *,
    user: str = "zhangsan",
    chat_id: str | None = None,
    msg_id: str | None = None,
) -> dict[str, Any]:
    """An AI-bot ``image`` message (one URL, no text; 1:1 only, as WeCom sends them) or, with ``text``, a
    ``mixed`` one (text + images; a group @mention with photos)."""
    payload = aibot_text(text or "", user=user, chat_id=chat_id, msg_id=msg_id)
    del payload["text"]
    if text is None:
        (url,) = urls
        payload.update(msgtype="image", image={"url": url})
    else:
        items: list[dict[str, Any]] = [{"msgtype": "text", "text": {"content": text}}]
        items += [{"msgtype": "image", "image": {"url": url}} for url in urls]
        payload.update(msgtype="mixed", mixed={"msg_item": items})
    return payload


def aibot_click(
    user: str,
    key: str,
    task_id: str,
    *,
    msg_id: str | None = None,
    chat_id: str | None = "wrgroup-tunnel",
    response_url: str = "",
) -> dict[str, Any]:
    """An AI-bot ``template_card_event``: a button clicked on one of the bot's cards."""
    payload: dict[str, Any] = {
        "msgid": msg_id or f"click-{uuid.uuid4().hex}",
        "create_time": 1_700_000_000,
        "aibotid": "AIBOTID",
        "chattype": "group" if chat_id else "single",
        "from": {"userid": user},
        "response_url": response_url,
        "msgtype": "event",
        "event": {
            "eventtype": "template_card_event",
            "template_card_event": {"card_type": "button_interaction", "event_key": key, "task_id": task_id},
        },
    }
    if chat_id:
        payload["chatid"] = chat_id
    return payload


def app_text(
    text: str, *, user: str = "zhangsan", msg_id: str | None = None, create_time: int = 1_700_000_000
) -> str:
    """An app text message (XML plaintext)."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id or uuid.uuid4().int % 10**19}</MsgId>"
        f"<AgentID>{AGENT_ID}</AgentID></xml>"
    )


def app_image(
    media_id: str, *, user: str = "zhangsan", msg_id: str | None = None, create_time: int = 1_700_000_000
) -> str:
    """An app image message (XML plaintext): ``PicUrl`` and ``MediaId``."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        f"<PicUrl><![CDATA[https://wework.qpic.cn/wwpic/{media_id}/0]]></PicUrl>"
        f"<MediaId><![CDATA[{media_id}]]></MediaId><MsgId>{msg_id or uuid.uuid4().int % 10**19}</MsgId>"
        f"<AgentID>{AGENT_ID}</AgentID></xml>"
    )


def app_card_click(
    event_key: str, task_id: str, response_code: str, *, user: str, create_time: int = 1_700_000_000
) -> str:
    """An app ``template_card_event`` (a button clicked on a button_interaction card), XML plaintext."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{event_key}]]></EventKey>"
        f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
        f"<ResponseCode><![CDATA[{response_code}]]></ResponseCode><AgentID>{AGENT_ID}</AgentID></xml>"
    )


# -- the whole stack -----------------------------------------------------------------------------------


def wecom_settings(database_url: str, api_base: str, **overrides: Any) -> Settings:
    """Settings with both WeCom channels and the API configured, pointing at the fake."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "admins": [ADMIN],
        "wecom_corp_id": CORP_ID,
        "wecom_agent_id": AGENT_ID,
        "wecom_secret": SECRET,
        "wecom_app_token": APP_TOKEN,
        "wecom_app_aes_key": APP_AES_KEY,
        "wecom_aibot_token": AIBOT_TOKEN,
        "wecom_aibot_aes_key": AIBOT_AES_KEY,
        "wecom_api_base": api_base,
        "rate_limit_per_min": 0,
    }
    values.update(overrides)
    return Settings(**values)


def roster_with_announce(tmp_path: Path) -> Path:
    """The example roster with the tunnel alliance announcing to one webhook and one app chat."""
    data = yaml.safe_load(EXAMPLE_ROSTER.read_text(encoding="utf-8"))
    for alliance in data["alliances"]:
        if alliance["id"] == "tunnel":
            alliance["announce"] = {"webhooks": [WEBHOOK_KEY], "appchats": [APPCHAT_ID]}
    path = tmp_path / "roster.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class Stack:
    """A running bot (real aiohttp app on port 0) wired to a fake WeCom, and callback clients for both paths."""

    bot: BotApp
    fake: FakeWeCom
    server: TestServer
    http: aiohttp.ClientSession
    aibot: WeComCallbacks
    app: WeComCallbacks

    async def idle(self) -> None:
        """Wait until both channels have finished their late answers."""
        from bot.channels.wecom.agent import AppChannel
        from bot.channels.wecom.aibot import AibotChannel

        await self.bot.runtime.feature(AibotChannel).idle()
        await self.bot.runtime.feature(AppChannel).idle()

    async def deliver(self, within: float = 10.0) -> None:
        """Deliver what is due now, whether this call's worker or the app's background worker sends it."""
        await deliver_due(self.bot, within)


async def deliver_due(bot: BotApp, within: float = 10.0, *, wait_for_leased: bool = True) -> None:
    """Run the outbox worker until nothing due now is pending.

    Messages leased to another worker count as pending (it is sending them) unless ``wait_for_leased`` is
    False (the other worker is a crashed process whose lease has yet to run out).
    """
    assert bot.worker is not None
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    while True:
        await bot.worker.run_once()
        now = bot.clock.now()
        pending = await bot.store.outbox.listing(statuses=("pending",))
        due = [
            m
            for m in pending
            if m.next_attempt_at <= now and (wait_for_leased or m.lease_until is None or m.lease_until < now)
        ]
        if not due:
            return
        if loop.time() > give_up:
            raise TimeoutError(f"outbox messages still due: {[m.id for m in due]}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running_stack(
    settings_for: Callable[[str], Settings],
    clock: Clock,
    tmp_path: Path,
    *,
    prepare: Callable[[BotApp], None] | None = None,
) -> AsyncIterator[Stack]:
    """Start the fake WeCom, the bot (roster imported) and its HTTP server; tear all down afterwards."""
    fake = await FakeWeCom(now=clock.now).start()
    try:
        settings = settings_for(fake.url)
        bot = await BotApp.create(settings, clock=clock)
        await bot.store.studios.import_roster(load_roster(roster_with_announce(tmp_path)))
        if prepare is not None:
            prepare(bot)
        server = TestServer(build_web_app(bot), host="127.0.0.1", port=0)
        await server.start_server()  # runs the app's start-up: scheduler, outbox worker
        try:
            async with aiohttp.ClientSession() as http:
                aibot = WeComCallbacks(
                    http,
                    str(server.make_url("/wecom/aibot")),
                    token=settings.wecom_aibot_token,
                    aes_key=settings.wecom_aibot_aes_key,
                    receive_id="",
                    clock=clock,
                )
                app = WeComCallbacks(
                    http,
                    str(server.make_url("/wecom/app")),
                    token=settings.wecom_app_token,
                    aes_key=settings.wecom_app_aes_key,
                    receive_id=settings.wecom_corp_id,
                    clock=clock,
                )
                yield Stack(bot, fake, server, http, aibot, app)
        finally:
            await server.close()  # the app's clean-up drains background work and closes the bot
    finally:
        await fake.close()
