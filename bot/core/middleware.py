"""The dispatcher's middleware chain: exactly-once handling, error guard, rate limit, caller identification.

``exactly_once`` claims a message (putting it on record, with its content) before anything acts on it, then
runs everything inside in one unit of work that ends by marking the message done: its effects, its outbound
messages, a late answer and the done mark commit together or not at all. ``guard_errors`` runs the handler in
a savepoint, so a handler bug rolls back what the handler wrote and the apology is what gets recorded.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bot.core.dispatcher import Caller, Context, Middleware, Role
from bot.core.messages import Event, Reply
from bot.core.runtime import Runtime
from bot.settings import Settings
from bot.store.dedupe import CLAIM_LEASE
from bot.store.engine import current_unit, outside_unit, unit_of_work
from bot.store.studios import MemberRole

log = logging.getLogger(__name__)

Next = Callable[[Context], Awaitable[Reply | None]]


class ServiceUnavailable(Exception):
    """The bot cannot act now (database unreachable); channels answer so that the platform retries."""


class RetryLater(ServiceUnavailable):
    """A retried message whose first delivery is still being handled: the platform should retry later."""


APOLOGY = "抱歉，处理您的消息时出错了，已记录，请稍后再试。"
DATABASE_ERRORS = (OperationalError, PoolTimeoutError, OSError, DBAPIError)


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means "unavailable now" (retry later) rather than "this message fails"."""
    if isinstance(exc, OperationalError | PoolTimeoutError | OSError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def guard_errors(ctx: Context, call_next: Next) -> Reply | None:
    """A handler bug rolls back what the handler wrote (the message's unit of work is discarded) and becomes
    a polite reply, which is what gets recorded; a database outage becomes ``ServiceUnavailable``."""
    try:
        return await call_next(ctx)
    except ServiceUnavailable:
        raise
    except (OperationalError, PoolTimeoutError, OSError, DBAPIError) as exc:
        if not is_outage(exc):
            log.exception("database error while handling a message from %s", ctx.event.user_id)
            await _discard_unit()
            return Reply(APOLOGY)
        log.warning("database unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable(str(exc)) from exc
    except Exception:
        log.exception("handler failed for a message from %s", ctx.event.user_id)
        await _discard_unit()
        return Reply(APOLOGY)


async def _discard_unit() -> None:
    unit = current_unit()
    if unit is not None:
        await unit.discard()


def message_key(channel: str, msg_id: str) -> str:
    """The processed-message key of a channel's message id."""
    return f"{channel}:{msg_id}"


def dedupe_key(event: Event) -> str | None:
    """The processed-message key of an event (None: the channel gives no message id)."""
    return message_key(event.channel, event.msg_id) if event.msg_id else None


class _ClaimLost(Exception):
    """The message's claim was taken over while it was being handled: this handling must roll back."""


async def exactly_once(ctx: Context, call_next: Next) -> Reply | None:
    """Act on a message once, across retries, processes, restarts and crashes.

    The claim puts the message on record (with its content) before the callback is answered; everything else
    runs in one unit of work that ends with the "done" mark, so a retry either gets the recorded answer or
    redoes the message from nothing. A retry of a message still being handled is asked to come back later.
    """
    runtime = ctx.runtime
    store = runtime.store
    key = dedupe_key(ctx.event)
    try:
        if key is None:  # no platform message id (the console): one transaction, no inbox
            async with unit_of_work(store.engine):
                return await call_next(ctx)
        claimed = ctx.claimed
        if claimed is None:
            claimed = await store.dedupe.claim(
                key, runtime.clock.now(), lease=CLAIM_LEASE, event=ctx.event.to_record()
            )
        if not claimed.new:
            if not claimed.answered:
                # still being handled (or its process died and the lease has not run out): WeCom must try again
                log.info("retried message %s is still being handled; asking for a later retry", key)
                raise RetryLater(key)
            log.info("retried message %s: %s", key, "answered again" if claimed.reply else "dropped")
            return Reply(claimed.reply) if claimed.reply else None
        await runtime.warm(ctx.event)  # heavy preparation before the transaction holds a connection
        try:
            async with unit_of_work(store.engine):
                reply = await call_next(ctx)
                text = reply.text if reply is not None else ""
                recorded = text
                if text and not ctx.delivery.keep_inline():
                    route = runtime.late_routes.get(ctx.event.channel)
                    if route is not None:
                        await route(ctx.event, text)
                    recorded = ""  # went out late: a retry must not get it a second time
                    reply = None
                if not await store.dedupe.finish(key, claimed.owner, recorded, runtime.clock.now()):
                    raise _ClaimLost(key)
        except _ClaimLost:
            log.warning("message %s was taken over while being handled here; this handling is rolled back", key)
            return None
        return reply
    except DATABASE_ERRORS as exc:
        if not is_outage(exc):
            raise
        log.warning("database unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable(str(exc)) from exc


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
    if member and member.studio_id and granted == MemberRole.STUDIO_LEAD.value and member.studio_id not in studios:
        studios = (*studios, member.studio_id)
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

    Roles are cached per process until they change: a roster import or a grant bumps the role version (in
    this process at once; in the database, in the same transaction, for every other process, which reads it
    at most once a second), so an occasional user's message costs no role query at all.
    """

    def __init__(self, max_users: int = 10_000) -> None:
        self.max_users = max_users
        self._cache: dict[str, tuple[tuple[int, int], Caller]] = {}

    async def caller(self, runtime: Runtime, user_id: str) -> Caller:
        """The caller, from the cache while the role version is unchanged."""
        version = await runtime.store.roles.current()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        caller = await resolve_caller(runtime, user_id)
        if len(self._cache) >= self.max_users:
            self._cache.clear()
        self._cache[user_id] = (version, caller)
        return caller

    async def __call__(self, ctx: Context, call_next: Next) -> Reply | None:
        # read on a connection of its own: the message's unit takes its connection only when the handler
        # first needs it (on SQLite there is one, and a slow handler that needs none should not hold it)
        ctx.caller = await outside_unit(lambda: self.caller(ctx.runtime, ctx.event.user_id))
        # bookkeeping, written behind and in batches: it never fails or delays a message
        ctx.runtime.store.members.seen(ctx.event.user_id, ctx.runtime.clock.now())
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
    return [exactly_once, RateLimiter(settings.rate_limit_per_min), Identify(), guard_errors]
