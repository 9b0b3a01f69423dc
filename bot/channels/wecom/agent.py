"""The self-built app callback (自建应用 接收消息), ``/wecom/app``: 1:1 commands from leads and app events.

XML envelope with ``<Encrypt>``, receive id = CorpID (developer.work.weixin.qq.com path/90930, 96466). A quick
answer is an encrypted passive XML reply; a slow one is acknowledged with an empty body at once and delivered
through ``message/send`` (the outbox) when ready. Retried messages are dropped by the dispatcher's deduplication
(``MsgId``; events by ``FromUserName`` + ``CreateTime``).

Photos (``MsgType`` ``image``) are downloaded at once by their ``MediaId`` (``media/get``), checked, stored and
attached to the asker's problem as on the long connection (``bot.channels.wecom.attach``); a retried callback attaches
once (the photo's key is the ``MsgId``) and downloads once while the first is still at work.

Card clicks (``template_card_event``: ``EventKey``, ``TaskId``, ``ResponseCode``) are exactly the typed command
the button stands for (``bot.channels.wecom.cards``), from the clicking user, through the dispatcher (dedupe by
the click's ``ResponseCode``, caller, role check, handler, audit); the card is then updated with the answer
through ``message/update_template_card`` with that ``ResponseCode`` (usable once, for 72 hours).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

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
    ANSWER_BUTTONS,
    APP_PROBLEM_BUTTONS,
    CARD_DONE,
    CARD_PENDING,
    CARD_WAIT,
    command_for_key,
    updated_card,
)
from bot.channels.wecom.client import WeComClient, WeComError
from bot.channels.wecom.crypto import CallbackCrypto, CallbackRejected
from bot.channels.wecom.media import MediaError, download_media
from bot.channels.wecom.senders import TEXT_BYTES, clip
from bot.core.messages import Event

log = logging.getLogger(__name__)

CHANNEL = "app"
PATH = "/wecom/app"
WELCOME = "您好，我是工作室联盟助手。发送 /帮助 查看我能做什么。"
UNSUPPORTED = "抱歉，我目前只能处理文字和图片消息，请用文字描述您的问题。"


def parse_xml(data: bytes | str) -> dict[str, str]:
    """The child elements of an XML document's root as a dict; 400 when it is not plain, well-formed XML."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        # a hardened parser: no DTD, no entities, whatever the document's encoding (a UTF-16 envelope
        # hides "<!DOCTYPE" from a byte search)
        root = defused_fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError, RecursionError):
        raise CallbackRejected(400, "malformed XML or XML with a DTD") from None
    return {child.tag: (child.text or "") for child in root}


def _app_buttons(key: str) -> tuple[tuple[str, str, str, int], ...] | None:
    """The buttons a clicked app card was sent with: a lead's request (认领 / 转派) or the asker's answer card
    (已解决 / 还没解决); activity and topic cards keep the long connection's."""
    if key.startswith(("problem:solve:", "problem:unsolved:")):
        return ANSWER_BUTTONS
    return APP_PROBLEM_BUTTONS if key.startswith("problem:") else None


def _short(value: str) -> str:
    """``value``, or its digest when it is too long for a processed-message key."""
    return value if len(value) <= 128 else hashlib.sha256(value.encode()).hexdigest()


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass(slots=True, frozen=True)
class AppMessage:
    """The fields of a decrypted app callback the bot uses."""

    to_user: str
    from_user: str
    create_time: str
    msg_type: str
    content: str
    msg_id: str
    event: str
    event_key: str
    media_id: str = ""
    task_id: str = ""
    response_code: str = ""

    @classmethod
    def parse(cls, plaintext: str) -> AppMessage:
        """Read a decrypted callback."""
        fields = parse_xml(plaintext)
        return cls(
            to_user=fields.get("ToUserName", ""),
            from_user=fields.get("FromUserName", ""),
            create_time=fields.get("CreateTime", ""),
            msg_type=fields.get("MsgType", ""),
            content=fields.get("Content", "") or fields.get("Recognition", ""),
            msg_id=fields.get("MsgId", ""),
            event=fields.get("Event", ""),
            event_key=fields.get("EventKey", ""),
            media_id=fields.get("MediaId", ""),
            task_id=fields.get("TaskId", ""),
            response_code=fields.get("ResponseCode", ""),
        )

    @property
    def dedupe_id(self) -> str:
        """``MsgId``, or for events ``FromUserName`` + ``CreateTime`` (WeCom's advice)."""
        return self.msg_id or f"{self.from_user}:{self.create_time}:{self.event}"


