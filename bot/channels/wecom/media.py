"""Images in long-connection messages: downloaded at once (WeCom's URLs expire in about five minutes),
decrypted with the message's own ``aeskey`` (AES-256-CBC, the IV is the key's first 16 bytes, PKCS#7 padding
to a 32-byte block; path/101463 "多媒体资源解密"), size-limited and checked to be an image."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.store.media import sniff_image

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # WeCom's own limit for an image
DOWNLOAD_TIMEOUT = 20.0


class MediaError(Exception):
    """An image could not be fetched, decrypted or accepted; the message is for the log and the user."""


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
                raise MediaError("image too large")
            data = await response.content.read(MAX_IMAGE_BYTES + 33)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MediaError(f"download failed: {type(exc).__name__}") from exc
    if len(data) > MAX_IMAGE_BYTES + 32:
        raise MediaError("image too large")
    plain = decrypt(data, ref.aeskey) if ref.aeskey else data
    mime = sniff_image(plain)
    if mime is None:
        raise MediaError("not an image (JPEG, PNG, GIF or WebP)")
    return plain, mime
