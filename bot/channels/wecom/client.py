"""An async WeCom API client on aiohttp: cached access token, one refresh at a time, bounded retries.

- ``gettoken`` is cached until ``refresh_margin`` before expiry, in memory and in the database (``wecom_token``),
  so several processes share one token; a refresh takes a lease in the database, so only one process fetches
  while the others wait for its token.
- A call answered 40001/40014/42001 refreshes the token once (only if no one refreshed it meanwhile) and is
  retried once; 45009 (frequency limit), -1 (system busy), HTTP 5xx and network errors back off exponentially;
  everything is bounded by ``max_attempts``.
- Nothing secret is logged: not the token, not the secret, not a webhook key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.store.wecom import CachedToken, TokenRepo

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
FREQUENCY_LIMIT = 45009
SYSTEM_BUSY = -1


class WeComError(Exception):
    """A WeCom API call failed. ``retryable`` says whether trying again later may succeed."""

    def __init__(self, errcode: int, errmsg: str, *, retryable: bool, retry_after: float = 60.0) -> None:
        super().__init__(f"WeCom error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.retryable = retryable
        self.retry_after = retry_after


class _Transient(Exception):
    """A failure worth retrying in a moment (network error, HTTP 5xx)."""


def mask(secret: str) -> str:
    """A secret shortened for logs: its first four characters."""
    return f"{secret[:4]}…" if secret else "—"


class WeComClient:
    """Calls the WeCom server API (and webhook / response URLs) with retries and a shared access token."""

    def __init__(
        self,
        *,
        base_url: str,
        corp_id: str,
        secret: str,
        now: Callable[[], datetime],
        tokens: TokenRepo | None = None,
        max_attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 10.0,
        refresh_margin: float = 300.0,
        lease_wait: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self._now = now
        self._tokens = tokens
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._margin = timedelta(seconds=refresh_margin)
        self._lease_wait = lease_wait
        # the secret is part of the key (hashed) so two apps of one corp keep separate tokens
        self._key = f"{corp_id}:{hashlib.sha256(secret.encode()).hexdigest()[:16]}"
        self._owner = f"{os.getpid()}-{id(self):x}"
        self._token: CachedToken | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.token_fetches = 0  # how many gettoken calls this client made (diagnostics)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session, created on first use (inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # -- calls ---------------------------------------------------------------------------------

    async def api(
        self, path: str, payload: Mapping[str, Any] | None = None, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Call a server API with the access token: POST ``payload`` as JSON, or GET when it is None."""
        return await self._call(f"{self.base_url}{path}", payload, params=dict(params or {}), auth=True)

    async def post(
        self, url: str, payload: Mapping[str, Any], *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """POST JSON to a URL that needs no access token (group robot webhook, AI-bot response URL)."""
        return await self._call(url, payload, params=dict(params or {}), auth=False)

    async def _call(
        self, url: str, payload: Mapping[str, Any] | None, *, params: dict[str, str], auth: bool
    ) -> dict[str, Any]:
        attempts = 0
        refreshed = False
        delay = self.backoff
        last: WeComError | None = None
        while attempts < self.max_attempts:
            attempts += 1
            token = await self.access_token() if auth else None
            query = {**params, "access_token": token} if token else params
            try:
                data = await self._exchange(url, payload, query)
            except _Transient as exc:
                last = WeComError(-2, str(exc), retryable=True, retry_after=30.0)
                log.info("WeCom call %s failed (%s), attempt %d", _path(url), exc, attempts)
                if attempts < self.max_attempts:  # no wait after the last attempt: the outbox retries later
                    await asyncio.sleep(delay)
                delay *= 2
                continue
            errcode = _errcode(data)
            if errcode == 0:
                return data
            errmsg = str(data.get("errmsg", ""))
            if auth and errcode in TOKEN_ERRORS and not refreshed:
                refreshed = True
                attempts -= 1  # the refresh-and-retry is free: it is not the call's fault
                log.info("WeCom access token rejected (%d); refreshing once", errcode)
                await self._refresh(stale=token)
                continue
            if errcode in (FREQUENCY_LIMIT, SYSTEM_BUSY):
                last = WeComError(errcode, errmsg, retryable=True, retry_after=60.0)
                log.info("WeCom call %s: %d %s, backing off", _path(url), errcode, errmsg)
                if attempts < self.max_attempts:
                    await asyncio.sleep(delay * (4 if errcode == FREQUENCY_LIMIT else 1))
                delay *= 2
                continue
            raise WeComError(errcode, errmsg, retryable=errcode in TOKEN_ERRORS, retry_after=60.0)
        assert last is not None
        raise last

    async def _exchange(
        self, url: str, payload: Mapping[str, Any] | None, params: Mapping[str, str]
    ) -> dict[str, Any]:
        method = "GET" if payload is None else "POST"
        try:
            async with self.session.request(method, url, params=params, json=payload) as response:
                if response.status >= 500 or response.status == 429:
                    raise _Transient(f"HTTP {response.status}")
                if response.status >= 400:
                    raise WeComError(-3, f"HTTP {response.status}", retryable=False)
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Transient(type(exc).__name__) from exc
        except ValueError as exc:  # not JSON
            raise _Transient("answer is not JSON") from exc
        if not isinstance(data, dict):
            raise _Transient("answer is not a JSON object")
        return data

    # -- access token --------------------------------------------------------------------------

    def _fresh(self, token: CachedToken | None) -> bool:
        return token is not None and token.expires_at - self._margin > self._now()

    async def access_token(self) -> str:
        """A valid access token: cached, shared through the database, or fetched."""
        token = self._token
        if token is not None and self._fresh(token):
            return token.value
        return await self._refresh(stale=None)

    async def _refresh(self, *, stale: str | None) -> str:
        """Get a token other than ``stale``: one refresh at a time in this process and across processes."""
        async with self._lock:
            token = self._token
            if token is not None and token.value != stale and self._fresh(token):
                return token.value  # someone refreshed while we waited for the lock
            if self._tokens is None:
                return await self._adopt(await self._fetch())
            loop = asyncio.get_running_loop()
            give_up = loop.time() + self._lease_wait
            while True:
                stored = await self._tokens.get(self._key)
                if stored is not None and stored.value != stale and self._fresh(stored):
                    return await self._adopt(stored)
                now = self._now()
                if await self._tokens.try_lease(self._key, self._owner, now, lease=timedelta(seconds=30)):
                    # the previous holder may have stored a new token between our read and our lease
                    stored = await self._tokens.get(self._key)
                    if stored is not None and stored.value != stale and self._fresh(stored):
                        await self._tokens.release(self._key, self._owner)
                        return await self._adopt(stored)
                    try:
                        fetched = await self._fetch()
                    except BaseException:
                        await self._tokens.release(self._key, self._owner)
                        raise
                    await self._tokens.store(self._key, fetched, self._owner, self._now())
                    return await self._adopt(fetched)
                if loop.time() > give_up:  # the lease holder seems stuck; fetch ourselves
                    return await self._adopt(await self._fetch())
                await asyncio.sleep(0.05)  # another process is fetching; wait for its token

    async def _adopt(self, token: CachedToken) -> str:
        self._token = token
        return token.value

    async def _fetch(self) -> CachedToken:
        url = f"{self.base_url}/cgi-bin/gettoken"
        params = {"corpid": self._corp_id, "corpsecret": self._secret}
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                data = await self._exchange(url, None, params)
            except _Transient as exc:
                log.info("gettoken failed (%s), attempt %d", exc, attempt)
                if attempt == self.max_attempts:
                    raise WeComError(-2, f"gettoken: {exc}", retryable=True, retry_after=60.0) from exc
                await asyncio.sleep(delay)
                delay *= 2
                continue
            errcode = _errcode(data)
            if errcode in (FREQUENCY_LIMIT, SYSTEM_BUSY) and attempt < self.max_attempts:
                await asyncio.sleep(delay * 4)
                delay *= 2
                continue
            if errcode != 0 or not data.get("access_token"):
                # a wrong corp id or secret: retryable, so queued messages survive until the settings are fixed
                raise WeComError(
                    errcode, f"gettoken: {data.get('errmsg', '')}", retryable=True, retry_after=300.0
                )
            self.token_fetches += 1
            expires_in = int(data.get("expires_in", 7200))
            log.info("fetched a WeCom access token for corp %s (valid %d s)", mask(self._corp_id), expires_in)
            return CachedToken(str(data["access_token"]), self._now() + timedelta(seconds=expires_in))
        raise AssertionError("unreachable")


def _errcode(data: Mapping[str, Any]) -> int:
    try:
        return int(data.get("errcode", 0))
    except (TypeError, ValueError):
        return -4


def _path(url: str) -> str:
    # for logs: the path only, never the query (which carries tokens and webhook keys)
    return url.split("?", 1)[0].split("://", 1)[-1].split("/", 1)[-1]
