"""The funds feature's tables and repository: the funding ledger (经费台账) per alliance and year, its budgets,
and the report files the bot hands out in WeCom (``/报表``).

An entry is income by source or spending by category; spending may be linked to an activity, a topic or an
award. An award is linked to at most one entry per alliance (a unique index on ``award_id, alliance_id``), so
an alliance's share of an award appears in its ledger once: either as that entry or, unlinked, derived from the
awards table (``bot.services.funds``)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, Index, LargeBinary, Text, UniqueConstraint, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime, utcnow


class EntryKind(StrEnum):
    """Money in or money out."""

    INCOME = "income"
    SPENDING = "spending"

    @property
    def label(self) -> str:
        """收入 or 支出."""
        return "收入" if self is EntryKind.INCOME else "支出"


class FundEntry(SQLModel, table=True):
    """One line of an alliance's ledger: amount in yuan, date, note, who recorded it, optional links."""

    __tablename__ = "fund_entry"
    __table_args__ = (
        Index("uq_fund_entry_message_key", "message_key", unique=True),
        Index("uq_fund_entry_award", "award_id", "alliance_id", unique=True),
        Index("ix_fund_entry_alliance_year", "alliance_id", "year"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alliance_id: str = Field(foreign_key="alliance.id", max_length=64)
    year: int
    kind: str = Field(max_length=16)  # EntryKind
    category: str = Field(max_length=32)  # an income source or a spending category
    amount: int  # yuan
    on: date = Field(sa_column=Column("entry_date", Date, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    recorded_by: str = Field(max_length=64)
    activity_id: int | None = None
    topic_id: int | None = None
    award_id: int | None = None
    override: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # admin's reason
    voided: bool = False
    source: str = Field(default="chat", max_length=16)  # chat | import | console
    message_key: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class FundBudget(SQLModel, table=True):
    """The budget of one spending category for an alliance's year."""

    __tablename__ = "fund_budget"
    __table_args__ = (UniqueConstraint("alliance_id", "year", "category", name="uq_fund_budget"),)

    id: int | None = Field(default=None, primary_key=True)
    alliance_id: str = Field(foreign_key="alliance.id", max_length=64)
    year: int
    category: str = Field(max_length=32)
    amount: int  # yuan
    set_by: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ReportFile(SQLModel, table=True):
    """A generated file (the year report's workbook, a chart) kept until the outbox has delivered it: a row,
    not a path, so any process of a scaled-out bot can upload it."""

    __tablename__ = "report_file"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class DuplicateAwardLink(Exception):
    """The award is already linked to another ledger entry."""


class FundRepo:
    """The funding ledger, its budgets and the report files."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def add(self, entry: FundEntry) -> FundEntry:
        """Record an entry; one already made by the same message (``message_key``) is returned instead.
        Raises ``DuplicateAwardLink`` when its award is linked to another entry."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(entry)
        except IntegrityError:
            existing = await self.by_message(entry.message_key) if entry.message_key else None
            if existing is not None:
                return existing
            if entry.award_id is not None and await self.by_award(entry.award_id, entry.alliance_id):
                raise DuplicateAwardLink(entry.award_id) from None
            raise
        return entry

    async def add_many(self, entries: list[FundEntry]) -> None:
        """Record several entries in one transaction (an import: all or nothing)."""
        async with self._sessions() as session, session.begin():
            session.add_all(entries)

    async def by_message(self, message_key: str) -> FundEntry | None:
        """The entry a message recorded."""
        async with self._sessions() as session:
            return (await session.exec(select(FundEntry).where(FundEntry.message_key == message_key))).first()

    async def by_award(self, award_id: int, alliance_id: str) -> FundEntry | None:
        """The entry of an alliance an award is linked to."""
        query = select(FundEntry).where(FundEntry.award_id == award_id, FundEntry.alliance_id == alliance_id)
        async with self._sessions() as session:
            return (await session.exec(query)).first()

    async def get(self, entry_id: int) -> FundEntry | None:
        """One entry."""
        async with self._sessions() as session:
            return await session.get(FundEntry, entry_id)

    async def save(self, entry: FundEntry) -> FundEntry:
        """Write back an edited entry."""
        async with self._sessions() as session, session.begin():
            merged = await session.merge(entry)
        return merged

    async def entries(
        self, *, year: int, alliance_id: str | None = None, voided: bool = False
    ) -> list[FundEntry]:
        """A year's entries by date then id, of one alliance or all; voided ones only when asked."""
        query = select(FundEntry).where(FundEntry.year == year)
        if alliance_id is not None:
            query = query.where(FundEntry.alliance_id == alliance_id)
        if not voided:
            query = query.where(col(FundEntry.voided).is_(False))
        query = query.order_by(col(FundEntry.on), col(FundEntry.id))
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def linked_awards(self) -> set[tuple[int, str]]:
        """The awards linked to a (live) entry, with the entry's alliance."""
        query = select(FundEntry.award_id, FundEntry.alliance_id).where(
            col(FundEntry.award_id).is_not(None), col(FundEntry.voided).is_(False)
        )
        async with self._sessions() as session:
            return {(a, alliance) for a, alliance in (await session.exec(query)).all() if a is not None}

    async def set_budget(
        self, *, alliance_id: str, year: int, category: str, amount: int, by: str, at: datetime
    ) -> tuple[FundBudget, int | None]:
        """Set (or change) a budget; returns it and the amount it had before (None: new)."""
        async with self._sessions() as session, session.begin():
            query = select(FundBudget).where(
                FundBudget.alliance_id == alliance_id,
                FundBudget.year == year,
                FundBudget.category == category,
            )
            budget = (await session.exec(query)).first()
            before = budget.amount if budget is not None else None
            if budget is None:
                budget = FundBudget(
                    alliance_id=alliance_id,
                    year=year,
                    category=category,
                    amount=amount,
                    set_by=by,
                    updated_at=at,
                )
            else:
                budget.amount, budget.set_by, budget.updated_at = amount, by, at
            session.add(budget)
        return budget, before

    async def budgets(self, *, year: int, alliance_id: str | None = None) -> list[FundBudget]:
        """A year's budgets, of one alliance or all."""
        query = select(FundBudget).where(FundBudget.year == year)
        if alliance_id is not None:
            query = query.where(FundBudget.alliance_id == alliance_id)
        async with self._sessions() as session:
            return list((await session.exec(query.order_by(col(FundBudget.id)))).all())

    async def add_file(self, file: ReportFile) -> ReportFile:
        """Keep a generated file for delivery."""
        async with self._sessions() as session, session.begin():
            session.add(file)
        return file

    async def file(self, file_id: int) -> ReportFile | None:
        """A kept file."""
        async with self._sessions() as session:
            return await session.get(ReportFile, file_id)

    async def prune_files(self, before: datetime) -> int:
        """Drop kept files made before ``before`` (WeCom keeps an upload three days; the outbox is done by then)."""
        async with self._sessions() as session, session.begin():
            result = await session.exec(delete(ReportFile).where(col(ReportFile.created_at) < before))
        return int(result.rowcount or 0)
