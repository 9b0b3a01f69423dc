"""The dispatcher's middleware chain: error guard, deduplication, caller identification."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bot.core.dispatcher import Caller, Context, Middleware, Role
from bot.core.messages import Event, Reply
from bot.core.runtime import Runtime
from bot.settings import Settings
from bot.store.dedupe import CLAIM_LEASE
from bot.store.studios import MemberRole

log = logging.getLogger(__name__)

Next = Callable[[Context], Awaitable[Reply | None]]


class ServiceUnavailable(Exception):
    """The bot cannot act now (database unreachable); channels answer so that the platform retries."""


class RetryLater(ServiceUnavailable):
    """A retried message whose first delivery is still being handled: the platform should retry later."""


async def guard_errors(ctx: Context, call_next: Next) -> Reply | None:
    """Turn a handler bug into a polite reply; turn a database outage into ``ServiceUnavailable``."""
    try:
        return await call_next(ctx)
    except ServiceUnavailable:
        raise
    except (OperationalError, PoolTimeoutError, OSError, DBAPIError) as exc:
        if (
            isinstance(exc, DBAPIError)
            and not exc.connection_invalidated
            and not isinstance(exc, OperationalError)
        ):
            log.exception("database error while handling a message from %s", ctx.event.user_id)
            return Reply("抱歉，处理您的消息时出错了，已记录，请稍后再试。")
        log.warning("database unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable(str(exc)) from exc
    except Exception:
        log.exception("handler failed for a message from %s", ctx.event.user_id)
        return Reply("抱歉，处理您的消息时出错了，已记录，请稍后再试。")


def message_key(channel: str, msg_id: str) -> str:
    """The processed-message key of a channel's message id."""
    return f"{channel}:{msg_id}"


def dedupe_key(event: Event) -> str | None:
    """The processed-message key of an event (None: the channel gives no message id)."""
    return message_key(event.channel, event.msg_id) if event.msg_id else None


async def deduplicate(ctx: Context, call_next: Next) -> Reply | None:
    """Act on a message id once, across retries, processes and restarts; a retry of an answered message gets
    the same answer again (WeCom retries when the first answer did not reach it)."""
    key = dedupe_key(ctx.event)
    if key is None:
        return await call_next(ctx)
    store = ctx.runtime.store
    claimed = await store.dedupe.claim(key, ctx.runtime.clock.now(), lease=CLAIM_LEASE)
    if not claimed.new:
        if not claimed.answered:
            # still being handled (or its process died and the lease has not run out): WeCom must try again
            log.info("retried message %s is still being handled; asking for a later retry", key)
            raise RetryLater(key)
        log.info("retried message %s: %s", key, "answered again" if claimed.reply else "dropped")
        return Reply(claimed.reply) if claimed.reply else None
    reply = await call_next(ctx)
    await store.dedupe.answered(key, reply.text if reply is not None else "", ctx.runtime.clock.now())
    return reply


async def resolve_caller(runtime: Runtime, user_id: str) -> Caller:
    """Work out a user's role from settings (admins), granted roles and the roster."""
    store = runtime.store
    studios = tuple(s.id for s in await store.studios.led_by(user_id))
    alliances = tuple(a.id for a in await store.alliances.led_by(user_id))
    member = await store.members.get(user_id)
    granted = member.role if member else MemberRole.MEMBER.value
    if (
        member
        and member.alliance_id
        and granted == MemberRole.ALLIANCE_LEAD.value
        and member.alliance_id not in alliances
    ):
        alliances = (*alliances, member.alliance_id)
    if user_id in runtime.settings.admins or granted == MemberRole.ADMIN.value:
        role = Role.ADMIN
    elif alliances or granted == MemberRole.ALLIANCE_LEAD.value:
        role = Role.ALLIANCE_LEAD
    elif studios or granted == MemberRole.STUDIO_LEAD.value:
        role = Role.STUDIO_LEAD
    else:
        role = Role.MEMBER
    return Caller(user_id=user_id, role=role, studios=studios, alliances=alliances)


class Identify:
    """Attach the caller (role, led studios and alliances) and record that the user was seen.

    Roles are cached per process for ``ttl`` seconds: every message needs them, and they change rarely (a
    roster import or a grant in this process clears the cache at once; one in another process is seen within
    ``ttl``).
    """

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[int, float, Caller]] = {}

    async def caller(self, runtime: Runtime, user_id: str) -> Caller:
        """The caller, from the cache when fresh."""
        generation = runtime.store.roles.value
        now = time.monotonic()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] == generation and cached[1] > now:
            return cached[2]
        caller = await resolve_caller(runtime, user_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[user_id] = (generation, now + self.ttl, caller)
        return caller

    async def __call__(self, ctx: Context, call_next: Next) -> Reply | None:
        ctx.caller = await self.caller(ctx.runtime, ctx.event.user_id)
        await ctx.runtime.store.members.seen(ctx.event.user_id, ctx.runtime.clock.now())
        return await call_next(ctx)


class RateLimiter:
    """Per-user sliding-window limit on messages, so one runaway client cannot flood the studios.

    The first message over the limit gets a polite notice; further ones in the same window are dropped
    silently (answering each would flood the group in its own right). The state is per process.
    """

    def __init__(self, per_minute: int, *, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}

    def check(self, user_id: str, now: float) -> bool | None:
        """True: allowed; False: over the limit, notify; None: over the limit, already notified."""
        if self.per_minute <= 0:
            return True
        hits = self._hits.setdefault(user_id, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(self._hits) > 10_000:
            self._forget_idle(now)
        if len(hits) < self.per_minute:
            hits.append(now)
            return True
        warned = self._warned.get(user_id)
        if warned is not None and warned > now - self.window:
            return None
        self._warned[user_id] = now
        return False

    def _forget_idle(self, now: float) -> None:
        for user_id in [u for u, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[user_id]
            self._warned.pop(user_id, None)

    async def __call__(self, ctx: Context, call_next: Next) -> Reply | None:
        verdict = self.check(ctx.event.user_id, ctx.runtime.clock.now().timestamp())
        if verdict is True:
            return await call_next(ctx)
        log.info("rate limit: user %s over %d messages/min", ctx.event.user_id, self.per_minute)
        if verdict is False:
            return Reply(f"您发送消息太频繁了（每分钟最多 {self.per_minute} 条），请稍等一分钟再试。")
        return None


def default_middlewares(settings: Settings) -> list[Middleware]:
    """The standard chain, outermost first."""
    return [guard_errors, deduplicate, RateLimiter(settings.rate_limit_per_min), Identify()]
