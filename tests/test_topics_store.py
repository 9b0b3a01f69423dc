"""The topics migration matches the SQLModel tables (so ``alembic upgrade`` builds what the code expects)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.app import BotApp
from bot.store import topics

TABLES = ("research_topic", "topic_support", "topic_member", "topic_progress", "achievement", "award")


def _differences(connection: Connection) -> list[Any]:
    assert topics.Topic.__tablename__ == "research_topic"
    ours = MetaData()
    for name in (*TABLES, "alliance", "studio"):  # and what they refer to
        SQLModel.metadata.tables[name].to_metadata(ours)

    def include(obj: Any, name: str | None, kind: str, _reflected: bool, _other: Any) -> bool:
        table = name if kind == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in TABLES

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
    return list(compare_metadata(context, ours))


async def test_migration_matches_models(bot: BotApp) -> None:
    async with bot.store.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []
