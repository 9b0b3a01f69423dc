"""A leader lease: exactly one process of a deployment holds it (e.g. the long connection's socket).

On PostgreSQL the lease is a session-level advisory lock (``pg_try_advisory_lock``) taken on a connection of its
own, outside the pool: it is held for as long as that connection lives, and released by the server the moment
the holder's process dies (its socket closes), so a standby process can take over without waiting for a timeout.
On SQLite there is one process per database file, and it always holds the lease.
"""

from __future__ import annotations

import hashlib
import logging

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lease name."""
    return int.from_bytes(hashlib.sha1(f"lease:{name}".encode()).digest()[:8], "big", signed=True)


class LeaderLease:
    """One named lease. ``acquire`` tries once (never waits); ``check`` tells whether it is still held."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.name = name
        self.key = lock_key(name)
        self._postgres = engine.dialect.name == "postgresql"
        self._dsn = (
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if self._postgres
            else ""
        )
        self._conn: asyncpg.Connection | None = None
        self.held = False

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this process holds it (now or already)."""
        if self.held:
            return True
        if not self._postgres:
            self.held = True
            return True
        conn = self._conn
        if conn is None or conn.is_closed():
            conn = self._conn = await asyncpg.connect(self._dsn, timeout=10)
        got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key, timeout=10))
        if got:
            self.held = True
            log.info("lease %s taken", self.name)
        return got

    async def check(self) -> bool:
        """Whether the lease is still held: its connection still answers (a database restart loses it)."""
        if not self.held or not self._postgres:
            return self.held
        try:
            assert self._conn is not None
            await self._conn.fetchval("SELECT 1", timeout=10)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, AssertionError) as exc:
            log.warning("lease %s lost (%s)", self.name, type(exc).__name__)
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        """Give the lease up (closing its connection releases the lock)."""
        await self._drop()

    async def _drop(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn.terminate()
