"""Files into WeCom: a stored file (``report_file``, e.g. the year report's workbook or a chart) is uploaded as
temporary media (``media/upload``, valid three days) and sent to a user as a file or image message through
``message/send``. The outbox row (target kind ``user_file``) holds the file's id, kind and name as JSON, so the
upload happens at delivery, in whichever process delivers it; a retry uploads again."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.channels.wecom.client import (
    FREQUENCY_LIMIT,
    SYSTEM_BUSY,
    TOKEN_ERRORS,
    WeComClient,
    WeComError,
    _errcode,
)
from bot.channels.wecom.senders import DUPLICATE_CHECK_SECONDS, USER_LIMITS, _deliver
from bot.core.messages import Target
from bot.core.outbox import DeliveryError
from bot.store.funds import FundRepo

MEDIA_KINDS = ("file", "image")
MAX_BYTES = {"file": 20 * 1024 * 1024, "image": 10 * 1024 * 1024}  # WeCom's limits for temporary media


def file_message(file_id: int, *, kind: str, name: str) -> str:
    """The outbox text of a ``user_file`` message."""
    return json.dumps({"file": file_id, "kind": kind, "name": name}, ensure_ascii=False)


async def upload_media(client: WeComClient, kind: str, name: str, content: bytes) -> str:
    """``POST /cgi-bin/media/upload?type=KIND`` (multipart, field ``media``); returns the media_id. A rejected
    token is refreshed once; other failures raise ``WeComError``."""
    url = f"{client.base_url}/cgi-bin/media/upload"
    refreshed = False
    while True:
        token = await client.access_token()
        form = aiohttp.FormData(quote_fields=False)  # WeCom shows the filename as sent: UTF-8, not %-encoded
        form.add_field("media", content, filename=name, content_type="application/octet-stream")
        try:
            async with client.session.post(
                url, params={"access_token": token, "type": kind}, data=form
            ) as response:
                if response.status >= 400:
                    raise WeComError(-3, f"HTTP {response.status}", retryable=response.status >= 500)
                data: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WeComError(
                -2, f"media/upload: {type(exc).__name__}", retryable=True, retry_after=30.0
            ) from exc
        errcode = _errcode(data)
        if errcode == 0 and data.get("media_id"):
            return str(data["media_id"])
        if errcode in TOKEN_ERRORS and not refreshed:
            refreshed = True
            await client._refresh(stale=token)
            continue
        raise WeComError(
            errcode,
            f"media/upload: {data.get('errmsg', '')}",
            retryable=errcode in (FREQUENCY_LIMIT, SYSTEM_BUSY),
        )


class UserFileSender:
    """A stored file to a user: upload, then a ``file`` (or ``image``) message through ``message/send``."""

    limits = USER_LIMITS

    def __init__(self, client: WeComClient, agent_id: str, files: FundRepo) -> None:
        self._client = client
        self._agent_id = int(agent_id)
        self._files = files

    async def send(self, target: Target, text: str) -> None:
        """Upload the file ``text`` names and send it to the user ``target.address``."""
        try:
            spec = json.loads(text)
            file_id, kind = int(spec["file"]), str(spec.get("kind", "file"))
        except (ValueError, KeyError, TypeError):
            raise DeliveryError("文件消息格式不对", retry_after=None) from None
        if kind not in MEDIA_KINDS:
            raise DeliveryError(f"不支持的文件类型 {kind}", retry_after=None)
        stored = await self._files.file(file_id)
        if stored is None:
            raise DeliveryError(f"文件 #{file_id} 已不存在", retry_after=None)
        if len(stored.content) > MAX_BYTES[kind]:
            raise DeliveryError(f"文件 {stored.name} 超过企业微信的大小上限", retry_after=None)
        try:
            media_id = await upload_media(self._client, kind, stored.name, stored.content)
        except WeComError as exc:
            raise DeliveryError(str(exc), retry_after=exc.retry_after if exc.retryable else None) from exc
        payload = {
            "touser": target.address,
            "msgtype": kind,
            "agentid": self._agent_id,
            kind: {"media_id": media_id},
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_SECONDS,
        }
        data = await _deliver(self._client.api("/cgi-bin/message/send", payload), "message/send")
        if data.get("invaliduser"):
            raise DeliveryError(f"message/send: 无效的用户 {data['invaliduser']}", retry_after=None)
