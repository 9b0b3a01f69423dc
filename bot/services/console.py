"""The web console's sign-in: one-time links (signed, single use, valid ``LINK_MINUTES``) and sessions with an
idle timeout, kept in the database so that every process agrees. Who the signed-in user is allowed to be comes
from the same role resolution as the chat (``resolve_caller``).

A link is ``base64url(JSON {u, e, n}) "." base64url(HMAC-SHA256)``: the user, the expiry (Unix seconds) and a
random nonce, signed with a secret the database keeps. Redeeming it records the nonce, so a second use fails.
The session cookie is a random value; only its SHA-256 is stored, with a CSRF token for the session's forms."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.dispatcher import Caller
from bot.core.middleware import resolve_caller
from bot.core.runtime import Runtime
from bot.store.console import ConsoleRepo, ConsoleSession
from bot.store.engine import outside_unit

LINK_MINUTES = 10
TOUCH_EVERY = timedelta(seconds=60)  # a session's idle clock is written at most once a minute
COOKIE = "console_session"


class SignInRefused(Exception):
    """A sign-in link that opens nothing; the message says why, in Chinese."""


@dataclass(slots=True, frozen=True)
class OpenedSession:
    """A session just opened: the cookie value to set (shown once) and the stored row."""

    cookie: str
    session: ConsoleSession


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_hash(cookie: str) -> str:
    """The stored id of a session cookie."""
    return hashlib.sha256(cookie.encode("utf-8")).hexdigest()


class ConsoleService:
    """Sign-in links and sessions of the web console (registered as a feature service)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.repo = ConsoleRepo(runtime.store.sessions)
        self._secret: bytes | None = None
        # signed-in users' roles and names until roles change (a roster import or a grant bumps the version)
        self._viewers: dict[str, tuple[tuple[int, int], Caller, str]] = {}

    @property
    def base_url(self) -> str:
        """Where users reach the bot: ``BOT_PUBLIC_URL``, else serve's own address."""
        settings = self.runtime.settings
        return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when the console is reached over HTTPS."""
        return self.base_url.startswith("https://")

    @property
    def idle(self) -> timedelta:
        """How long a session may sit unused before it ends."""
        return timedelta(minutes=self.runtime.settings.console_idle_minutes)

    async def _key(self) -> bytes:
        if self._secret is None:
            # on connections of its own: a chat message's unit must not hold the write of a first secret
            stored: str = await outside_unit(lambda: self.repo.secret(secrets.token_urlsafe(48)))
            self._secret = stored.encode("ascii")
        return self._secret

    async def link(self, user_id: str) -> str:
        """A one-time sign-in link for ``user_id``, valid ``LINK_MINUTES`` minutes."""
        expires = self.runtime.clock.now() + timedelta(minutes=LINK_MINUTES)
        payload = json.dumps(
            {"u": user_id, "e": int(expires.timestamp()), "n": secrets.token_urlsafe(16)},
            separators=(",", ":"),
        ).encode("utf-8")
        signature = hmac.new(await self._key(), payload, hashlib.sha256).digest()
        return f"{self.base_url}/console/login?token={_b64(payload)}.{_b64(signature)}"

    async def redeem(self, token: str) -> OpenedSession:
        """Open a session with a sign-in link's token; raises ``SignInRefused`` for a forged, expired or used one."""
        body, dot, mac = token.strip().partition(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise SignInRefused("登录链接不完整或已损坏。") from None
        expected = hmac.new(await self._key(), payload, hashlib.sha256).digest()
        if not dot or not hmac.compare_digest(expected, signature):
            raise SignInRefused("登录链接无效（签名不符）。")
        try:
            claims = json.loads(payload)
            user_id, expiry, nonce = str(claims["u"]), int(claims["e"]), str(claims["n"])
        except (ValueError, KeyError, TypeError):
            raise SignInRefused("登录链接无效。") from None
        now = self.runtime.clock.now()
        expires_at = datetime.fromtimestamp(expiry, UTC)
        if now >= expires_at:
            raise SignInRefused(f"登录链接已过期（有效期 {LINK_MINUTES} 分钟）。")
        if not await self.repo.use_link(nonce, user_id=user_id, at=now, expires_at=expires_at):
            raise SignInRefused("这个登录链接已经用过了，每个链接只能用一次。")
        cookie = secrets.token_urlsafe(32)
        session = await self.repo.open(
            session_id=session_hash(cookie), user_id=user_id, csrf=secrets.token_urlsafe(24), at=now
        )
        return OpenedSession(cookie=cookie, session=session)

    async def session(self, cookie: str | None) -> ConsoleSession | None:
        """The live session a cookie names (its idle clock moved on), or None: unknown, signed out or idle."""
        if not cookie:
            return None
        session_id = session_hash(cookie)
        found = await self.repo.get(session_id)
        if found is None:
            return None
        now = self.runtime.clock.now()
        if now - found.last_seen_at >= self.idle:
            await self.repo.end(session_id)
            return None
        if now - found.last_seen_at >= TOUCH_EVERY:
            await self.repo.touch(session_id, now)
        return found

    async def sign_out(self, cookie: str | None) -> None:
        """End the session a cookie names."""
        if cookie:
            await self.repo.end(session_hash(cookie))

    async def caller(self, user_id: str) -> Caller:
        """The signed-in user's role, led studios and alliances, as the chat sees them."""
        return await resolve_caller(self.runtime, user_id)

    async def viewer(self, user_id: str) -> tuple[Caller, str]:
        """The signed-in user's role (as ``caller``) and display name, cached while roles are unchanged."""
        from bot.services.studios import display_names

        version = await self.runtime.store.roles.current()
        cached = self._viewers.get(user_id)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        caller = await self.caller(user_id)
        name = (await display_names(self.runtime.store, [user_id]))[user_id]
        if len(self._viewers) >= 10_000:
            self._viewers.clear()
        self._viewers[user_id] = (version, caller, name)
        return caller, name

    async def prune(self, now: datetime) -> str:
        """Forget idle sessions and expired used links (the nightly job)."""
        removed = await self.repo.prune(idle_before=now - self.idle, links_before=now - timedelta(days=1))
        return f"removed {removed} sessions"
