"""The audit trail: entries commit with the change they describe, and read back per record and newest first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.store import Store
from bot.store.audit import AuditRepo, changed_fields
from bot.store.engine import create_engine, upgrade_database


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await upgrade_database(engine)
    yield Store(engine)
    await engine.dispose()


async def test_history_lists_one_records_changes_in_order(store: Store) -> None:
    audit = AuditRepo(store.sessions)
    await audit.record(entity="award", entity_id=7, action="create", actor="u1", after={"amount": 5000})
    await audit.record(entity="award", entity_id=8, action="create", actor="u1", after={"amount": 9000})
    await audit.record(
        entity="award", entity_id=7, action="edit", actor="u2", source="console", reason="金额笔误",
        before={"amount": 5000}, after={"amount": 50000},
    )
    trail = await audit.history("award", 7)
    assert [(e.action, e.actor, e.source) for e in trail] == [("create", "u1", "chat"), ("edit", "u2", "console")]
    assert trail[1].reason == "金额笔误"
    assert changed_fields(trail[1].before, trail[1].after) == {"amount": (5000, 50000)}
    newest = await audit.recent(limit=2)
    assert [e.entity_id for e in newest] == ["7", "8"]
    assert [e.entity_id for e in await audit.recent(actor="u2")] == ["7"]


def test_changed_fields_ignores_equal_values() -> None:
    assert changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": (2, 3)}
