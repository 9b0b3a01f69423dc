"""Alembic environment: runs on the connection handed in by ``bot.store.engine.upgrade_database``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

connection = context.config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(connection=conn, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # `alembic` run by hand with -x url=...
    url = context.get_x_argument(as_dictionary=True)["url"].replace("+aiosqlite", "").replace("+asyncpg", "")
    with create_engine(url).begin() as sync_connection:
        _run(sync_connection)
