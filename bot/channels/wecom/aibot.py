"""The WeCom AI bot (智能机器人) callback, ``/wecom/aibot``: group @mentions and 1:1 messages.

JSON envelope ``{"encrypt": …}`` with receive id ``""`` (developer.work.weixin.qq.com path/100719, 101031).
A message is answered with an encrypted ``stream`` reply. When the handler is quick, the stream is finished in
the passive reply; when it is not, the reply is an unfinished stream and the answer follows when WeCom polls the
stream (``msgtype: stream``) or, if no poll collects it in time, through the message's ``response_url`` (via
the outbox). The reply stream lives in the database (``aibot_stream``), so a poll or a retry reaching another
process gets the same answer, and a retried message is acted on once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.app import BotApp
from bot.channels.wecom.callback import (
    DATABASE_DOWN,
    REPLY_WAIT,
    Background,
    Later,
    handle_within,
    read_body,
    rejection,
    unavailable,
    verify_url,
)
from bot.channels.wecom.crypto import CallbackCrypto, CallbackRejected
from bot.channels.wecom.senders import RESPONSE_URL_BYTES, clip
from bot.core.messages import Event, Outbound, Target, TargetKind
from bot.core.middleware import RetryLater
from bot.store.wecom import AibotStream, AibotStreamRepo, StreamDelivery

log = logging.getLogger(__name__)

CHANNEL = "aibot"
PATH = "/wecom/aibot"
PLACEHOLDER = "⏳ 正在处理，请稍候……"
ALREADY_SENT = "✅ 已处理完毕，结果已另行发送。"
WELCOME = "您好，我是工作室联盟助手。在群里 @我 并输入 /帮助，或在这里直接发送 /帮助，查看我能做什么。"
UNSUPPORTED = "抱歉，我目前只能处理文字消息，请用文字描述您的问题。"
# Leading @mentions (the bot's, and anyone else's before the text); WeCom separates them with spaces or U+2005.
_MENTIONS = re.compile(r"^(?:\s*@\S+)+(?:\s+|$)")


def strip_mentions(text: str) -> str:
    """Remove the @mentions a group message starts with (``@助手 /帮助`` → ``/帮助``)."""
    return _MENTIONS.sub("", text, count=1).strip()


def stream_id_for(msg_id: str) -> str:
    """The reply stream id of a message (stable, so a retried message continues the same stream)."""
    return hashlib.sha1(f"aibot:{msg_id}".encode()).hexdigest()[:32]


@dataclass(slots=True, frozen=True)
class AibotMessage:
    """The fields of a decrypted AI-bot callback the bot uses."""

    msg_id: str
    msg_type: str
    user_id: str
    chat_id: str | None
    text: str
    response_url: str | None
    stream_id: str | None  # for ``msgtype: stream`` polls
    event_type: str | None  # for ``msgtype: event``

    @classmethod
    def parse(cls, plaintext: str) -> AibotMessage:
        """Read a decrypted callback; 400 when it is not the expected JSON."""
        try:
            data = json.loads(plaintext)
        except ValueError:
            raise CallbackRejected(400, "decrypted body is not JSON") from None
        if not isinstance(data, dict):
            raise CallbackRejected(400, "decrypted body is not a JSON object")
        msg_type = str(data.get("msgtype") or "")
        sender, stream, event = _object(data, "from"), _object(data, "stream"), _object(data, "event")
        chat_type = data.get("chattype")
        return cls(
            msg_id=str(data.get("msgid") or ""),
            msg_type=msg_type,
            user_id=str(sender.get("userid") or ""),
            chat_id=(str(data.get("chatid") or "") or None) if chat_type == "group" else None,
            text=_text_of(msg_type, data),
            response_url=str(data.get("response_url") or "") or None,
            stream_id=str(stream.get("id") or "") or None,
            event_type=str(event.get("eventtype") or "") or None,
        )


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text_of(msg_type: str, data: dict[str, Any]) -> str:
    def content(item: Any, key: str) -> str:
        part = item.get(key) if isinstance(item, dict) else None
        return str(part.get("content") or "") if isinstance(part, dict) else ""

    if msg_type == "text":
        return content(data, "text")
    if msg_type == "voice":  # 1:1 voice messages arrive transcribed
        return content(data, "voice")
    if msg_type == "mixed":
        mixed = data.get("mixed")
        items = mixed.get("msg_item") if isinstance(mixed, dict) else None
        if isinstance(items, list):
            return "\n".join(
                content(i, "text") for i in items if isinstance(i, dict) and i.get("msgtype") == "text"
            )
    return ""


@dataclass(slots=True, frozen=True)
class _Answer:
    """What the handler produced, or the stored stream of an earlier delivery of the same message."""

    text: str
    retry_of: AibotStream | None = None


class AibotChannel:
    """Serves ``/wecom/aibot``. ``reply_wait`` and ``stream_grace`` are attributes so tests can shorten them."""

    def __init__(self, bot: BotApp, crypto: CallbackCrypto) -> None:
        self.bot = bot
        self.crypto = crypto
        self.background = Background(bot)
        self.streams = AibotStreamRepo(bot.store.sessions)
        self.reply_wait = REPLY_WAIT
        # how long a late answer waits for a stream poll before it goes out through response_url
        self.stream_grace = 20.0
        bot.runtime.late_routes[CHANNEL] = self._deliver_late

    async def idle(self) -> None:
        """Wait until late answers have been handled (tests, shutdown)."""
        await self.background.idle()

    def add_routes(self, app: web.Application) -> None:
        """Mount ``GET`` (URL verification) and ``POST`` (messages) on ``/wecom/aibot``."""
        app.router.add_get(PATH, self.handle_get)
        app.router.add_post(PATH, self.handle_post)

    async def handle_get(self, request: web.Request) -> web.Response:
        """URL verification."""
        return await verify_url(CHANNEL, self.crypto, request)

    async def handle_post(self, request: web.Request) -> web.Response:
        """One callback: verify, decrypt, dispatch within the deadline, answer with an encrypted reply."""
        try:
            body = await read_body(request)
            query = self.crypto.signed_query(request.query)
            encrypt = _envelope(body)
            message = AibotMessage.parse(self.crypto.open(query, encrypt))
        except CallbackRejected as exc:
            return rejection(CHANNEL, request, exc)
        try:
            return await self._respond(message)
        except CallbackRejected as exc:
            return rejection(CHANNEL, request, exc)
        except DATABASE_DOWN:
            return unavailable(CHANNEL)
        except Exception:
            log.exception("aibot callback failed")
            return unavailable(CHANNEL)

    async def _respond(self, message: AibotMessage) -> web.Response:
        if message.msg_type == "stream":
            return await self._poll(message)
        if message.msg_type == "event":
            if message.event_type == "enter_chat":
                return self._reply({"msgtype": "text", "text": {"content": WELCOME}})
            return web.Response(text="")
        if not message.msg_id or not message.user_id:
            log.info("aibot callback without msgid or user; ignored")
            return web.Response(text="")
        stream_id = stream_id_for(message.msg_id)
        if message.msg_type not in ("text", "mixed", "voice") or not message.text.strip():
            return self._stream(stream_id, UNSUPPORTED, finish=True)
        event = Event(
            channel=CHANNEL,
            user_id=message.user_id,
            text=strip_mentions(message.text),
            received_at=self.bot.clock.now(),
            chat_id=message.chat_id,
            msg_id=message.msg_id,
            response_url=message.response_url,
        )
        try:
            outcome = await handle_within(
                self.background,
                self.bot,
                event,
                self.reply_wait,
                name=f"aibot:{stream_id}",
                on_later=lambda: self._stream_started(message, stream_id),
            )
        except RetryLater:
            # a retry while the first delivery is still being handled: if that one was answered "later",
            # its stream is on record and answers this one too; otherwise WeCom must try again (503)
            existing = await self.streams.get(stream_id)
            if existing is None:
                raise
            return await self._stream_state(existing)
        if isinstance(outcome, Later):
            # Only a late answer needs a stream on record (``on_later``): WeCom polls it (perhaps at another
            # process) until the answer, queued by ``_deliver_late`` in the handler's transaction, is there.
            return self._stream(stream_id, PLACEHOLDER, finish=False)
        if outcome is None or not outcome.text:
            # a retry of a message answered late (or answered with nothing): answer from its stream, if any
            existing = await self.streams.get(stream_id)
            if existing is not None:
                log.info("aibot message retried; answering from its stream")
                return await self._stream_state(existing)
            return web.Response(text="")
        return self._stream(stream_id, outcome.text, finish=True)

    async def _stream_started(self, message: AibotMessage, stream_id: str) -> None:
        await self.streams.start(
            stream_id=stream_id, msg_id=message.msg_id, response_url=message.response_url, now=self.bot.clock.now()
        )

    async def _deliver_late(self, event: Event, text: str) -> None:
        """The late route (in the message's unit of work): the answer goes into the message's stream, which
        WeCom's polls collect; the response URL is the fallback, held back a little. Whichever claims the
        stream first delivers it (``AibotStreamRepo.claim_delivery``)."""
        assert event.msg_id is not None
        stream_id = stream_id_for(event.msg_id)
        now = self.bot.clock.now()
        await self.streams.finish(stream_id, text, now, msg_id=event.msg_id, response_url=event.response_url)
        if not event.response_url:
            return
        await self.bot.runtime.outbox.send(
            Outbound(
                Target(TargetKind.RESPONSE_URL, event.response_url),
                text,
                dedupe_key=f"aibot:{event.msg_id}",
            ),
            not_before=now + timedelta(seconds=self.stream_grace),
        )

    async def _poll(self, message: AibotMessage) -> web.Response:
        if message.stream_id is None:
            raise CallbackRejected(400, "stream poll without a stream id")
        stream = await self.streams.get(message.stream_id)
        if stream is None:
            return self._stream(message.stream_id, "", finish=True)
        return await self._stream_state(stream)

    async def _stream_state(self, stream: AibotStream) -> web.Response:
        if not stream.finished:
            return self._stream(stream.stream_id, PLACEHOLDER, finish=False)
        if await self.streams.claim_delivery(StreamDelivery.STREAM, stream_id=stream.stream_id):
            return self._stream(stream.stream_id, stream.content or "", finish=True)
        return self._stream(stream.stream_id, ALREADY_SENT, finish=True)

    def _stream(self, stream_id: str, content: str, *, finish: bool) -> web.Response:
        return self._reply(
            {
                "msgtype": "stream",
                "stream": {"id": stream_id, "finish": finish, "content": clip(content, RESPONSE_URL_BYTES)},
            }
        )

    def _reply(self, payload: dict[str, Any]) -> web.Response:
        timestamp = str(int(self.bot.clock.now().timestamp()))
        sealed = self.crypto.encrypt(json.dumps(payload, ensure_ascii=False), timestamp=timestamp)
        return web.json_response(
            {
                "encrypt": sealed.encrypt,
                "msgsignature": sealed.signature,
                "timestamp": int(sealed.timestamp),
                "nonce": sealed.nonce,
            }
        )


def _envelope(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise CallbackRejected(400, "body is not JSON") from None
    encrypt = data.get("encrypt") if isinstance(data, dict) else None
    if not isinstance(encrypt, str) or not encrypt:
        raise CallbackRejected(400, "no encrypt field")
    return encrypt
