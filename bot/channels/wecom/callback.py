"""What both WeCom callback channels share: reading and rejecting requests, URL verification, the deadline.

Every callback is answered within WeCom's 5 s: the handler runs as a tracked background task and the request
waits for it at most ``reply_wait`` seconds; a slower answer is delivered later through the channel's late
route, queued in the handler's own transaction (``handle_within``, ``bot.core.delivery``). Bad input is
answered 400/403/413 and never reaches a handler; a database outage is answered 503 so that WeCom retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bot.app import BotApp
from bot.channels.wecom.crypto import CallbackCrypto, CallbackRejected
from bot.core.delivery import Delivery
from bot.core.messages import Event, Reply
from bot.core.middleware import ServiceUnavailable, message_key

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY = 64 * 1024
BODY_TIMEOUT = 10.0  # seconds to receive a callback's body (WeCom sends it at once; a trickle is an attack)
# How long a callback waits for its handler before answering "later"; WeCom allows 5 s in all, and the rest is
# left for reading, decrypting and answering under load.
REPLY_WAIT = 3.0

DATABASE_DOWN = (ServiceUnavailable, OperationalError, PoolTimeoutError, DBAPIError, OSError)


@dataclass(slots=True, frozen=True)
class Captured(Generic[T]):
    """The outcome of background work: its value, or the exception it raised."""

    value: T | None = None
    error: Exception | None = None

    def unwrap(self) -> T:
        """The value, or raise the exception."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


async def _captured(work: Coroutine[Any, Any, T]) -> Captured[T]:
    try:
        return Captured(value=await work)
    except Exception as exc:
        return Captured(error=exc)


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The request body; 413 when it is larger than ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise CallbackRejected(413, "body too large")
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise CallbackRejected(413, "body too large") from None
    except TimeoutError:
        raise CallbackRejected(408, "body not received in time") from None
    if len(body) > limit:
        raise CallbackRejected(413, "body too large")
    return body


def rejection(channel: str, request: web.Request, exc: CallbackRejected) -> web.Response:
    """The answer to a rejected callback (plain text, no detail an attacker could use)."""
    log.warning("%s callback rejected (%d): %s, from %s", channel, exc.status, exc.reason, request.remote)
    texts = {400: "bad request", 403: "forbidden", 408: "request timeout", 413: "request entity too large"}
    return web.Response(status=exc.status, text=texts.get(exc.status, "rejected"))


def unavailable(channel: str) -> web.Response:
    """503: the bot cannot act now; WeCom retries the callback."""
    log.warning("%s callback answered 503 (database unavailable, or the message is still being handled)", channel)
    return web.Response(status=503, text="service unavailable", headers={"Retry-After": "5"})


async def verify_url(channel: str, crypto: CallbackCrypto, request: web.Request) -> web.Response:
    """URL verification (``GET`` with ``echostr``): check the signature, answer the decrypted echostr."""
    try:
        query = crypto.signed_query(request.query)
        echostr = request.query.get("echostr", "")
        if not echostr:
            raise CallbackRejected(400, "missing echostr")
        try:
            crypto.verify(query, echostr)
        except CallbackRejected:
            # an unencoded "+" in the query string arrives as a space
            if " " not in echostr:
                raise
            echostr = echostr.replace(" ", "+")
            crypto.verify(query, echostr)
        plain = crypto.decrypt(echostr)
    except CallbackRejected as exc:
        return rejection(channel, request, exc)
    log.info("%s URL verified", channel)
    return web.Response(text=plain, content_type="text/plain")


class Background:
    """A channel's background tasks: spawned through the bot (drained on shutdown) and also kept here, so
    the channel can tell when its own work is done (``idle``) without waiting for the bot's long-lived tasks."""

    def __init__(self, bot: BotApp) -> None:
        self._bot = bot
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run ``work`` in the background."""
        task = self._bot.spawn(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self, within: float = 30.0) -> None:
        """Wait until the channel's background work (late answers) is done."""
        while self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)


@dataclass(slots=True, frozen=True)
class Later:
    """The handler missed the wait: its answer goes out through the channel's late route, queued in the same
    transaction as the message's effects (``bot.core.delivery``)."""

    task: asyncio.Task[Captured[Reply | None]]


async def handle_within(
    background: Background,
    bot: BotApp,
    event: Event,
    wait: float,
    *,
    name: str,
    on_later: Callable[[], Awaitable[None]] | None = None,
) -> Reply | Later | None:
    """Dispatch ``event``; its reply if the handler finishes within ``wait`` s, else ``Later``.

    When the wait ends just as the handler has settled on answering inline (its commit is under way), the
    commit is given ``LATE_WRITE_BUDGET`` more; if it is still not done the callback is answered 503 and
    WeCom's retry gets the recorded answer. Answering "later" is recorded in the inbox (a retry then waits
    for this handler instead of taking the message over), together with the channel's ``on_later`` writes,
    within ``LATE_WRITE_BUDGET``.
    """
    delivery = Delivery()
    task = background.spawn(_captured(bot.handle(event, delivery=delivery)), name=name)
    done, _ = await asyncio.wait({task}, timeout=wait)
    if task not in done:
        if delivery.give_up_waiting():
            background.spawn(_report_late(task, name), name=f"{name}:late")
            await bounded(background, _answered_later(bot, event, on_later), what=f"{name}:later")
            return Later(task)
        done, _ = await asyncio.wait({task}, timeout=LATE_WRITE_BUDGET)
        if task not in done:
            raise ServiceUnavailable("the answer's commit is still under way")
    return task.result().unwrap()


async def _answered_later(bot: BotApp, event: Event, on_later: Callable[[], Awaitable[None]] | None) -> None:
    if event.msg_id:
        await bot.store.dedupe.acknowledged(message_key(event.channel, event.msg_id), bot.clock.now())
    if on_later is not None:
        await on_later()


async def _report_late(task: asyncio.Task[Captured[Reply | None]], name: str) -> None:
    outcome = await task
    if isinstance(outcome.error, DATABASE_DOWN):
        log.warning("%s: database unavailable while finishing a late answer; the recovery worker will finish it", name)
    elif outcome.error is not None:
        log.error("%s: late answer failed", name, exc_info=outcome.error)


# How long a channel waits for the writes behind a "later" answer before answering anyway (the writes carry on
# in the background): REPLY_WAIT plus this stays within WeCom's 5 s even when the database stalls.
LATE_WRITE_BUDGET = 1.0


async def bounded(background: Background, work: Coroutine[Any, Any, Any], *, what: str) -> None:
    """Run ``work`` for at most ``LATE_WRITE_BUDGET`` s; if it takes longer it finishes in the background."""
    task = background.spawn(_quietly(work, what), name=what)
    await asyncio.wait({task}, timeout=LATE_WRITE_BUDGET)


async def _quietly(work: Coroutine[Any, Any, Any], what: str) -> None:
    try:
        await work
    except DATABASE_DOWN:
        log.warning("%s: database unavailable", what)
