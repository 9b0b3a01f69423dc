"""Async engine creation and Alembic migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: serialises concurrent migrations of several processes on one PostgreSQL database.
_MIGRATION_LOCK_ID = 7_310_001


@dataclass(slots=True)
class DatabaseCalls:
    """What the process has asked of the database so far: SQL statements, commits and, on SQLite, trips to
    aiosqlite's thread (each statement, fetch and commit made there is one) and how many of those were a
    statement that found another process holding the write lock (``busy``). Read by ``/healthz`` so a
    benchmark can divide the growth over a burst by its messages."""

    statements: int = 0
    commits: int = 0
    trips: int = 0
    busy: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a JSON-ready mapping."""
        return {
            "statements": self.statements,
            "commits": self.commits,
            "trips": self.trips,
            "busy": self.busy,
        }


CALLS: dict[int, DatabaseCalls] = {}  # id(engine.sync_engine) → its counters


def calls_of(engine: AsyncEngine) -> DatabaseCalls:
    """The call counters of ``engine``."""
    return CALLS.setdefault(id(engine.sync_engine), DatabaseCalls())


def _count_calls(engine: AsyncEngine, sqlite: bool) -> None:
    calls = calls_of(engine)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _statement(*_args: Any) -> None:
        calls.statements += 1

    @event.listens_for(engine.sync_engine, "commit")
    def _commit(*_args: Any) -> None:
        calls.commits += 1

    if sqlite:
        _run_sqlite_inline(engine, calls)


# SQLite statements run on the event loop's thread: a statement on the one local connection takes tens of
# microseconds, a trip to aiosqlite's thread and back costs ten times that in CPU (and a GIL hand-over each
# way). Two cases still go to the thread: a statement that finds another process holding the write lock (it
# fails at once here — the inline busy timeout is 0 — and is retried there with the patient timeout, so the
# loop never sleeps in SQLite's busy handler), and work marked ``offloaded()`` (a large read).
INLINE_SQLITE = True
PATIENT_BUSY_MS = 30_000
_offloaded: ContextVar[bool] = ContextVar("sqlite_offloaded", default=False)


@contextmanager
def offloaded() -> Iterator[None]:
    """Statements made inside run in the driver's thread, not on the event loop: for reads of thousands of
    rows (the routing history, a year's report), which would hold the loop for tens of milliseconds."""
    token = _offloaded.set(True)
    try:
        yield
    finally:
        _offloaded.reset(token)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "locked" in str(exc) or "busy" in str(exc)


def _run_sqlite_inline(engine: AsyncEngine, calls: DatabaseCalls) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _inline(dbapi_connection: Any, _record: Any) -> None:
        inner = getattr(dbapi_connection, "_connection", None)  # the aiosqlite connection
        threaded = getattr(inner, "_execute", None)
        if inner is None or threaded is None:
            return
        raw: sqlite3.Connection = inner._conn

        def patiently(fn: Callable[..., Any]) -> Callable[..., Any]:
            def run(*args: Any, **kwargs: Any) -> Any:
                raw.execute(f"PRAGMA busy_timeout={PATIENT_BUSY_MS}")
                try:
                    return fn(*args, **kwargs)
                finally:
                    raw.execute(f"PRAGMA busy_timeout={0 if INLINE_SQLITE else PATIENT_BUSY_MS}")

            return run

        async def execute(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if INLINE_SQLITE and not _offloaded.get():
                try:
                    return fn(*args, **kwargs)
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                    calls.busy += 1  # another process writes: wait for it off the loop
            calls.trips += 1
            return await threaded(patiently(fn), *args, **kwargs)

        inner._execute = execute


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, a busy timeout and foreign keys, and its folder is created."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}  # user text never lands in error logs
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # the connection is made in aiosqlite's thread and used on the loop's (``_run_sqlite_inline``)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        # One connection: SQLite allows one writer at a time, and several pooled connections contending for the
        # write lock wait in SQLite's sleeping busy handler (hundreds of ms under a burst). Queuing for the one
        # connection in asyncio instead keeps every statement short and the latency flat.
        kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60)
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # the driver's own transaction handling cannot nest (SAVEPOINT): SQLAlchemy emits BEGIN itself
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={0 if INLINE_SQLITE else PATIENT_BUSY_MS}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN")

    _count_calls(engine, parsed.get_backend_name() == "sqlite")
    return engine


# --- one transaction per message ------------------------------------------------------------------------

_unit: ContextVar[Unit | None] = ContextVar("unit_of_work", default=None)