class AppChannel:
    """Serves ``/wecom/app``. ``reply_wait`` is an attribute so tests can shorten it."""

    def __init__(self, bot: BotApp, crypto: CallbackCrypto) -> None:
        self.bot = bot
        self.crypto = crypto
        self.background = Background(bot)
        self.reply_wait = REPLY_WAIT
        self.card_wait = CARD_WAIT
        self.attacher = PhotoAttacher(bot, CHANNEL)
        self._photos: dict[str, asyncio.Task[str]] = {}  # MsgId → the photo being kept (a retry waits for it)
        bot.runtime.late_routes[CHANNEL] = self._deliver_late

    async def idle(self) -> None:
        """Wait until late answers have been handled (tests, shutdown)."""
        await self.background.idle()

    def add_routes(self, app: web.Application) -> None:
        """Mount ``GET`` (URL verification) and ``POST`` (messages, events) on ``/wecom/app``."""
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
            encrypt = parse_xml(body).get("Encrypt", "")
            if not encrypt:
                raise CallbackRejected(400, "no Encrypt element")
            message = AppMessage.parse(self.crypto.open(query, encrypt))
        except CallbackRejected as exc:
            return rejection(CHANNEL, request, exc)
        try:
            return await self._respond(message)
        except DATABASE_DOWN:
            return unavailable(CHANNEL)
        except Exception:
            log.exception("app callback failed")
            return unavailable(CHANNEL)

    async def _respond(self, message: AppMessage) -> web.Response:
        if not message.from_user:
            return web.Response(text="")
        if message.msg_type == "event" and message.event == "template_card_event":
            return await self._click(message)
        if message.msg_type == "event":
            text = self._event_command(message)
            if text is None:
                return web.Response(text="")
        elif message.msg_type in ("text", "voice"):
            text = message.content
        elif message.msg_type == "image":
            return await self._photo(message)
        else:
            return self._reply(message, UNSUPPORTED)
        event = Event(
            channel=CHANNEL,
            user_id=message.from_user,
            text=text,
            received_at=self.bot.clock.now(),
            msg_id=message.dedupe_id,
        )
        outcome = await handle_within(
            self.background, self.bot, event, self.reply_wait, name=f"app:{message.dedupe_id}"
        )
        if isinstance(outcome, Later):
            # the answer goes out through message/send when ready (``_deliver_late``, in the handler's
            # transaction); an empty body means "no passive reply", and WeCom does not retry
            return web.Response(text="")
        if outcome is None or not outcome.text:
            return web.Response(text="")
        return self._reply(message, outcome.text)

    async def _click(self, message: AppMessage) -> web.Response:
        """A card button: the typed command it stands for, dispatched as the clicking user's message (exactly
        once per click); the card is then updated with the answer, or the reason it was refused."""
        parsed = command_for_key(message.event_key)
        if parsed is None or not message.response_code:
            log.info("app: a card click the bot did not make (%r); ignored", message.event_key[:60])
            return web.Response(text="")
        _, text = parsed
        click = Event(
            channel=CHANNEL,
            user_id=message.from_user,
            text=text,
            received_at=self.bot.clock.now(),
            msg_id=f"click:{_short(message.response_code)}",
        )
        # a database outage raises (answered 503): WeCom retries the click, which is then acted on once
        outcome = await handle_within(
            self.background, self.bot, click, self.card_wait, name=f"app:click:{message.response_code[:32]}"
        )
        if isinstance(outcome, Later):
            result = CARD_PENDING  # the answer follows through message/send (the late route)
        else:
            result = outcome.text if outcome is not None and outcome.text else CARD_DONE
        buttons = _app_buttons(message.event_key)
        card = updated_card(message.event_key, result, task_id=message.task_id, buttons=buttons)
        self.background.spawn(self._update_card(message, card), name=f"app:card:{message.response_code[:32]}")
        return web.Response(text="")

    async def _update_card(self, message: AppMessage, card: dict[str, object]) -> None:
        """``message/update_template_card`` for the clicking user with the click's ResponseCode."""
        payload = {
            "userids": [message.from_user],
            "agentid": int(self.bot.settings.wecom_agent_id or 0),
            "response_code": message.response_code,
            "template_card": card,
        }
        try:
            await self.bot.runtime.feature(WeComClient).api("/cgi-bin/message/update_template_card", payload)
        except (WeComError, LookupError) as exc:
            # a retried click's code is used up already: its card shows the first answer
            log.warning("app: card %s not updated (%s)", message.task_id[:40], exc)

    async def _photo(self, message: AppMessage) -> web.Response:
        """An ``image`` callback: the photo kept within the deadline and the asker told in the passive reply,
        or (a slow download) acknowledged at once and the asker told through ``message/send``."""
        key = message.dedupe_id
        task = self._photos.get(key)
        if task is None:
            task = self.background.spawn(self._keep_photo(message), name=f"app:photo:{key[:32]}")
            self._photos[key] = task
            task.add_done_callback(lambda _: self._photos.pop(key, None))
        done, _ = await asyncio.wait({task}, timeout=self.reply_wait)
        if task not in done:
            self.background.spawn(self._photo_later(message, task), name=f"app:photo-later:{key[:32]}")
            return web.Response(text="")
        note = task.result()  # a database error is answered 503 by the caller: WeCom retries
        return self._reply(message, note) if note else web.Response(text="")

    async def _keep_photo(self, message: AppMessage) -> str:
        """Download, check, store and attach the photo; what to tell the asker."""
        known = await self.attacher.already_attached(msg_id=message.dedupe_id)
        if known is not None:
            return known
        fetched = Fetched()
        try:
            data, mime = await download_media(self.bot.runtime.feature(WeComClient), message.media_id)
            fetched.images.append((1, data, mime))
        except MediaError as exc:
            log.warning("app: the photo of message %s was not kept: %s", message.dedupe_id, exc)
            fetched.failed, fetched.why = 1, exc.why
        return await self.attacher.attach(
            msg_id=message.dedupe_id, user_id=message.from_user, chat_id=None, fetched=fetched, own_key=None
        )

    async def _photo_later(self, message: AppMessage, task: asyncio.Task[str]) -> None:
        try:
            note = await task
        except Exception:
            log.exception("app: keeping the photo of message %s failed", message.dedupe_id)
            note = "抱歉，这张照片没能保存（系统暂时不可用），请稍后重新发送。"
        if note:
            await self.bot.runtime.outbox.notify_user(
                message.from_user, note, dedupe_key=f"app:{message.dedupe_id}:photo"
            )

    @staticmethod
    def _event_command(message: AppMessage) -> str | None:
        """What an app event means as a command; None for events the bot does not act on."""
        if message.event == "subscribe":
            return "/帮助"
        if message.event == "click" and message.event_key.startswith(("/", "／")):
            return message.event_key  # a menu button whose key is a command
        return None

    async def _deliver_late(self, event: Event, text: str) -> None:
        """The late route: the answer as a personal message (queued in the message's unit of work)."""
        await self.bot.runtime.outbox.notify_user(event.user_id, text, dedupe_key=f"app:{event.msg_id}")

    def _reply(self, message: AppMessage, text: str) -> web.Response:
        timestamp = str(int(self.bot.clock.now().timestamp()))
        inner = (
            "<xml>"
            f"<ToUserName>{_cdata(message.from_user)}</ToUserName>"
            f"<FromUserName>{_cdata(message.to_user)}</FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{_cdata(clip(text, TEXT_BYTES))}</Content>"
            "</xml>"
        )
        sealed = self.crypto.encrypt(inner, timestamp=timestamp)
        outer = (
            "<xml>"
            f"<Encrypt>{_cdata(sealed.encrypt)}</Encrypt>"
            f"<MsgSignature>{_cdata(sealed.signature)}</MsgSignature>"
            f"<TimeStamp>{sealed.timestamp}</TimeStamp>"
            f"<Nonce>{_cdata(sealed.nonce)}</Nonce>"
            "</xml>"
        )
        return web.Response(text=outer, content_type="application/xml")
