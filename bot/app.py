"""The composition root: settings → store → runtime and feature services → dispatcher → channels, scheduler and outbox worker."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.core.clock import Clock, SystemClock
from bot.core.delivery import Delivery
from bot.core.dispatcher import Dispatcher, Router
from bot.core.messages import Event, Reply, TargetKind
from bot.core.middleware import APOLOGY, DATABASE_ERRORS, default_middlewares
from bot.core.outbox import Outbox, OutboxWorker, Sender
from bot.core.runtime import Runtime
from bot.core.scheduler import JobRegistry
from bot.handlers import core_routers
from bot.routing.text import use_cache_dir
from bot.settings import Settings
from bot.store import Store
from bot.store.dedupe import MAX_ATTEMPTS, RECOVERY_AFTER, Claimed
from bot.store.engine import calls_of, unit_of_work

log = logging.getLogger(__name__)

# Feature modules with an ``async def setup(bot: BotApp) -> None``; they add routers, services, jobs and routes.
# Research topics come before events so that ``/join T-3`` (and ``#T-3``) reaches topics and ``/join 3`` events.
FEATURES: tuple[str, ...] = (
    "bot.handlers.problems",
    "bot.handlers.topics",
    "bot.handlers.achievements",
    "bot.handlers.evaluations",
    "bot.handlers.reports",
    "bot.handlers.funds",
    "bot.handlers.talent",
    "bot.handlers.benefits",
    "bot.handlers.activities",
    "bot.handlers.outbox",
    "bot.handlers.console",
    "bot.channels.wecom.mount",
)

WebSetup = Callable[[web.Application], None]
RECOVERY_POLL = 10.0  # seconds between passes of the recovery worker
WORKERS = ("outbox-worker", "recovery-worker", "longconn")  # long-lived tasks: cancelled at shutdown, never drained


class BotApp:
    """One bot process: its store, runtime, dispatcher, scheduler, outbox worker and background tasks."""

    def __init__(self, *, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.runtime = Runtime(
            settings=settings, store=store, clock=clock, outbox=Outbox(store, now=clock.now)
        )
        self.routers: list[Router] = list(core_routers())
        self.scheduler = AsyncIOScheduler(timezone=settings.tz)
        self.jobs = JobRegistry(self.runtime, self.scheduler)
        self.runtime.add_feature(self.jobs)
        self.jobs.add(
            "prune-processed-messages",
            CronTrigger(hour=3, minute=17, timezone=settings.tz),
            _prune_processed,
            description="清理过期的消息去重记录",
        )
        self.senders: dict[TargetKind, Sender] = {}
        self.web_setups: list[WebSetup] = []
        self.startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self.shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        # preparation spawned at start-up, answering meanwhile (e.g. the routing index); named for their tasks
        self.warmups: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {}
        self._warming: dict[str, asyncio.Task[Any]] = {}
        self.live_channels: list[str] = []
        # extra /healthz sections (e.g. the long connection's state), by name
        self.health: dict[str, Callable[[], dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._dispatcher: Dispatcher | None = None
        self.worker: OutboxWorker | None = None

    @classmethod
    async def create(cls, settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> BotApp:
        """Open the database (migrating it) and set up every feature."""
        use_cache_dir(settings.effective_data_dir)  # routing's tokenizer cache, not the shared temp directory
        store = await Store.open(settings.effective_database_url, migrate=migrate)
        bot = cls(settings=settings, store=store, clock=clock or SystemClock())
        for module_name in FEATURES:
            module = importlib.import_module(module_name)
            await module.setup(bot)
        return bot

    # -- composition ---------------------------------------------------------------------------

    def add_router(self, router: Router) -> None:
        """Add a feature's commands (before the dispatcher is first used)."""
        if self._dispatcher is not None:
            raise RuntimeError("routers must be added before the first dispatch")
        self.routers.append(router)

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher over every router added so far."""
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(self.runtime, self.routers, default_middlewares(self.settings))
        return self._dispatcher

    def use_senders(self, senders: Mapping[TargetKind, Sender]) -> OutboxWorker:
        """Set the senders the outbox worker delivers with."""
        self.senders.update(senders)
        self.worker = OutboxWorker(self.store, self.senders, now=self.clock.now)
        return self.worker

    async def handle(
        self, event: Event, *, delivery: Delivery | None = None, claimed: Claimed | None = None
    ) -> Reply | None:
        """Dispatch one event (``delivery``: the channel's inline-or-late decision, see ``core.delivery``)."""
        return await self.dispatcher.dispatch(event, delivery=delivery, claimed=claimed)

    # -- background work -----------------------------------------------------------------------

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the bot shuts down: long-lived workers stop at it (never cancelled mid-query)."""
        return self._stopping

    @property
    def warming(self) -> list[str]:
        """The warm-ups still at work (the routing index, …): answers are given meanwhile, some slower."""
        return [name for name, task in self._warming.items() if not task.done()]

    async def warmed(self) -> None:
        """Until every warm-up spawned by ``start`` has finished (failed ones included)."""
        tasks = [task for task in self._warming.values() if not task.done()]
        if tasks:
            await asyncio.wait(tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference so it is drained on shutdown."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, within: float = 30.0, *, warmups: bool = False) -> None:
        """Wait for background tasks (slow handlers) to finish; the long-lived workers are not waited for, nor
        the warm-ups unless asked (shutdown): a console line must not wait for a large history to be read."""
        skip = set() if warmups else set(self._warming.values())
        tasks = {t for t in self._tasks if t.get_name() not in WORKERS and t not in skip}
        if tasks:
            await asyncio.wait(tasks, timeout=within)

    async def run_outbox(self, *, poll: float = 1.0) -> None:
        """Deliver outbox messages until cancelled: woken by new messages, polling for retries."""
        assert self.worker is not None
        wakeup = self.runtime.outbox.wakeup
        while not self._stopping.is_set():  # a stop ends it between passes: never mid-query
            wakeup.clear()
            try:
                await self.worker.run_once(stop=self._stopping.is_set)
            except DATABASE_ERRORS as exc:  # an outage: the next pass tries again, nothing is lost
                log.warning("outbox worker pass failed (database: %s); retrying", type(exc).__name__)
            except Exception:
                log.exception("outbox worker pass failed; retrying")
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=poll)
            except TimeoutError:
                pass

    async def recover_once(self) -> int:
        """Finish messages whose handling never completed (a crash, a database outage, a lost lease): each
        is claimed again and handled from nothing, its answer sent through its channel's late route. A
        message that failed ``MAX_ATTEMPTS`` times is answered with an apology instead. Returns how many."""
        now = self.clock.now()
        finished = 0
        for stranded in await self.store.dedupe.stranded(now - RECOVERY_AFTER):
            claimed = await self.store.dedupe.claim(stranded.key, now, lease=RECOVERY_AFTER)
            if not claimed.new:
                continue  # another process took it, or it was finished meanwhile
            try:
                event = Event.from_record(stranded.event)
            except (KeyError, TypeError, ValueError):
                log.error("inbox message %s cannot be read back; dropped", stranded.key)
                await self.store.dedupe.finish(stranded.key, claimed.owner, "", now)
                continue
            if claimed.attempts > MAX_ATTEMPTS:
                log.error("message %s failed %d times; answered with an apology", stranded.key, MAX_ATTEMPTS)
                async with unit_of_work(self.store.engine):
                    route = self.runtime.late_routes.get(event.channel)
                    if route is not None:
                        await route(event, APOLOGY)
                    await self.store.dedupe.finish(stranded.key, claimed.owner, "", now)
                continue
            log.warning("recovering message %s (attempt %d)", stranded.key, claimed.attempts)
            await self.handle(event, delivery=Delivery.late(), claimed=claimed)
            finished += 1
        return finished

    async def run_recovery(self, *, poll: float = RECOVERY_POLL) -> None:
        """Run ``recover_once`` every ``poll`` seconds until ``close`` (which lets a pass under way finish:
        cancelling it could abandon a message half-way through its transaction)."""
        while not self._stopping.is_set():
            try:
                await self.recover_once()
            except Exception as exc:  # a database outage: try again next round
                log.warning("recovery pass failed: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=poll)
            except TimeoutError:
                pass

    async def start(
        self, *, scheduler: bool = True, outbox: bool = True, recovery: bool = True, warm: bool = True
    ) -> None:
        """Start scheduled jobs, the outbox worker, the recovery worker and feature start-up hooks; ``warm``
        spawns the warm-ups (a one-shot piped ``chat`` skips them: its first problem prepares what it needs)."""
        for hook in self.startup_hooks:
            await hook()
        if warm:
            for name, warmup in self.warmups.items():
                self._warming[name] = self.spawn(warmup(), name=name)
        if scheduler:
            self.jobs.install()
            self.scheduler.start()
        if outbox and self.worker is not None:
            self.spawn(self.run_outbox(), name="outbox-worker")
        if recovery:
            self.spawn(self.run_recovery(), name="recovery-worker")

    async def close(self) -> None:
        """Stop jobs, drain background work and close the database."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._stopping.set()
        self.runtime.outbox.wakeup.set()
        # both workers stop by themselves at the flag (the outbox after its current batch): a task cancelled
        # inside a query leaves its pooled connection to a rollback that is cancelled too
        finishing = [t for t in self._tasks if t.get_name() in WORKERS]
        if finishing:
            await asyncio.wait(finishing, timeout=10)
        workers = [t for t in self._tasks if t.get_name() in WORKERS and not t.done()]
        for task in workers:  # still at it after 10 s (a slow platform): cancelled, in-flight sends recorded
            task.cancel()
        if workers:  # let them finish their cancellation (the outbox records what was in flight)
            await asyncio.wait(workers, timeout=30)
        await self.drain(warmups=True)
        for hook in reversed(self.shutdown_hooks):
            await hook()
        await self.store.close()


async def _prune_processed(runtime: Runtime, now: datetime) -> str:
    # WeCom retries within minutes; a week of ids is ample.
    removed = await runtime.store.dedupe.prune(now - timedelta(days=7))
    return f"removed {removed}"


async def healthz(request: web.Request) -> web.Response:
    """Liveness and a small status: database reachable, channels live, outbox backlog."""
    bot: BotApp = request.app[BOT_KEY]
    status: dict[str, Any] = {"status": "ok", "channels": bot.live_channels, "warming": bot.warming}
    for name, report in bot.health.items():
        status[name] = report()
    try:
        counts = await bot.store.outbox.counts()
        status["database"] = bot.store.dialect
        status["outbox"] = {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
        status["database_calls"] = calls_of(bot.store.engine).as_dict()
    except Exception as exc:
        status.update(status="degraded", database_error=type(exc).__name__)
        return web.json_response(status, status=503)
    return web.json_response(status)


BOT_KEY: web.AppKey[BotApp] = web.AppKey("bot", BotApp)


def build_web_app(bot: BotApp, *, client_max_size: int = 64 * 1024) -> web.Application:
    """The aiohttp application: ``/healthz`` plus whatever channels and features mount."""
    app = web.Application(client_max_size=client_max_size)
    app[BOT_KEY] = bot
    app.router.add_get("/healthz", healthz)
    for setup in bot.web_setups:
        setup(app)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await bot.start()
        yield
        await bot.close()

    app.cleanup_ctx.append(lifecycle)
    return app
