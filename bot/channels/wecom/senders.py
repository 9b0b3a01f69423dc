"""Outbox senders for WeCom: ``message/send`` (users), ``appchat/send`` (app groups), group robot webhooks
and AI-bot response URLs. Each declares the platform's rate limits; the outbox worker paces itself to them."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

from bot.channels.wecom.client import WeComClient, WeComError, mask
from bot.core.messages import Target
from bot.core.outbox import DeliveryError
from bot.store.outbox import RateLimit
from bot.store.wecom import AibotStreamRepo, StreamDelivery

log = logging.getLogger(__name__)

# Platform limits (developer.work.weixin.qq.com): message/send 30/min and 1000/h per member, group robot
# 20/min per robot. appchat/send allows 200/min per member; a group is paced like a member to stay well clear.
USER_LIMITS = (RateLimit(30, 60), RateLimit(1000, 3600))
APPCHAT_LIMITS = (RateLimit(30, 60),)
WEBHOOK_LIMITS = (RateLimit(20, 60),)

TEXT_BYTES = 2048  # text messages
MARKDOWN_BYTES = 4096  # robot markdown messages
RESPONSE_URL_BYTES = 20480  # AI-bot markdown via response_url


# WeCom markdown's live syntax, each replaced by a full-width look-alike: the bot's own texts use no markdown,
# so everything sent as markdown is plain text made inert (a member's <@all>, [link](url) or <font> included)
_MARKDOWN_LIVE = str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］", "*": "＊", "`": "｀"})
_LINE_START = re.compile(r"^([ \t]*)([#>\-+]|\d+\.)", re.MULTILINE)
# hosts a late AI-bot answer may be posted to: WeCom's own (and the configured API base, e.g. a proxy)
WECOM_HOSTS = ("qyapi.weixin.qq.com",)


def markdown_plain(text: str) -> str:
    """``text`` as WeCom markdown that shows exactly these characters and renders nothing: no mentions,
    links, colours, emphasis, headings, quotes or lists."""
    inert = text.translate(_MARKDOWN_LIVE)
    return _LINE_START.sub(lambda m: m.group(1) + "\u200b" + m.group(2), inert)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, marked when cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker = "…（内容过长，已截断）"
    room = limit - len(marker.encode("utf-8"))
    return data[:room].decode("utf-8", errors="ignore") + marker


async def _deliver(call: Awaitable[dict[str, Any]], what: str) -> dict[str, Any]:
    try:
        return await call
    except WeComError as exc:
        raise DeliveryError(f"{what}: {exc}", retry_after=exc.retry_after if exc.retryable else None) from exc


DUPLICATE_CHECK_SECONDS = 1800  # WeCom's default; far longer than an outbox lease (60 s) and its retries


class UserSender:
    """A personal message through the app: ``message/send`` (studio leads asked to take a problem…).

    With ``cards`` (the app's callback is configured, so clicks come back), a lead's request for a problem is a
    ``template_card`` with 认领 / 转派 buttons (``bot.channels.wecom.cards``); otherwise everything is text, which
    names the typed commands."""

    limits = USER_LIMITS

    def __init__(self, client: WeComClient, agent_id: str, *, cards: bool = False) -> None:
        self._client = client
        self._agent_id = int(agent_id)
        self._cards = cards

    async def send_with_meta(self, target: Target, text: str, meta: dict[str, str]) -> None:
        """Where cards are on: a lead's request for a problem (认领 / 转派), the answer relayed to the asker
        (已解决 / 还没解决), a personal notice of an activity (报名 / 取消报名) or of a call for topic support
        (附议) as a card; anything else as ``send`` does."""
        card = self._card(target, text, meta) if self._cards else None
        if card is not None:
            await self._message(target, {"msgtype": "template_card", "template_card": card})
            return
        await self.send(target, text)

    @staticmethod
    def _card(target: Target, text: str, meta: dict[str, str]) -> dict[str, Any] | None:
        # imported here: the cards module uses this one's ``clip``
        from bot.channels.wecom.cards import (
            ANSWER_BUTTONS,
            APP_PROBLEM_BUTTONS,
            announcement_card,
            problem_card,
            task_id_for,
        )

        kind = meta.get("card", "")
        if kind in ("problem", "answer") and meta.get("problem", "").isdigit():
            number = int(meta["problem"])
            buttons = APP_PROBLEM_BUTTONS if kind == "problem" else ANSWER_BUTTONS
            task_id = task_id_for(number, target.address, text, kind="problem" if kind == "problem" else "answer")
            card = problem_card(number, text, task_id=task_id, buttons=buttons)
            if kind == "answer":  # the answer's own title (as the long connection's answer card)
                head = text.partition("\n")[0].rstrip("：:")
                card["main_title"] = {"title": clip(head or f"问题 #{number} 的答复", 120)}
            return card
        if kind in ("activity", "topic") and meta.get(kind, "").isdigit():
            number = int(meta[kind])
            return announcement_card(
                kind, number, text, task_id=task_id_for(number, target.address, text, kind=kind)
            )
        return None

    async def send(self, target: Target, text: str) -> None:
        """Send ``text`` to the user ``target.address``."""
        await self._message(target, {"msgtype": "text", "text": {"content": clip(text, TEXT_BYTES)}})

    async def _message(self, target: Target, body: dict[str, Any]) -> None:
        payload = {
            "touser": target.address,
            "agentid": self._agent_id,
            **body,
            # a send taken over after its worker died may have been delivered: WeCom drops the same request
            # within the interval, so a person never gets a message twice (app chats and robots have no such check)
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_SECONDS,
        }
        data = await _deliver(self._client.api("/cgi-bin/message/send", payload), "message/send")
        if data.get("invaliduser"):
            # WeCom answers errcode 0 and names the users it could not reach
            raise DeliveryError(f"message/send: 无效的用户 {data['invaliduser']}", retry_after=None)


class AppChatSender:
    """A message to a group the app created: ``appchat/send``."""

    limits = APPCHAT_LIMITS

    def __init__(self, client: WeComClient) -> None:
        self._client = client

    async def send(self, target: Target, text: str) -> None:
        """Send ``text`` to the app chat ``target.address``."""
        payload = {"chatid": target.address, "msgtype": "text", "text": {"content": clip(text, TEXT_BYTES)}}
        await _deliver(self._client.api("/cgi-bin/appchat/send", payload), "appchat/send")


class WebhookSender:
    """A message to an existing group through its group robot: ``webhook/send?key=KEY``."""

    limits = WEBHOOK_LIMITS

    def __init__(self, client: WeComClient) -> None:
        self._client = client

    async def send(self, target: Target, text: str) -> None:
        """Post ``text`` (markdown) through the robot whose key is ``target.address``."""
        payload = {"msgtype": "markdown", "markdown": {"content": clip(markdown_plain(text), MARKDOWN_BYTES)}}
        url = f"{self._client.base_url}/cgi-bin/webhook/send"
        await _deliver(
            self._client.post(url, payload, params={"key": target.address}), f"webhook {mask(target.address)}"
        )


class ResponseUrlSender:
    """The late answer to an AI-bot message, posted once to its ``response_url``.

    A slow answer may also be collected by WeCom polling the reply stream; whichever path claims the stream
    first delivers it, so the user never sees it twice.
    """

    limits: tuple[RateLimit, ...] = ()

    def __init__(self, client: WeComClient, streams: AibotStreamRepo) -> None:
        self._client = client
        self._streams = streams
        self._hosts = {*WECOM_HOSTS, urlsplit(client.base_url).hostname or ""} - {""}

    def allowed(self, url: str) -> bool:
        """Whether ``url`` is a WeCom response URL (https on WeCom's host, or the configured API base)."""
        parts = urlsplit(url)
        if parts.hostname not in self._hosts:
            return False
        return parts.scheme == "https" or url.startswith(self._client.base_url + "/")

    async def send(self, target: Target, text: str) -> None:
        """Post ``text`` (markdown) to the response URL ``target.address`` unless the stream delivered it."""
        if not self.allowed(target.address):
            raise DeliveryError(f"response_url 不是企业微信的地址（{urlsplit(target.address).hostname}），拒绝发送", retry_after=None)
        if not await self._streams.claim_delivery(StreamDelivery.RESPONSE_URL, response_url=target.address):
            log.info("late AI-bot answer already collected by a stream poll; not posting it again")
            return
        payload = {"msgtype": "markdown", "markdown": {"content": clip(markdown_plain(text), RESPONSE_URL_BYTES)}}
        await _deliver(self._client.post(target.address, payload), "response_url")
