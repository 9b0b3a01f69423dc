"""Core tables: alliances, studios, members, processed messages and the outbox."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime, utcnow


class Alliance(SQLModel, table=True):
    """One of the specialty alliances (桥梁, 隧道, 城轨, 四电)."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    lead_name: str | None = Field(default=None, max_length=100)
    lead_userid: str | None = Field(default=None, max_length=64, index=True)
    lead_since: date | None = None
    announce: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Studio(SQLModel, table=True):
    """A labour-model or craftsman innovation studio (劳模和工匠人才创新工作室)."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    alliance_id: str = Field(foreign_key="alliance.id", index=True, max_length=64)
    unit: str = Field(max_length=200)
    type: str = Field(max_length=32)
    stars: int
    lead_name: str = Field(max_length=100)
    lead_userid: str = Field(index=True, max_length=64)
    expertise: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str = ""
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class MemberRole(StrEnum):
    """Roles that can be granted explicitly; studio and alliance leads also follow from the roster."""

    MEMBER = "member"
    STUDIO_LEAD = "studio_lead"
    ALLIANCE_LEAD = "alliance_lead"
    ADMIN = "admin"


class Member(SQLModel, table=True):
    """A person the bot has seen or been told about, with an optionally granted role."""

    user_id: str = Field(primary_key=True, max_length=64)
    name: str | None = Field(default=None, max_length=100)
    role: str = Field(default=MemberRole.MEMBER.value, max_length=32)
    alliance_id: str | None = Field(default=None, max_length=64)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ProcessedMessage(SQLModel, table=True):
    """A message id already acted on; inserting twice fails, which is how retries are dropped."""

    __tablename__ = "processed_message"

    key: str = Field(primary_key=True, max_length=255)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    # when the message was answered (a claim never answered is taken over by a retry) and the answer given
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    reply: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class OutboxStatus(StrEnum):
    """Delivery state of an outbox message."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    """An outbound message, written before it is sent and delivered by the outbox worker."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    target_kind: str = Field(max_length=32)
    target: str = Field(max_length=512)
    text: str
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=16)
    attempts: int = 0
    last_error: str | None = None
    dedupe_key: str | None = Field(default=None, max_length=255)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
