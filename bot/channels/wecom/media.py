"""Images in WeCom messages, downloaded at once, size-limited and checked to be an image.

- Long connection: from the message's URL (it expires in about five minutes), decrypted with the message's own
  ``aeskey`` (AES-256-CBC, the IV is the key's first 16 bytes, PKCS#7 padding to a 32-byte block; path/101463
  "多媒体资源解密").
- Self-built app: by the callback's ``MediaId`` through ``cgi-bin/media/get`` (获取临时素材, path/90254) with
  the app's access token; the answer is the file itself, or a JSON error (``errcode``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wecom.client import TOKEN_ERRORS, WeComClient, WeComError, _errcode
from bot.store.media import sniff_image

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # WeCom's own limit for an image
DOWNLOAD_TIMEOUT = 20.0


class MediaError(Exception):
    """An image could not be fetched, decrypted or accepted; the message is for the log, ``why`` (Chinese)
    for the user."""

    def __init__(self, message: str, why: str = "已过期或格式不支持") -> None:
        super().__init__(message)
        self.why = why


TOO_LARGE = "超过 10 MB"
NOT_AN_IMAGE = "不是 JPEG、PNG、GIF 或 WebP 图片"
UNREACHABLE = "暂时无法从企业微信下载"


@dataclass(slots=True, frozen=True)
class ImageRef:
    """An image in a message: where to fetch it and its key."""

    url: str
    aeskey: str


def images_of(body: dict[str, Any]) -> list[ImageRef]:
    """The images of an ``image`` or ``mixed`` message body."""
    items: list[Any]
    if body.get("msgtype") == "image":
        items = [body]
    elif body.get("msgtype") == "mixed" and isinstance(body.get("mixed"), dict):
        items = [i for i in body["mixed"].get("msg_item") or [] if isinstance(i, dict)]
    else:
        return []
    refs = []
    for item in items:
        image = item.get("image") if item.get("msgtype") == "image" else None
        if isinstance(image, dict) and image.get("url"):
            refs.append(ImageRef(str(image["url"]), str(image.get("aeskey") or "")))
    return refs


def decrypt(data: bytes, aeskey: str) -> bytes:
    """AES-256-CBC with the base64 ``aeskey``, IV its first 16 bytes, PKCS#7 padding up to 32 bytes."""
    try:
        key = base64.b64decode(aeskey + "=" * (-len(aeskey) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("aeskey is not base64") from None
    if len(key) != 32:
        raise MediaError("aeskey is not 32 bytes")
    if not data or len(data) % 16:
        raise MediaError("encrypted data is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 32 or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
        raise MediaError("bad padding (wrong key?)")
    return plain[:-pad]


async def fetch_image(session: aiohttp.ClientSession, ref: ImageRef) -> tuple[bytes, str]:
    """Download, decrypt and check one image: its bytes and MIME type."""
    try:
        async with session.get(ref.url, timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)) as response:
            if response.status != 200:
                raise MediaError(f"download answered {response.status}")
            if (response.content_length or 0) > MAX_IMAGE_BYTES + 32:
                raise MediaError("image too large", TOO_LARGE)
            data = await response.content.read(MAX_IMAGE_BYTES + 33)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MediaError(f"download failed: {type(exc).__name__}") from exc
    if len(data) > MAX_IMAGE_BYTES + 32:
        raise MediaError("image too large", TOO_LARGE)
    plain = decrypt(data, ref.aeskey) if ref.aeskey else data
    mime = sniff_image(plain)
    if mime is None:
        raise MediaError("not an image (JPEG, PNG, GIF or WebP)", NOT_AN_IMAGE)
    return plain, mime


async def download_media(client: WeComClient, media_id: str) -> tuple[bytes, str]:
    """``GET /cgi-bin/media/get?media_id=`` with the app's token: the image's bytes and MIME type. A rejected
    token is refreshed once; an error answer, an oversized file or one that is not an image raise
    ``MediaError``."""
    if not media_id:
        raise MediaError("no MediaId", "消息里没有图片")
    url = f"{client.base_url}/cgi-bin/media/get"
    refreshed = False
    while True:
        try:
            token = await client.access_token()
        except WeComError as exc:
            raise MediaError(f"no access token: {exc}", UNREACHABLE) from exc
        try:
            async with client.session.get(
                url,
                params={"access_token": token, "media_id": media_id},
                timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT),
            ) as response:
                if response.status != 200:
                    raise MediaError(f"media/get answered HTTP {response.status}", UNREACHABLE)
                if (response.content_length or 0) > MAX_IMAGE_BYTES:
                    raise MediaError("image too large", TOO_LARGE)
                data = await response.content.read(MAX_IMAGE_BYTES + 1)
                is_json = response.content_type in ("application/json", "text/plain")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MediaError(f"media/get failed: {type(exc).__name__}", UNREACHABLE) from exc
        if len(data) > MAX_IMAGE_BYTES:
            raise MediaError("image too large", TOO_LARGE)
        mime = sniff_image(data)
        if mime is not None:
            return data, mime
        errcode = _json_errcode(data) if is_json or data[:1] == b"{" else None
        if not errcode:  # not JSON, or JSON without an error: a file that is not an image
            raise MediaError("media/get: not an image (JPEG, PNG, GIF or WebP)", NOT_AN_IMAGE)
        if errcode in TOKEN_ERRORS and not refreshed:
            refreshed = True
            await client._refresh(stale=token)
            continue
        raise MediaError(f"media/get: errcode {errcode}", f"企业微信返回错误 {errcode}，可能已过期")


def _json_errcode(data: bytes) -> int | None:
    try:
        answer = json.loads(data)
    except ValueError:
        return None
    return _errcode(answer) if isinstance(answer, dict) and "errcode" in answer else None
