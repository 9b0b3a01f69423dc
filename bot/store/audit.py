"""The audit trail: who changed what, when, from where and why — one row per change to a record people
rely on (an achievement, an award, a funding entry, a star rating, a studio edited in the console …).

Features write an entry in the same transaction as the change (``AuditRepo.record`` joins the open
message unit like every repository write), so a change and its trail commit or roll back together."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    """One change: the entity it touched, the action, the values before and after, who and why."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=32, index=True)  # e.g. achievement, award, fund_entry, studio
    entity_id: str = Field(max_length=64, index=True)
    action: str = Field(max_length=16)  # create | edit | delete | undo | confirm | …
    actor: str = Field(max_length=64)  # the user id (or "cli", "import")
    source: str = Field(default="chat", max_length=16)  # chat | console | cli | import | job
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    before: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The fields whose values differ between ``before`` and ``after``, as (old, new) pairs."""
    keys = sorted(set(before) | set(after))
    return {key: (before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)}


class AuditRepo:
    """Writing and reading the audit trail."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def record(
        self,
        *,
        entity: str,
        entity_id: str | int,
        action: str,
        actor: str,
        source: str = "chat",
        reason: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry (inside the caller's unit of work when one is open)."""
        entry = AuditEntry(
            entity=entity,
            entity_id=str(entity_id),
            action=action,
            actor=actor,
            source=source,
            reason=reason,
            before=dict(before or {}),
            after=dict(after or {}),
            at=at or utcnow(),
        )
        async with self._sessions() as session, session.begin():
            session.add(entry)
        return entry

    async def history(self, entity: str, entity_id: str | int) -> list[AuditEntry]:
        """Every entry about one record, oldest first."""
        query = (
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
            .order_by(col(AuditEntry.id))
        )
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def recent(
        self, *, entity: str | None = None, actor: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[AuditEntry]:
        """The newest entries first, optionally of one kind of record or one actor (the console's log)."""
        query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)
        if entity is not None:
            query = query.where(AuditEntry.entity == entity)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())
