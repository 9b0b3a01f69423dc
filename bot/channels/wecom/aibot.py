"""The WeCom AI bot (智能机器人) callback, ``/wecom/aibot``: group @mentions and 1:1 messages.

JSON envelope ``{"encrypt": …}`` with receive id ``""`` (developer.work.weixin.qq.com path/100719, 101031).
A message is answered with an encrypted ``stream`` reply. When the handler is quick, the stream is finished in
the passive reply; when it is not, the reply is an unfinished stream and the answer follows when WeCom polls the
stream (``msgtype: stream``) or, if no poll collects it in time, through the message's ``response_url`` (via
the outbox). The reply stream lives in the database (``aibot_stream``), so a poll or a retry reaching another
process gets the same answer, and a retried message is acted on once.

Photos (``image``, and ``mixed`` text + images) are downloaded at once, decrypted with the callback's own
EncodingAESKey (path/100719: AES-256-CBC, IV = the key's first 16 bytes, PKCS#7 to 32 bytes) and attached to the
asker's problem as on the long connection (``bot.channels.wecom.attach``). A reply that offers a typed command a
card button stands for (``/认领 12``, ``/报名 7``, ``/附议 T-3``) is a ``template_card`` with those buttons; a click
(``template_card_event``) is that typed command from the clicking user, and the passive reply updates the card
with the outcome (path/101031, 101027).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.app import BotApp
from bot.channels.wecom.attach import Fetched, PhotoAttacher
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
from bot.channels.wecom.cards import (
    CARD_DONE,
    CARD_PENDING,
    CARD_WAIT,
    SUB_TITLE_BYTES,
    click_of,
    command_for_key,
    offered_card,
    reply_card,
    task_id_for,
    updated_card,
)
from bot.channels.wecom.crypto import CallbackCrypto, CallbackRejected
from bot.channels.wecom.media import ImageRef, images_of
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
UNSUPPORTED = "抱歉，我目前只能处理文字消息和照片，请用文字描述您的问题（可以附上照片）。"
# how long a callback waits for its images: the rest of REPLY_WAIT is left for the handler
FETCH_WAIT = 2.0
MIN_HANDLER_WAIT = 1.0
CARD_HINT = "点下面的按钮，等同发送上文中的命令。"
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
    images: tuple[ImageRef, ...] = field(default=())  # of an ``image`` or ``mixed`` message
    card_key: str = ""  # a ``template_card_event``: the clicked button's key
    task_id: str = ""  # and the card's task id

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
        card_key, task_id = click_of(event) if event.get("eventtype") == "template_card_event" else ("", "")
        return cls(
            msg_id=str(data.get("msgid") or ""),
            msg_type=msg_type,
            user_id=str(sender.get("userid") or ""),
            chat_id=(str(data.get("chatid") or "") or None) if chat_type == "group" else None,
            text=_text_of(msg_type, data),
            response_url=str(data.get("response_url") or "") or None,
            stream_id=str(stream.get("id") or "") or None,
            event_type=str(event.get("eventtype") or "") or None,
            images=tuple(images_of(data)),
            card_key=card_key,
            task_id=task_id,
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
        self.fetch_wait = FETCH_WAIT
        self.card_wait = CARD_WAIT
        self.attacher = PhotoAttacher(bot, CHANNEL)
        self._aes_key = bot.settings.wecom_aibot_aes_key  # also the key of the images' ciphertext
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
            if message.event_type == "template_card_event":
                return await self._click(message)
            return web.Response(text="")
        if not message.msg_id or not message.user_id:
            log.info("aibot callback without msgid or user; ignored")
            return web.Response(text="")
        stream_id = stream_id_for(message.msg_id)
        text = strip_mentions(message.text)
        loop = asyncio.get_running_loop()
        started = loop.time()
        fetched: Fetched | None = None
        if message.images and message.msg_type in ("image", "mixed"):
            # fetched at once (the URLs expire in minutes), within part of the callback's deadline
            refs = [ImageRef(r.url, r.aeskey or self._aes_key) for r in message.images]
            fetched = await self.attacher.fetch(refs, msg_id=message.msg_id, within=self.fetch_wait)
        if message.msg_type not in ("text", "mixed", "voice") or not text:
            if fetched is None:
                return self._stream(stream_id, UNSUPPORTED, finish=True)
            note = await self._attach(message, fetched, own_key=None)
            return self._stream(stream_id, note, finish=True)
        event = Event(
            channel=CHANNEL,
            user_id=message.user_id,
            text=text,
            received_at=self.bot.clock.now(),
            chat_id=message.chat_id,
            msg_id=message.msg_id,
            response_url=message.response_url,
        )
        wait = self.reply_wait
        if fetched is not None:  # the download took part of the deadline
            wait = max(min(MIN_HANDLER_WAIT, wait), wait - (loop.time() - started))
        try:
            outcome = await handle_within(
                self.background,
                self.bot,
                event,
                wait,
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
            if fetched is not None:
                self.background.spawn(
                    self._attach_late(message, stream_id, outcome, fetched), name=f"aibot:{stream_id}:photos"
                )
            return self._stream(stream_id, PLACEHOLDER, finish=False)
        # the photos join the problem this message logged, else the asker's latest one in this chat
        own_key = f"{CHANNEL}:{message.msg_id}"
        note = await self._attach(message, fetched, own_key=own_key) if fetched is not None else ""
        if outcome is None or not outcome.text:
            # a retry of a message answered late (or answered with nothing): answer from its stream, if any
            existing = await self.streams.get(stream_id)
            if existing is not None:
                log.info("aibot message retried; answering from its stream")
                return await self._stream_state(existing)
            return self._stream(stream_id, note, finish=True) if note else web.Response(text="")
        return self._answer(stream_id, outcome.text + (f"\n{note}" if note else ""), msg_id=message.msg_id)

    def _answer(self, stream_id: str, text: str, *, msg_id: str) -> web.Response:
        """The passive reply to a message: a card with buttons when the text offers typed commands that
        buttons stand for, else a finished stream."""
        offer = offered_card(text)
        if offer is None:
            return self._stream(stream_id, text, finish=True)
        # the task id is unique per reply (WeCom refuses a repeated one) and the same for a retried message
        task_id = task_id_for(offer[1], msg_id, text, kind=f"reply-{offer[0]}")
        if len(text.encode()) <= SUB_TITLE_BYTES:
            card = reply_card(text, task_id=task_id)
            assert card is not None
            return self._reply({"msgtype": "template_card", "template_card": card})
        # too long for a card's text: the text as the stream, and the card with the buttons under it
        return self._stream_with_card(stream_id, text, task_id)

    def _stream_with_card(self, stream_id: str, text: str, task_id: str) -> web.Response:
        card = reply_card(CARD_HINT, task_id=task_id, offered_by=text)
        assert card is not None
        stream = {"id": stream_id, "finish": True, "content": clip(text, RESPONSE_URL_BYTES)}
        return self._reply({"msgtype": "stream_with_template_card", "stream": stream, "template_card": card})

    async def _attach(self, message: AibotMessage, fetched: Fetched, *, own_key: str | None) -> str:
        return await self.attacher.attach(
            msg_id=message.msg_id,
            user_id=message.user_id,
            chat_id=message.chat_id,
            fetched=fetched,
            own_key=own_key,
        )

    async def _attach_late(self, message: AibotMessage, stream_id: str, later: Later, fetched: Fetched) -> None:
        """After a late answer: attach the photos to the problem it logged; the note joins the answer in the
        stream if WeCom has not collected it yet."""
        outcome = await later.task  # the answer is committed (and in the stream) once the handler is done
        if outcome.error is not None:  # not logged (yet): an older problem must not get this message's photos
            log.warning("aibot message %s: its handler failed; its photos were not attached", message.msg_id)
            return
        note = await self._attach(message, fetched, own_key=f"{CHANNEL}:{message.msg_id}")
        if note and not await self.streams.append(stream_id, f"\n{note}"):
            log.info("aibot message %s: the answer went out before its photo note", message.msg_id)

    async def _click(self, message: AibotMessage) -> web.Response:
        """A card button: the typed command it stands for, from the clicking user, through the dispatcher
        (exactly once per event); the passive reply updates the card with the answer or the refusal."""
        parsed = command_for_key(message.card_key)
        if parsed is None or not message.user_id or not message.msg_id:
            log.info("aibot: a card click the bot did not make (%r); ignored", message.card_key[:60])
            return web.Response(text="")
        click = Event(
            channel=CHANNEL,
            user_id=message.user_id,
            text=parsed[1],
            received_at=self.bot.clock.now(),
            chat_id=message.chat_id,
            msg_id=f"click:{message.msg_id}",
            response_url=message.response_url,  # a late answer goes there
        )
        outcome = await handle_within(
            self.background, self.bot, click, self.card_wait, name=f"aibot:click:{message.msg_id[:32]}"
        )
        if isinstance(outcome, Later):
            result = CARD_PENDING
        else:
            result = outcome.text if outcome is not None and outcome.text else CARD_DONE
        card = updated_card(message.card_key, result, task_id=message.task_id)
        return self._reply({"response_type": "update_template_card", "template_card": card})

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
        # a card click has no stream WeCom would poll: its answer goes out at once
        grace = 0.0 if event.msg_id.startswith("click:") else self.stream_grace
        await self.bot.runtime.outbox.send(
            Outbound(
                Target(TargetKind.RESPONSE_URL, event.response_url),
                text,
                dedupe_key=f"aibot:{event.msg_id}",
            ),
            not_before=now + timedelta(seconds=grace),
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
            content = stream.content or ""
            offer = offered_card(content)
            if offer is None:
                return self._stream(stream.stream_id, content, finish=True)
            # a late answer offering typed commands: its buttons in a card under the finished stream
            task_id = task_id_for(offer[1], stream.msg_id, content, kind=f"reply-{offer[0]}")
            return self._stream_with_card(stream.stream_id, content, task_id)
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
