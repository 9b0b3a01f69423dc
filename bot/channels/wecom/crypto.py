"""Callback crypto (WXBizMsgCrypt, developer.work.weixin.qq.com path/91144) with strict input checks.

AES-256-CBC with the IV taken from the key, PKCS#7 to 32-byte blocks; the plaintext is 16 random bytes, a
4-byte big-endian length, the message and the receive id. wechatpy's cipher does the AES; the framing is
checked here because wechatpy trusts it (a forged length or padding would otherwise surface as a 500), and the
signature is compared in constant time (wechatpy uses ``!=``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from wechatpy.crypto.cryptography import WeChatCipher

BLOCK = 32


class CallbackRejected(Exception):
    """A callback that must not be acted on; ``status`` is the HTTP answer (400, 403 or 413)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True, frozen=True)
class SignedQuery:
    """The ``msg_signature``, ``timestamp`` and ``nonce`` of a callback's query string."""

    signature: str
    timestamp: str
    nonce: str


@dataclass(slots=True, frozen=True)
class EncryptedReply:
    """An encrypted passive reply: the ciphertext and what signs it."""

    encrypt: str
    signature: str
    timestamp: str
    nonce: str


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """``sha1`` over the sorted concatenation of token, timestamp, nonce and ciphertext."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        key = b""
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise ValueError("an EncodingAESKey is 43 characters of base64")
    return key


class CallbackCrypto:
    """Verifies, decrypts and encrypts one channel's callbacks."""

    def __init__(
        self,
        *,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        max_age: int,
        now: Callable[[], datetime],
    ) -> None:
        self._token = token
        self._key = aes_key(encoding_aes_key)
        self.receive_id = receive_id
        self.max_age = max_age
        self._now = now

    def signed_query(self, query: Mapping[str, str]) -> SignedQuery:
        """The signature fields of a query string; 403 when missing or when the timestamp is stale."""
        sig, timestamp, nonce = (query.get(name, "") for name in ("msg_signature", "timestamp", "nonce"))
        if not sig or not timestamp or not nonce:
            raise CallbackRejected(403, "missing signature, timestamp or nonce")
        try:
            seconds = int(timestamp)
        except ValueError:
            raise CallbackRejected(403, "timestamp is not a number") from None
        if self.max_age and abs(self._now().timestamp() - seconds) > self.max_age:
            raise CallbackRejected(403, "stale timestamp")
        return SignedQuery(sig, timestamp, nonce)

    def verify(self, query: SignedQuery, encrypt: str) -> None:
        """Check the signature over ``encrypt`` in constant time; 403 when it does not match."""
        expected = signature(self._token, query.timestamp, query.nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), query.signature.lower().encode()):
            raise CallbackRejected(403, "bad signature")

    def decrypt(self, encrypt: str) -> str:
        """The plaintext of a ciphertext; 400 when malformed, 403 when addressed to another receive id."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected(400, "ciphertext is not base64") from None
        if not raw or len(raw) % 16:
            raise CallbackRejected(400, "ciphertext length is not a multiple of the AES block")
        plain = WeChatCipher(self._key).decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRejected(400, "bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CallbackRejected(400, "truncated plaintext")
        (length,) = struct.unpack(">I", content[:4])
        if 4 + length > len(content):
            raise CallbackRejected(400, "message length exceeds the plaintext")
        try:
            message = content[4 : 4 + length].decode("utf-8")
            receive_id = content[4 + length :].decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected(400, "plaintext is not UTF-8") from None
        if not hmac.compare_digest(receive_id.encode(), self.receive_id.encode()):
            raise CallbackRejected(403, "wrong receive id")
        return message

    def open(self, query: SignedQuery, encrypt: str) -> str:
        """Verify and decrypt in one step."""
        self.verify(query, encrypt)
        return self.decrypt(encrypt)

    def encrypt(self, message: str, *, timestamp: str, nonce: str | None = None) -> EncryptedReply:
        """Encrypt and sign a passive reply."""
        body = message.encode("utf-8")
        plain = os.urandom(16) + struct.pack(">I", len(body)) + body + self.receive_id.encode("utf-8")
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encrypt = base64.b64encode(WeChatCipher(self._key).encrypt(plain)).decode("ascii")
        nonce = nonce or base64.b32encode(os.urandom(10)).decode("ascii").lower()
        return EncryptedReply(encrypt, signature(self._token, timestamp, nonce, encrypt), timestamp, nonce)