class Unit:
    """The transaction a message is handled in: every repository write made while it is open joins it
    (as a savepoint), so the message's effects, its outbound messages and its "done" mark commit together.

    The connection is taken at the first database access, not when the unit opens: work that needs none
    (waiting, computing) holds no connection — on SQLite there is only one."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # only the task that opened the unit works in it: callbacks and tasks that inherit a copy of its
        # context (a scheduler wake-up armed by a handler, a task it spawned) run on connections of their own
        self.task = asyncio.current_task()
        self.closed = False
        self.after_commit: list[Callable[[], None]] = []
        self.after_rollback: list[Callable[[], None]] = []
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def connection(self) -> AsyncConnection:
        """The unit's connection, in its transaction (taken now if not yet)."""
        if self._connection is None:
            async with self._lock:
                if self._connection is None:
                    connection = await self.engine.connect()
                    try:
                        await connection.begin()
                    except BaseException:
                        await connection.close()
                        raise
                    self._connection = connection
        return self._connection

    async def discard(self) -> None:
        """Roll back everything written in the unit so far (a handler failed); the unit stays open and takes
        a fresh connection at its next database access."""
        try:
            await self._end(commit=False, final=False)
        finally:
            self.after_commit.clear()
            _run(self.after_rollback)
            self.after_rollback.clear()

    async def _end(self, *, commit: bool, final: bool = True) -> None:
        self.closed = self.closed or final
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if commit:
                await connection.commit()
            else:
                await connection.rollback()
        finally:
            await connection.close()


def current_unit() -> Unit | None:
    """The unit of work open in this task, if any."""
    unit = _unit.get()
    if unit is None or unit.closed or unit.task is not asyncio.current_task():
        return None
    return unit


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current unit commits (at once when there is none), e.g. to wake a worker
    only when what it should see is visible."""
    unit = current_unit()
    if unit is None:
        callback()
    else:
        unit.after_commit.append(callback)


def after_rollback(callback: Callable[[], None]) -> None:
    """Run ``callback`` if the current unit is rolled back (never when there is none): undo in-memory state
    that was changed together with the database."""
    unit = current_unit()
    if unit is not None:
        unit.after_rollback.append(callback)


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[Unit]:
    """Open one transaction for this task and everything it awaits; commit when the block ends, roll back
    if it raises. Nested use joins the outer unit."""
    outer = current_unit()
    if outer is not None:
        yield outer
        return
    unit = Unit(engine)
    token = _unit.set(unit)
    try:
        try:
            yield unit
        finally:
            _unit.reset(token)
    except BaseException:
        try:
            await unit._end(commit=False)
        finally:
            _run(unit.after_rollback)
        raise
    try:
        await unit._end(commit=True)
    except BaseException:
        _run(unit.after_rollback)
        raise
    _run(unit.after_commit)


def _run(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("a unit-of-work hook failed")


def outside_unit(coroutine: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
    """Await ``coroutine()`` on connections of its own even inside a unit (bookkeeping that must not fail or
    wait for the message's transaction)."""

    async def run() -> Any:
        token = _unit.set(None)
        try:
            return await coroutine()
        finally:
            _unit.reset(token)

    return run()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction: the current unit's (in a savepoint), or a new one committed at the end."""
    unit = current_unit()
    if unit is None:
        async with engine.begin() as connection:
            yield connection
        return
    connection = await unit.connection()
    async with connection.begin_nested():
        yield connection


class Sessions:
    """The session factory repositories use (``async with sessions() as session``): inside a unit of work a
    session joins its transaction (its ``begin``/``commit`` become a savepoint), outside it is an ordinary
    session of its own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kw: dict[str, Any] = {"bind": engine}
        self._plain = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    def __call__(self) -> AbstractAsyncContextManager[AsyncSession]:
        unit = current_unit()
        if unit is None:
            return self._plain()
        return _joined(unit)


@asynccontextmanager
async def _joined(unit: Unit) -> AsyncIterator[AsyncSession]:
    session = AsyncSession(
        bind=await unit.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        await session.close()


def session_factory(engine: AsyncEngine) -> Sessions:
    """The repositories' session factory; objects stay usable after commit."""
    return Sessions(engine)


def alembic_config() -> Config:
    """The Alembic configuration, built in code so no ini file is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    command.upgrade(config, revision)


async def upgrade_database(engine: AsyncEngine, revision: str = "heads") -> None:
    """Run Alembic migrations up to ``revision`` (all heads by default)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)
    log.debug("database upgraded to %s", revision)


def _current(connection: Connection) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The revisions the database is at (empty for a new database)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
