"""Names from WeCom's directory (通讯录, ``cgi-bin/user/get``) for members the roster and the members table do
not name, through the app's credentials (a client of its own, whose token lives in memory only: a lookup runs
inside a handler's unit of work and must not wait for a database write).

Looked up only when a name is shown (``bot.services.studios.display_names``), cached in memory for ``ttl``; a
failure (no permission to the directory, 60011; an unknown user, 60111; WeCom unreachable; slower than
``timeout``) yields None, so the id is shown, and is cached for ``miss_ttl`` so a listing does not ask again
and again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.channels.wecom.client import WeComClient, WeComError

log = logging.getLogger(__name__)

USER_GET = "/cgi-bin/user/get"
MAX_NAME = 64
# a WeCom userid (1-64 letters, digits, _ - @ .); "system" is the bot's own actor in problem histories
_USERID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
NOT_PEOPLE = frozenset({"system"})


class WeComDirectory:
    """User id → name through ``user/get``, cached."""

    def __init__(
        self,
        client: WeComClient,
        *,
        now: Callable[[], datetime],
        ttl: timedelta = timedelta(hours=6),
        miss_ttl: timedelta = timedelta(minutes=5),
        timeout: float = 2.0,
        parallel: int = 4,
    ) -> None:
        self._client = client
        self._now = now
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._timeout = timeout
        self._cache: dict[str, tuple[str | None, datetime]] = {}
        self._pending: dict[str, asyncio.Task[str | None]] = {}
        self._slots = asyncio.Semaphore(parallel)
        self.lookups = 0  # user/get calls made (diagnostics, tests)

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        """The names WeCom knows for ``user_ids`` (those it does not, or cannot tell, are left out)."""
        wanted = list(dict.fromkeys(u for u in user_ids if _USERID.match(u) and u not in NOT_PEOPLE))
        found = await asyncio.gather(*(self.name(u) for u in wanted))
        return {u: n for u, n in zip(wanted, found, strict=True) if n}

    async def name(self, user_id: str) -> str | None:
        """The member's name, or None."""
        cached = self._cache.get(user_id)
        if cached is not None and cached[1] > self._now():
            return cached[0]
        task = self._pending.get(user_id)
        if task is None:  # one lookup per id at a time, however many listings ask
            task = asyncio.ensure_future(self._lookup(user_id))
            self._pending[user_id] = task
            task.add_done_callback(lambda _: self._pending.pop(user_id, None))
        return await asyncio.shield(task)

    async def _lookup(self, user_id: str) -> str | None:
        name: str | None = None
        async with self._slots:
            self.lookups += 1
            try:
                async with asyncio.timeout(self._timeout):
                    data = await self._client.api(USER_GET, None, params={"userid": user_id})
                raw = str(data.get("name") or "").strip()
                name = raw[:MAX_NAME] or None
            except WeComError as exc:
                log.info("user/get for a member not in the roster failed (%d); showing the id", exc.errcode)
            except TimeoutError:
                log.info("user/get took longer than %.1f s; showing the id", self._timeout)
        self._cache[user_id] = (name, self._now() + (self._ttl if name else self._miss_ttl))
        return name
