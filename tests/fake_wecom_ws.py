"""A fake of WeCom's long-connection endpoint (智能机器人长连接): a real aiohttp WebSocket server on port 0.

It checks what the real one checks: the first frame must be ``aibot_subscribe`` with the right bot id and secret
(errcode otherwise, and the socket is closed), pings are acknowledged, a reply must reuse the ``req_id`` of a
callback sent on the same connection (errcode otherwise), a stream's content is at most 20480 bytes and each
frame replaces the previous one, and a new subscription displaces the old with a ``disconnected_event``. A test
delivers messages and events, reads what the bot answered, can drop the connection, stop acknowledging pings,
or kick the bot as another deployment would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BOT_ID = "aib-fake-bot"
BOT_SECRET = "fake-bot-secret-0123456789"
ERR_AUTH = 40001  # invalid credential (WeCom's answer to a wrong secret)
ERR_NOT_SUBSCRIBED = 846609
ERR_UNKNOWN_REQ = 846605
ERR_TOO_LONG = 846603
STREAM_BYTES = 20480


@dataclass
class Conn:
    """One client connection as the fake sees it."""

    number: int
    ws: web.WebSocketResponse
    opened: float
    subscribed: bool = False
    callbacks: set[str] = field(default_factory=set)  # req_ids of the callbacks sent on it
    closed_at: float | None = None


@dataclass
class Received:
    """A frame the bot sent (after the subscription), with the connection it came on and its answer."""

    conn: int
    cmd: str
    req_id: str
    body: dict[str, Any]
    errcode: int
    at: float


@dataclass
class FakeWeComWS:
    """WeCom's WebSocket endpoint for one bot."""

    bot_id: str = BOT_ID
    secret: str = BOT_SECRET
    answer_pings: bool = True
    conns: list[Conn] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    subscriptions: list[tuple[int, float, int]] = field(default_factory=list)  # (conn, at, errcode)
    pings: int = 0
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)  # stream id → latest frame's stream
    stream_frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # task id → the card as last sent or updated
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, bytes] = field(default_factory=dict)  # name → encrypted bytes, served at /media/<name>
    media_fetches: int = 0
    _server: TestServer | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> FakeWeComWS:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/", self._handle)
        app.router.add_get("/media/{name}", self._media)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        """Close every connection and stop listening."""
        for conn in self.conns:
            if not conn.ws.closed:
                await conn.ws.close()
        if self._server is not None:
            await self._server.close()

    @property
    def url(self) -> str:
        """The ``ws://`` URL to configure as ``BOT_WECOM_WS_URL``."""
        assert self._server is not None
        return str(self._server.make_url("/")).replace("http://", "ws://")

    # -- what a test reads -----------------------------------------------------------------------

    @property
    def live(self) -> Conn | None:
        """The subscribed connection that is open, if any."""
        for conn in reversed(self.conns):
            if conn.subscribed and not conn.ws.closed:
                return conn
        return None

    def accepted_subscriptions(self) -> int:
        """How many subscriptions were accepted so far."""
        return sum(1 for _, _, errcode in self.subscriptions if errcode == 0)

    def frames(self, cmd: str, *, req_id: str | None = None) -> list[Received]:
        """Frames the bot sent with this command (for one request id)."""
        return [r for r in self.received if r.cmd == cmd and (req_id is None or r.req_id == req_id)]

    def pushes(self, chat_id: str | None = None) -> list[Received]:
        """Accepted ``aibot_send_msg`` frames (to one chat)."""
        return [
            r
            for r in self.frames("aibot_send_msg")
            if r.errcode == 0 and (chat_id is None or r.body.get("chatid") == chat_id)
        ]

    async def wait_for(self, check: Any, *, within: float = 10.0, what: str = "the fake's state") -> Any:
        """Wait until ``check()`` is truthy (re-checked on every change)."""
        async with self._changed:
            try:
                async with asyncio.timeout(within):
                    while not (value := check()):
                        await self._changed.wait()
            except TimeoutError:
                raise AssertionError(f"timed out after {within} s waiting for {what}") from None
        return value

    # -- what a test does ------------------------------------------------------------------------

    def add_media(self, data: bytes) -> tuple[str, str]:
        """Serve ``data`` encrypted as WeCom does (AES-256-CBC, a fresh key per file, IV = the key's first 16
        bytes, PKCS#7 to 32 bytes); its download URL and base64 ``aeskey``."""
        key = os.urandom(32)
        pad = 32 - len(data) % 32
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        sealed = encryptor.update(data + bytes([pad]) * pad) + encryptor.finalize()
        name = uuid.uuid4().hex
        self.media[name] = sealed
        assert self._server is not None
        return str(self._server.make_url(f"/media/{name}")), base64.b64encode(key).decode()

    async def deliver(self, body: dict[str, Any], *, cmd: str = "aibot_msg_callback") -> str:
        """Push a callback frame to the live connection; its req_id."""
        conn = self.live
        assert conn is not None, "no subscribed connection"
        req_id = f"cb_{uuid.uuid4().hex}"
        conn.callbacks.add(req_id)
        await conn.ws.send_str(json.dumps({"cmd": cmd, "headers": {"req_id": req_id}, "body": body}))
        return req_id

    async def event(self, body: dict[str, Any]) -> str:
        """Push an event callback frame to the live connection; its req_id."""
        return await self.deliver(body, cmd="aibot_event_callback")

    async def drop(self) -> None:
        """Cut the live connection without a word (a network failure, a WeCom restart)."""
        conn = self.live
        assert conn is not None
        await conn.ws.close(code=1011, message=b"dropped by the fake")

    async def kick(self) -> None:
        """Another deployment subscribed with this bot: the live connection gets ``disconnected_event``."""
        conn = self.live
        assert conn is not None
        await self._displace(conn)

    # -- the endpoint ----------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _displace(self, conn: Conn) -> None:
        body = {
            "msgid": uuid.uuid4().hex,
            "create_time": int(time.time()),
            "aibotid": self.bot_id,
            "msgtype": "event",
            "event": {"eventtype": "disconnected_event"},
        }
        frame = {"cmd": "aibot_event_callback", "headers": {"req_id": f"cb_{uuid.uuid4().hex}"}, "body": body}
        try:
            await conn.ws.send_str(json.dumps(frame))
        except ConnectionError:
            pass  # its client is gone already (a killed process whose socket has not been seen closed yet)
        finally:
            await conn.ws.close()

    async def _media(self, request: web.Request) -> web.Response:
        self.media_fetches += 1
        data = self.media.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(number=len(self.conns) + 1, ws=ws, opened=time.monotonic())
        self.conns.append(conn)
        await self._notify()
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                await self._frame(conn, frame)
                await self._notify()
        finally:
            conn.closed_at = time.monotonic()
            await self._notify()
        return ws

    async def _frame(self, conn: Conn, frame: dict[str, Any]) -> None:
        cmd = str(frame.get("cmd") or "")
        req_id = str((frame.get("headers") or {}).get("req_id") or "")
        body = frame.get("body") or {}
        if cmd == "aibot_subscribe":
            ok = body.get("bot_id") == self.bot_id and body.get("secret") == self.secret
            errcode = 0 if ok else ERR_AUTH
            self.subscriptions.append((conn.number, time.monotonic(), errcode))
            if not ok:
                await self._ack(conn, req_id, errcode, "invalid secret or bot_id")
                await conn.ws.close()
                return
            for other in self.conns:  # one connection per bot: a new subscription displaces the old
                if other is not conn and other.subscribed and not other.ws.closed:
                    await self._displace(other)
            conn.subscribed = True
            await self._ack(conn, req_id, 0, "ok")
            return
        if not conn.subscribed:
            await self._ack(conn, req_id, ERR_NOT_SUBSCRIBED, "not subscribed")
            return
        if cmd == "ping":
            self.pings += 1
            if self.answer_pings:
                await self._ack(conn, req_id, 0, "ok")
            return
        errcode, errmsg = 0, "ok"
        if cmd in ("aibot_respond_msg", "aibot_respond_welcome_msg", "aibot_respond_update_msg"):
            if req_id not in conn.callbacks:
                errcode, errmsg = ERR_UNKNOWN_REQ, "req_id is not a callback of this connection"
            elif cmd == "aibot_respond_msg" and body.get("msgtype") == "stream":
                stream = body.get("stream") or {}
                if len(str(stream.get("content") or "").encode("utf-8")) > STREAM_BYTES:
                    errcode, errmsg = ERR_TOO_LONG, "content too long"
                else:  # each frame replaces the stream's content in full
                    self.streams[str(stream.get("id"))] = stream
                    self.stream_frames.setdefault(str(stream.get("id")), []).append(stream)
            elif cmd == "aibot_respond_update_msg":
                card = body.get("template_card") or {}
                if (
                    body.get("response_type") != "update_template_card"
                    or card.get("task_id") not in self.cards
                ):
                    errcode, errmsg = 40003, "update of an unknown card"
                else:
                    self.cards[str(card["task_id"])] = card
        elif cmd == "aibot_send_msg":
            if not body.get("chatid"):
                errcode, errmsg = 40003, "chatid missing"
            elif body.get("msgtype") == "template_card":
                card = body.get("template_card") or {}
                if not card.get("task_id") or card.get("card_type") not in CARD_TYPES:
                    errcode, errmsg = 40003, "template_card needs card_type and task_id"
                elif card_problem(card):
                    errcode, errmsg = 40003, card_problem(card)
                elif card["task_id"] in self.cards:
                    errcode, errmsg = 40003, "task_id already used"
                else:
                    self.cards[str(card["task_id"])] = card
        else:
            errcode, errmsg = 40008, f"unknown cmd {cmd}"
        self.received.append(Received(conn.number, cmd, req_id, body, errcode, time.monotonic()))
        await self._ack(conn, req_id, errcode, errmsg)

    @staticmethod
    async def _ack(conn: Conn, req_id: str, errcode: int, errmsg: str) -> None:
        if not conn.ws.closed:
            await conn.ws.send_str(
                json.dumps({"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg})
            )


CARD_TYPES = ("button_interaction", "multiple_interaction")


def card_problem(card: dict[str, Any]) -> str:
    """What WeCom would refuse in a card of the two interactive kinds the bot sends ('' when nothing)."""
    if card["card_type"] == "button_interaction":
        buttons = card.get("button_list") or []
        return "" if 1 <= len(buttons) <= 6 and all(b.get("key") for b in buttons) else "button_list invalid"
    lists = card.get("select_list") or []
    if not 1 <= len(lists) <= 3:
        return "select_list needs 1 to 3 items"
    for item in lists:
        options = item.get("option_list") or []
        if not item.get("question_key") or not 1 <= len(options) <= 10 or not all(o.get("id") for o in options):
            return "select_list item invalid"
    return "" if (card.get("submit_button") or {}).get("key") else "submit_button needs a key"


def card_click(user: str, key: str, task_id: str, *, msg_id: str | None = None) -> dict[str, Any]:
    """The body of a ``template_card_event``: ``user`` clicked the button ``key`` on the card ``task_id``."""
    return {
        "msgid": msg_id or uuid.uuid4().hex,
        "create_time": int(time.time()),
        "aibotid": BOT_ID,
        "chattype": "single",
        "from": {"userid": user},
        "msgtype": "event",
        "event": {
            "eventtype": "template_card_event",
            "template_card_event": {"card_type": "button_interaction", "event_key": key, "task_id": task_id},
        },
    }


def image_message(
    url: str, aeskey: str, *, user: str, msg_id: str | None = None, chat_id: str | None = "wr-group-1"
) -> dict[str, Any]:
    """The body of an ``aibot_msg_callback`` carrying one image."""
    body = text_message("", user=user, msg_id=msg_id, chat_id=chat_id)
    del body["text"]
    body.update(msgtype="image", image={"url": url, "aeskey": aeskey})
    return body


def mixed_message(
    text: str,
    images: list[tuple[str, str]],
    *,
    user: str,
    msg_id: str | None = None,
    chat_id: str | None = "wr-group-1",
) -> dict[str, Any]:
    """The body of a ``mixed`` message: text and images (a group @mention with a photo)."""
    body = text_message("", user=user, msg_id=msg_id, chat_id=chat_id)
    del body["text"]
    items: list[dict[str, Any]] = [{"msgtype": "text", "text": {"content": text}}]
    items += [{"msgtype": "image", "image": {"url": u, "aeskey": k}} for u, k in images]
    body.update(msgtype="mixed", mixed={"msg_item": items})
    return body


def text_message(
    text: str,
    *,
    user: str,
    msg_id: str | None = None,
    chat_id: str | None = "wr-group-1",
) -> dict[str, Any]:
    """The body of an ``aibot_msg_callback`` carrying a text message (in a group unless ``chat_id=None``)."""
    body: dict[str, Any] = {
        "msgid": msg_id or uuid.uuid4().hex,
        "aibotid": BOT_ID,
        "chattype": "group" if chat_id else "single",
        "from": {"userid": user},
        "msgtype": "text",
        "text": {"content": text},
    }
    if chat_id:
        body["chatid"] = chat_id
    return body


def score_submit(
    user: str, key: str, task_id: str, chosen: dict[str, str], *, msg_id: str | None = None
) -> dict[str, Any]:
    """The body of a ``template_card_event`` for a submitted ``multiple_interaction`` card: ``chosen`` maps
    each list's question key to the option picked."""
    body = card_click(user, key, task_id, msg_id=msg_id)
    body["event"]["template_card_event"] = {
        "card_type": "multiple_interaction",
        "event_key": key,
        "task_id": task_id,
        "selected_items": {
            "selected_item": [
                {"question_key": question, "option_ids": {"option_id": [option]}}
                for question, option in chosen.items()
            ]
        },
    }
    return body
