"""Events, attendees with a waiting list, reminders (what must be sent, and when) and duty notices.

Everything that must happen lives here, not in APScheduler: a reminder is a row with a due time and a
status; a sweep claims due rows atomically (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one conditional
``UPDATE`` on SQLite, whose writers are serialised), so with several processes each reminder is claimed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, Index, UniqueConstraint, and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import Member, MemberRole
from bot.store.repos import Sessions
from bot.store.types import UTCDateTime, utcnow


class EventStatus(StrEnum):
    """Whether an event still takes place."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class CalendarEvent(SQLModel, table=True):
    """A meeting of the alliance: lecture, annual meeting, site visit, …; ``sequence`` counts changes (iCal)."""

    __tablename__ = "calendar_event"
    __table_args__ = (Index("uq_calendar_event_message_key", "message_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=16)
    title: str = Field(max_length=200)
    alliance_id: str | None = Field(default=None, foreign_key="alliance.id", index=True, max_length=64)
    start: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    place: str | None = Field(default=None, max_length=200)
    capacity: int | None = None
    organizer: str = Field(max_length=64)
    status: str = Field(default=EventStatus.SCHEDULED.value, max_length=16)
    sequence: int = 0
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # the message that created it (``channel:msgid``): a retry of that message finds it instead of adding one
    message_key: str | None = Field(default=None, max_length=255)

    @property
    def cancelled(self) -> bool:
        """Whether the event was cancelled."""
        return self.status == EventStatus.CANCELLED.value


class AttendeeStatus(StrEnum):
    """A seat or a place on the waiting list."""

    GOING = "going"
    WAITING = "waiting"


class EventAttendee(SQLModel, table=True):
    """Someone who signed up; waiting-list order is the order of ``joined_at`` (then id)."""

    __tablename__ = "event_attendee"
    __table_args__ = (UniqueConstraint("event_id", "user_id", name="uq_event_attendee"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="calendar_event.id", index=True)
    user_id: str = Field(max_length=64)
    status: str = Field(default=AttendeeStatus.GOING.value, max_length=16)
    joined_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ReminderStatus(StrEnum):
    """Life of a reminder row."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a process; a stale claim is taken over after a lease
    SENT = "sent"
    DROPPED = "dropped"  # found past due after the event had started
    CANCELLED = "cancelled"  # the event was cancelled or moved, or the attendee left


class EventReminder(SQLModel, table=True):
    """One reminder to send: to an alliance's groups (``alliance:ID``) or a person (``user:ID``)."""

    __tablename__ = "event_reminder"
    __table_args__ = (
        UniqueConstraint("event_id", "sequence", "kind", "target", name="uq_event_reminder"),
        Index("ix_event_reminder_due", "status", "due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="calendar_event.id", index=True)
    sequence: int = 0  # the event's sequence when planned; a move plans a new generation
    kind: str = Field(max_length=32)  # group:7d, attendee:1d
    target: str = Field(max_length=100)
    due: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status: str = Field(default=ReminderStatus.PENDING.value, max_length=16)
    attempts: int = 0  # claims; more than one only after a crashed claimer's lease expired
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    detail: str = ""


class DutyNotice(SQLModel, table=True):
    """A charter-duty notice already given (annual meeting missing, lead term ending), once per period."""

    __tablename__ = "duty_notice"
    __table_args__ = (UniqueConstraint("kind", "alliance_id", "period", name="uq_duty_notice"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    alliance_id: str = Field(max_length=64)
    period: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    detail: str = ""


@dataclass(slots=True, frozen=True)
class JoinResult:
    """What ``/join`` did: a seat, a waiting-list place (1-based) or nothing new."""

    status: AttendeeStatus
    position: int  # place on the waiting list; 0 for a seat
    already: bool
    attendee_id: int


@dataclass(slots=True, frozen=True)
class LeaveResult:
    """What ``/leave`` did, and who moved up from the waiting list."""

    left: bool
    was_going: bool
    promoted: EventAttendee | None


@dataclass(slots=True, frozen=True)
class Roll:
    """An event's attendees: those with a seat and the waiting list, each in order."""

    going: list[EventAttendee]
    waiting: list[EventAttendee]


class EventRepo:
    """Events, attendees, reminders and duty notices."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    @property
    def _postgres(self) -> bool:
        return bool(self._sessions.kw["bind"].dialect.name == "postgresql")

    # -- events ----------------------------------------------------------------------------------

    async def create(self, event: CalendarEvent) -> CalendarEvent:
        """Store a new event; if one was already created by the same message (``message_key``), that one."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(event)
        except IntegrityError:
            existing = await self.by_message(event.message_key) if event.message_key else None
            if existing is None:
                raise
            return existing
        return event

    async def by_message(self, message_key: str) -> CalendarEvent | None:
        """The event created by a message."""
        async with self._sessions() as session:
            query = select(CalendarEvent).where(CalendarEvent.message_key == message_key)
            return (await session.exec(query)).first()

    async def get(self, event_id: int) -> CalendarEvent | None:
        """One event by id."""
        async with self._sessions() as session:
            return await session.get(CalendarEvent, event_id)

    async def upcoming(
        self,
        now: datetime,
        *,
        alliance_id: str | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[CalendarEvent]:
        """Scheduled events not yet started, soonest first; for one alliance, its own and alliance-wide ones."""
        query = (
            select(CalendarEvent)
            .where(CalendarEvent.status == EventStatus.SCHEDULED.value)
            .where(col(CalendarEvent.start) > now)
            .order_by(col(CalendarEvent.start), col(CalendarEvent.id))
            .limit(limit)
        )
        if until is not None:
            query = query.where(col(CalendarEvent.start) <= until)
        if alliance_id is not None:
            query = query.where(
                or_(col(CalendarEvent.alliance_id) == alliance_id, col(CalendarEvent.alliance_id).is_(None))
            )
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def for_calendar(self, since: datetime, *, alliance_id: str | None = None) -> list[CalendarEvent]:
        """Events for an iCalendar feed (cancelled ones too, so subscribers drop them), from ``since``."""
        query = (
            select(CalendarEvent)
            .where(col(CalendarEvent.start) >= since)
            .order_by(col(CalendarEvent.start), col(CalendarEvent.id))
        )
        if alliance_id is not None:
            query = query.where(
                or_(col(CalendarEvent.alliance_id) == alliance_id, col(CalendarEvent.alliance_id).is_(None))
            )
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def exists(self, *, event_type: str, alliance_id: str, since: datetime, until: datetime) -> bool:
        """Whether a scheduled event of a type for the alliance (or a joint one) starts in [since, until)."""
        query = (
            select(func.count())
            .select_from(CalendarEvent)
            .where(CalendarEvent.type == event_type)
            .where(CalendarEvent.status == EventStatus.SCHEDULED.value)
            .where(col(CalendarEvent.start) >= since, col(CalendarEvent.start) < until)
            .where(
                or_(col(CalendarEvent.alliance_id) == alliance_id, col(CalendarEvent.alliance_id).is_(None))
            )
        )
        async with self._sessions() as session:
            return bool((await session.exec(query)).one())

    async def cancel(self, event_id: int, *, at: datetime, note: str = "") -> CalendarEvent | None:
        """Cancel an event (sequence + 1) and its pending reminders; None if it was not scheduled."""
        async with self._sessions() as session, session.begin():
            event = await session.get(CalendarEvent, event_id, with_for_update=self._postgres)
            if event is None or event.cancelled:
                return None
            event.status = EventStatus.CANCELLED.value
            event.sequence += 1
            event.updated_at = at
            event.note = note
            await self._cancel_reminders(session, event_id, at=at, detail="活动已取消")
            return event

    async def move(
        self, event_id: int, *, start: datetime, at: datetime
    ) -> tuple[datetime, CalendarEvent] | None:
        """Move a scheduled event (sequence + 1), cancelling its pending reminders; returns the old start."""
        async with self._sessions() as session, session.begin():
            event = await session.get(CalendarEvent, event_id, with_for_update=self._postgres)
            if event is None or event.cancelled:
                return None
            old = event.start
            event.start = start
            event.sequence += 1
            event.updated_at = at
            await self._cancel_reminders(session, event_id, at=at, detail="活动已改期")
            return old, event

    # -- attendees -------------------------------------------------------------------------------

    async def roll(self, event_id: int) -> Roll:
        """Who has a seat and who waits, each in sign-up order."""
        async with self._sessions() as session:
            rows = list(
                (
                    await session.exec(
                        select(EventAttendee)
                        .where(EventAttendee.event_id == event_id)
                        .order_by(col(EventAttendee.joined_at), col(EventAttendee.id))
                    )
                ).all()
            )
        return Roll(
            going=[r for r in rows if r.status == AttendeeStatus.GOING.value],
            waiting=[r for r in rows if r.status == AttendeeStatus.WAITING.value],
        )

    async def going_counts(self, event_ids: Iterable[int]) -> dict[int, int]:
        """Seats taken per event."""
        ids = list(event_ids)
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = await session.exec(
                select(EventAttendee.event_id, func.count())
                .where(col(EventAttendee.event_id).in_(ids))
                .where(EventAttendee.status == AttendeeStatus.GOING.value)
                .group_by(col(EventAttendee.event_id))
            )
            return {event_id: count for event_id, count in rows.all()}

    async def join(self, event: CalendarEvent, user_id: str, *, at: datetime) -> JoinResult:
        """Take a seat, or a place on the waiting list when the event is full."""
        assert event.id is not None
        async with self._sessions() as session, session.begin():
            if self._postgres:  # serialise sign-ups per event so capacity holds under concurrency
                await session.get(CalendarEvent, event.id, with_for_update=True)
            rows = list(
                (
                    await session.exec(
                        select(EventAttendee)
                        .where(EventAttendee.event_id == event.id)
                        .order_by(col(EventAttendee.joined_at), col(EventAttendee.id))
                    )
                ).all()
            )
            waiting = [r for r in rows if r.status == AttendeeStatus.WAITING.value]
            mine = next((r for r in rows if r.user_id == user_id), None)
            if mine is not None:
                assert mine.id is not None
                if mine.status == AttendeeStatus.GOING.value:
                    return JoinResult(AttendeeStatus.GOING, 0, True, mine.id)
                return JoinResult(AttendeeStatus.WAITING, waiting.index(mine) + 1, True, mine.id)
            going = len(rows) - len(waiting)
            full = event.capacity is not None and going >= event.capacity
            status = AttendeeStatus.WAITING if full else AttendeeStatus.GOING
            row = EventAttendee(event_id=event.id, user_id=user_id, status=status.value, joined_at=at)
            session.add(row)
            await session.flush()
            assert row.id is not None
            return JoinResult(status, len(waiting) + 1 if full else 0, False, row.id)

    async def leave(self, event: CalendarEvent, user_id: str) -> LeaveResult:
        """Give up a seat or a waiting-list place; the first on the waiting list takes a freed seat."""
        assert event.id is not None
        async with self._sessions() as session, session.begin():
            if self._postgres:
                await session.get(CalendarEvent, event.id, with_for_update=True)
            rows = list(
                (
                    await session.exec(
                        select(EventAttendee)
                        .where(EventAttendee.event_id == event.id)
                        .order_by(col(EventAttendee.joined_at), col(EventAttendee.id))
                    )
                ).all()
            )
            mine = next((r for r in rows if r.user_id == user_id), None)
            if mine is None:
                return LeaveResult(False, False, None)
            was_going = mine.status == AttendeeStatus.GOING.value
            await session.delete(mine)
            # the attendee's own pending reminders go with them
            await session.exec(
                update(EventReminder)
                .where(col(EventReminder.event_id) == event.id)
                .where(col(EventReminder.target) == f"user:{user_id}")
                .where(col(EventReminder.status) == ReminderStatus.PENDING.value)
                .values(status=ReminderStatus.CANCELLED.value, detail="已取消报名")
            )
            promoted = None
            going = sum(1 for r in rows if r.status == AttendeeStatus.GOING.value) - (1 if was_going else 0)
            waiting = [r for r in rows if r.status == AttendeeStatus.WAITING.value and r is not mine]
            if waiting and (event.capacity is None or going < event.capacity):
                promoted = waiting[0]
                promoted.status = AttendeeStatus.GOING.value
            return LeaveResult(True, was_going, promoted)

    # -- reminders -------------------------------------------------------------------------------

    async def add_reminders(self, reminders: Sequence[EventReminder]) -> int:
        """Plan reminders; one already planned (same event, generation, kind and target) is kept as is."""
        if not reminders:
            return 0
        try:
            return await self._add_reminders(reminders)
        except IntegrityError:
            # another process planned some of the same reminders meanwhile: go row by row
            added = 0
            for reminder in reminders:
                try:
                    added += await self._add_reminders([EventReminder.model_validate(reminder.model_dump())])
                except IntegrityError:
                    continue
            return added

    async def _add_reminders(self, reminders: Sequence[EventReminder]) -> int:
        added = 0
        async with self._sessions() as session, session.begin():
            existing = set(
                (
                    await session.exec(
                        select(
                            EventReminder.event_id,
                            EventReminder.sequence,
                            EventReminder.kind,
                            EventReminder.target,
                        ).where(col(EventReminder.event_id).in_({r.event_id for r in reminders}))
                    )
                ).all()
            )
            for reminder in reminders:
                key = (reminder.event_id, reminder.sequence, reminder.kind, reminder.target)
                if key in existing:
                    continue
                existing.add(key)
                session.add(reminder)
                added += 1
        return added

    async def claim_due_reminders(
        self, now: datetime, *, worker: str, limit: int = 200, lease: timedelta = timedelta(minutes=5)
    ) -> list[EventReminder]:
        """Atomically claim due reminders (and ones whose claimer died) for ``worker``."""
        due = or_(
            and_(col(EventReminder.status) == ReminderStatus.PENDING.value, col(EventReminder.due) <= now),
            and_(
                col(EventReminder.status) == ReminderStatus.SENDING.value,
                col(EventReminder.claimed_at) < now - lease,
            ),
        )
        candidates = (
            select(col(EventReminder.id))
            .where(due)
            .order_by(col(EventReminder.due), col(EventReminder.id))
            .limit(limit)
        )
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(EventReminder)
            .where(col(EventReminder.id).in_(candidates.scalar_subquery()))
            .where(due)  # re-checked under the row lock / write lock
            .values(
                status=ReminderStatus.SENDING.value,
                claimed_by=worker,
                claimed_at=now,
                attempts=EventReminder.attempts + 1,
            )
            .returning(col(EventReminder.id))
        )
        async with self._sessions() as session, session.begin():
            ids = list((await session.exec(statement)).scalars().all())
            if not ids:
                return []
            rows = await session.exec(
                select(EventReminder).where(col(EventReminder.id).in_(ids)).order_by(col(EventReminder.due))
            )
            return list(rows.all())

    async def finish_reminder(
        self, reminder_id: int, *, status: ReminderStatus, at: datetime, detail: str = ""
    ) -> None:
        """Record how a claimed reminder ended (sent or dropped)."""
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(EventReminder)
                .where(col(EventReminder.id) == reminder_id)
                .values(status=status.value, finished_at=at, detail=detail[:500])
            )

    async def pending_reminders(self, *, limit: int | None = None) -> list[EventReminder]:
        """Reminders still to send, soonest first."""
        query = (
            select(EventReminder)
            .where(
                col(EventReminder.status).in_([ReminderStatus.PENDING.value, ReminderStatus.SENDING.value])
            )
            .order_by(col(EventReminder.due), col(EventReminder.id))
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def reminders_of(self, event_id: int) -> list[EventReminder]:
        """Every reminder of one event (all generations), by due time."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(EventReminder)
                .where(EventReminder.event_id == event_id)
                .order_by(col(EventReminder.due), col(EventReminder.id))
            )
            return list(rows.all())

    async def next_due(self) -> datetime | None:
        """When the earliest pending reminder is due."""
        async with self._sessions() as session:
            return (
                await session.exec(
                    select(func.min(EventReminder.due)).where(
                        EventReminder.status == ReminderStatus.PENDING.value
                    )
                )
            ).one()

    @staticmethod
    async def _cancel_reminders(session: AsyncSession, event_id: int, *, at: datetime, detail: str) -> None:
        await session.exec(
            update(EventReminder)
            .where(col(EventReminder.event_id) == event_id)
            .where(col(EventReminder.status) == ReminderStatus.PENDING.value)
            .values(status=ReminderStatus.CANCELLED.value, finished_at=at, detail=detail)
        )

    # -- duties ----------------------------------------------------------------------------------

    async def record_duty(
        self, *, kind: str, alliance_id: str, period: str, at: datetime, detail: str = ""
    ) -> bool:
        """Record that a duty notice was given for this period; False if it already was."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    DutyNotice(
                        kind=kind, alliance_id=alliance_id, period=period, created_at=at, detail=detail
                    )
                )
        except IntegrityError:
            return False
        return True

    async def duty_notices(self, kind: str | None = None) -> list[DutyNotice]:
        """Duty notices given, oldest first."""
        query = select(DutyNotice).order_by(col(DutyNotice.id))
        if kind is not None:
            query = query.where(DutyNotice.kind == kind)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def granted_admins(self) -> list[str]:
        """Users granted the admin role with ``/grant`` (settings admins are added by the caller)."""
        async with self._sessions() as session:
            rows = await session.exec(select(Member.user_id).where(Member.role == MemberRole.ADMIN.value))
            return list(rows.all())
