"""The outbox: outbound messages are written to the database first, then delivered by a worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bot.core.messages import Outbound, Target, TargetKind
from bot.store import Store
from bot.store.engine import after_commit
from bot.store.outbox import OutboxMessage, RateLimit, SendLogRepo

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


class DeliveryError(Exception):
    """A delivery attempt failed. ``retry_after`` (seconds) asks for a later retry; None means permanent."""

    def __init__(self, message: str, *, retry_after: float | None = 30.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Sender(Protocol):
    """Delivers one message to one kind of target.

    A sender may also have a ``limits`` attribute (a sequence of ``RateLimit``): the platform's per-target rate
    limits, which the worker keeps to across processes (see ``bot.store.outbox``). Senders without it (the
    console, test recorders) are not paced.
    """

    async def send(self, target: Target, text: str) -> None:
        """Deliver ``text``; raise ``DeliveryError`` on failure."""
        ...


def sender_available(sender: Sender) -> bool:
    """Whether a sender can deliver in this process now (a sender may have an ``available()`` method: the long
    connection delivers only in the process holding the socket; the others leave its messages to that one)."""
    available = getattr(sender, "available", None)
    return bool(available()) if callable(available) else True


def sender_limits(sender: Sender) -> Sequence[RateLimit]:
    """The rate limits a sender declares (none by default)."""
    limits: Sequence[RateLimit] = getattr(sender, "limits", ())
    return limits


class Outbox:
    """Queues outbound messages; the only way handlers and jobs send anything."""

    def __init__(self, store: Store, *, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now
        self.wakeup = asyncio.Event()

    async def send(self, *messages: Outbound, not_before: datetime | None = None) -> int:
        """Queue messages for delivery; returns how many were new (dedupe keys already queued are skipped).

        ``not_before`` holds them back until then (e.g. a fallback that another path may make unnecessary).
        """
        now = self._now()
        rows = [
            OutboxMessage(
                target_kind=m.target.kind.value,
                target=m.target.address,
                text=m.text,
                dedupe_key=m.dedupe_key,
                meta=dict(m.meta),
                created_at=now,
                next_attempt_at=max(now, not_before) if not_before else now,
            )
            for m in messages
        ]
        added = await self._store.outbox.add(rows)
        if added:
            after_commit(self.wakeup.set)  # inside a message's unit of work the rows are visible only then
        return added

    async def notify_user(
        self, user_id: str, text: str, *, dedupe_key: str | None = None, meta: Mapping[str, str] | None = None
    ) -> int:
        """Send a personal message to a WeCom user."""
        return await self.send(Outbound(Target(TargetKind.USER, user_id), text, dedupe_key, meta=dict(meta or {})))

    async def announce(
        self, alliance_id: str, text: str, *, dedupe_key: str | None = None, meta: Mapping[str, str] | None = None
    ) -> int:
        """Post to every group configured for an alliance (webhooks and app chats).

        An alliance with no configured group gets a console-group message, so nothing is silently dropped:
        in a WeCom deployment it shows up as failed in ``/outbox``.
        """
        alliance = await self._store.alliances.get(alliance_id)
        if alliance is None:
            raise LookupError(f"unknown alliance {alliance_id!r}")
        targets = await self._reachable(announce_targets(alliance.announce), alliance.announce)
        if not targets:
            targets = [Target(TargetKind.CONSOLE, f"{alliance.name}群")]
        # ``meta`` asks channels with cards for one (an activity's 报名 buttons); the rest send the text
        messages = [
            Outbound(t, text, f"{dedupe_key}|{t}" if dedupe_key else None, meta=dict(meta or {})) for t in targets
        ]
        return await self.send(*messages)


    async def _reachable(self, targets: list[Target], announce: Mapping[str, object]) -> list[Target]:
        """WeCom lets the AI bot push only into a group where someone has spoken to it: an announcement for
        a chat nobody has spoken in yet goes through that group's robot webhook when the roster pairs one
        with it, else it is still tried (WeCom's refusal then shows as failed in ``/outbox``)."""
        chats = [t.address for t in targets if t.kind is TargetKind.LONGCONN]
        if not chats:
            return targets
        seen = await self._store.chats_seen.seen(chats)
        webhooks = chat_webhooks(announce)
        out: list[Target] = []
        for target in targets:
            if target.kind is TargetKind.LONGCONN and target.address not in seen:
                key = webhooks.get(target.address.partition(":")[2])
                if key:
                    target = Target(TargetKind.WEBHOOK, key)
                else:
                    log.warning(
                        "announce: nobody has spoken to the bot in %s yet and the roster pairs no webhook "
                        "with it; pushing anyway (WeCom may refuse)",
                        target.address,
                    )
            if target not in out:
                out.append(target)
        return out


def _chat_entries(announce: Mapping[str, object]) -> list[tuple[str, str | None]]:
    """The roster's AI-bot group chats as ``(chat id, paired webhook key or None)``."""
    chats = announce.get("chats") or []
    if not isinstance(chats, Iterable) or isinstance(chats, str):
        return []
    entries: list[tuple[str, str | None]] = []
    for chat in chats:
        if isinstance(chat, Mapping):
            webhook = chat.get("webhook")
            entries.append((str(chat.get("id", "")), str(webhook) if webhook else None))
        else:
            entries.append((str(chat), None))
    return [(chat_id, webhook) for chat_id, webhook in entries if chat_id]


def chat_webhooks(announce: Mapping[str, object]) -> dict[str, str]:
    """The group robot webhook the roster pairs with each AI-bot group chat."""
    return {chat_id: webhook for chat_id, webhook in _chat_entries(announce) if webhook}


def announce_targets(announce: Mapping[str, object]) -> list[Target]:
    """The targets an alliance's ``announce`` roster entry names."""
    targets: list[Target] = []
    for key, kind in (("webhooks", TargetKind.WEBHOOK), ("appchats", TargetKind.APPCHAT)):
        values = announce.get(key) or []
        if isinstance(values, Iterable) and not isinstance(values, str):
            targets.extend(Target(kind, str(v)) for v in values)
    # group chats of the AI bot's long connection (cards, pushes)
    targets.extend(Target(TargetKind.LONGCONN, f"group:{chat_id}") for chat_id, _ in _chat_entries(announce))
    return targets


CLAIM_LEASE = timedelta(seconds=60)
# How long a worker keeps trying to record a send that succeeded (well within CLAIM_LEASE), seconds.
RECORD_SENT_PATIENCE = 25.0


class OutboxWorker:
    """Claims due messages, delivers them with the sender for their target kind and records the outcome.

    Pacing: before a send to a rate-limited target the worker reserves a slot in the shared send log; when the
    target's window is full the message is deferred to when a slot frees up, without counting as an attempt.
    Stopping (task cancellation) lets the message in flight finish and be recorded, and releases the rest of
    the batch, so a restart neither loses nor repeats a message.
    """

    def __init__(
        self,
        store: Store,
        senders: Mapping[TargetKind, Sender],
        *,
        now: Callable[[], datetime],
        batch: int = 50,
        parallel: int = 16,
    ) -> None:
        self._store = store
        self._senders = dict(senders)
        self._now = now
        self._batch = batch
        self._parallel = parallel
        self._sends = SendLogRepo(store.sessions)

    async def run_once(self, *, stop: Callable[[], bool] = lambda: False) -> int:
        """Deliver everything due now, batch by batch until ``stop()`` says so; returns how many messages were
        attempted (deferred ones excluded).

        Messages to one target go in order, one at a time; different targets are served concurrently (up to
        ``parallel`` sends in flight), so one slow target or a slow platform does not hold up the rest.
        """
        attempted = 0
        saturated: dict[str, datetime] = {}  # target → when its window frees up, within this pass
        while not stop():
            elsewhere = [kind.value for kind, sender in self._senders.items() if not sender_available(sender)]
            due = await self._store.outbox.claim_due(
                self._now(), limit=self._batch, lease=CLAIM_LEASE, skip_kinds=elsewhere
            )
            if not due:
                return attempted
            attempted += await self._deliver_batch(due, saturated, stop)
        return attempted

    async def _deliver_batch(
        self, due: Sequence[OutboxMessage], saturated: dict[str, datetime], stop: Callable[[], bool]
    ) -> int:
        chains: dict[str, list[OutboxMessage]] = {}
        for message in due:
            chains.setdefault(f"{message.target_kind}:{message.target}", []).append(message)
        deferred: dict[datetime, list[int]] = {}
        started: set[int] = set()
        in_flight: set[asyncio.Future[None]] = set()
        slots = asyncio.Semaphore(self._parallel)
        # The batch is leased for CLAIM_LEASE; what has not started well within it goes back to the queue (the
        # next claim takes it up again, in order), so a slow platform never lets a lease run out mid-send.
        cutoff = self._now() + CLAIM_LEASE / 2
        handed_back: list[int] = []

        async def chain(key: str, messages: list[OutboxMessage]) -> None:
            async with slots:
                for position, message in enumerate(messages):
                    assert message.id is not None
                    if self._now() >= cutoff or stop():  # a stopping worker hands the rest back
                        handed_back.extend(m.id for m in messages[position:] if m.id is not None)
                        return
                    sender = self._sender_for(message)
                    limits = sender_limits(sender) if sender is not None else ()
                    if limits:
                        free_at = saturated.get(key)
                        if free_at is None or free_at <= self._now():  # a window that freed up meanwhile
                            free_at = await self._sends.reserve(key, message.id, self._now(), limits)
                        if free_at is not None:
                            saturated[key] = free_at
                            deferred.setdefault(free_at, []).append(message.id)
                            continue
                        saturated.pop(key, None)
                    started.add(message.id)
                    delivery = asyncio.ensure_future(self._deliver(message, sender))
                    in_flight.add(delivery)
                    await asyncio.shield(delivery)  # a stop lets the send finish and be recorded

        tasks = [asyncio.ensure_future(chain(key, messages)) for key, messages in chains.items()]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            # stopping: record the messages in flight (sent or not), and hand the rest of the batch back at
            # once instead of leaving it leased
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, *in_flight, return_exceptions=True)
            waiting = [m.id for m in due if m.id is not None and m.id not in started]
            held = {i for ids in deferred.values() for i in ids}
            await self._store.outbox.release([i for i in waiting if i not in held])
            raise
        finally:
            for until, ids in deferred.items():
                await self._store.outbox.defer(ids, until)
        if handed_back:
            await self._store.outbox.release(handed_back)
        return len(started)

    def _sender_for(self, message: OutboxMessage) -> Sender | None:
        try:
            return self._senders.get(TargetKind(message.target_kind))
        except ValueError:
            return None

    async def _deliver(self, message: OutboxMessage, sender: Sender | None) -> None:
        assert message.id is not None
        doubt = message.sending_since is not None
        if doubt:
            log.warning(
                "outbox message %s to %s was in flight when its worker stopped (since %s): it may have been "
                "delivered; sending it again (message/send drops a repeat, a group may see it twice)",
                message.id,
                message.target_kind,
                message.sending_since,
            )
        await self._store.outbox.mark_sending(message.id, self._now(), in_doubt=doubt)
        try:
            kind = TargetKind(message.target_kind)
            if sender is None:
                raise DeliveryError(f"没有可投递此类消息（{kind.value}）的渠道：请检查企业微信设置或花名册的 announce 配置", retry_after=None)
            send_with_meta = getattr(sender, "send_with_meta", None)
            if callable(send_with_meta):  # a sender that reads the message's meta (cards on the long connection)
                await send_with_meta(Target(kind, message.target), message.text, dict(message.meta or {}))
            else:
                await sender.send(Target(kind, message.target), message.text)
        except DeliveryError as exc:
            self._record_failure(message, str(exc), exc.retry_after)
            await self._store.outbox.mark_retry(
                message.id, error=str(exc), retry_at=self._retry_at(message, exc.retry_after)
            )
            return
        except Exception as exc:  # a bug in a sender must not stop the worker
            log.exception("outbox message %s: unexpected delivery error", message.id)
            await self._store.outbox.mark_retry(
                message.id, error=repr(exc), retry_at=self._retry_at(message, 60.0)
            )
            return
        await self._record_sent(message.id)

    async def _record_sent(self, message_id: int) -> None:
        """Record a successful send. The message went out: if the database is briefly away, keep trying (while
        the lease still holds it) rather than leave it pending, to be sent a second time after the lease."""
        delay, waited = 0.25, 0.0
        while True:
            try:
                await self._store.outbox.mark_sent(message_id, self._now())
                return
            except (OperationalError, DBAPIError, OSError, PoolTimeoutError) as exc:
                if waited + delay > RECORD_SENT_PATIENCE:
                    log.error("outbox message %s was sent but could not be recorded: %s", message_id, exc)
                    raise
                log.warning("outbox message %s sent; recording it failed (%s), retrying", message_id, exc)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 4.0)

    def _retry_at(self, message: OutboxMessage, retry_after: float | None) -> datetime | None:
        if retry_after is None or message.attempts + 1 >= MAX_ATTEMPTS:
            return None
        backoff = max(retry_after, 5.0 * 2**message.attempts)
        return self._now() + timedelta(seconds=min(backoff, 3600))

    @staticmethod
    def _record_failure(message: OutboxMessage, error: str, retry_after: float | None) -> None:
        log.warning(
            "outbox message %s to %s failed (attempt %d): %s%s",
            message.id,
            message.target_kind,
            message.attempts + 1,
            error,
            "" if retry_after is not None else " — giving up",
        )
