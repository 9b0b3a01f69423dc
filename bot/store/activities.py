"""Activities, attendees with a waiting list, reminders (what must be sent, and when) and duty notices.

Everything that must happen lives here, not in APScheduler: a reminder is a row with a due time and a
status; a sweep claims due rows atomically (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one conditional
``UPDATE`` on SQLite, whose writers are serialised), so with several processes each reminder is claimed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, UniqueConstraint, and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.engine import Sessions
from bot.store.studios import Member, MemberRole
from bot.store.types import UTCDateTime, utcnow


class ActivityStatus(StrEnum):
    """Whether an activity still takes place."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class ActivityAudience(StrEnum):
    """Who an activity is for: announced to, reminded and allowed to sign up."""

    ALL = "all"  # every member of its alliance (or of every alliance): announced in the member groups
    LEADS = "leads"  # studio and alliance leads only: announced to them by direct message
    INVITED = "invited"  # the invited list only: announced to them by direct message

    @property
    def label(self) -> str:
        """The audience in Chinese."""
        return {"all": "联盟全体成员", "leads": "仅负责人", "invited": "受邀人员"}[self.value]


class Activity(SQLModel, table=True):
    """A meeting of the alliance: lecture, annual meeting, site visit, …; ``sequence`` counts changes (iCal)."""

    __tablename__ = "calendar_event"
    __table_args__ = (Index("uq_calendar_event_message_key", "message_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=16)
    title: str = Field(max_length=200)
    alliance_id: str | None = Field(default=None, foreign_key="alliance.id", index=True, max_length=64)
    start: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    ends_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    audience: str = Field(default=ActivityAudience.ALL.value, max_length=16)
    invited: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    place: str | None = Field(default=None, max_length=200)
    capacity: int | None = None
    organizer: str = Field(max_length=64)
    status: str = Field(default=ActivityStatus.SCHEDULED.value, max_length=16)
    sequence: int = 0
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # the message that created it (``channel:msgid``): a retry of that message finds it instead of adding one
    message_key: str | None = Field(default=None, max_length=255)

    @property
    def cancelled(self) -> bool:
        """Whether the activity was cancelled."""
        return self.status == ActivityStatus.CANCELLED.value

    @property
    def for_whom(self) -> ActivityAudience:
        """The audience as an enum."""
        return ActivityAudience(self.audience)


class AttendeeStatus(StrEnum):
    """A seat or a place on the waiting list."""

    GOING = "going"
    WAITING = "waiting"


class ActivityAttendee(SQLModel, table=True):
    """Someone who signed up; waiting-list order is the order of ``joined_at`` (then id)."""

    __tablename__ = "event_attendee"
    __table_args__ = (UniqueConstraint("event_id", "user_id", name="uq_event_attendee"),)

    id: int | None = Field(default=None, primary_key=True)
    # the column keeps the name it had before activities were called so in code
    activity_id: int = Field(
        sa_column=Column("event_id", Integer, ForeignKey("calendar_event.id"), nullable=False, index=True)
    )
    user_id: str = Field(max_length=64)
    status: str = Field(default=AttendeeStatus.GOING.value, max_length=16)
    joined_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ReminderStatus(StrEnum):
    """Life of a reminder row."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a process; a stale claim is taken over after a lease
    SENT = "sent"
    DROPPED = "dropped"  # found past due after the activity had started
    CANCELLED = "cancelled"  # the activity was cancelled or moved, or the attendee left


class ActivityReminder(SQLModel, table=True):
    """One reminder to send: to an alliance's groups (``alliance:ID``) or a person (``user:ID``)."""

    __tablename__ = "event_reminder"
    __table_args__ = (
        UniqueConstraint("event_id", "sequence", "kind", "target", name="uq_event_reminder"),
        Index("ix_event_reminder_due", "status", "due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # the column keeps the name it had before activities were called so in code
    activity_id: int = Field(
        sa_column=Column("event_id", Integer, ForeignKey("calendar_event.id"), nullable=False, index=True)
    )
    sequence: int = 0  # the activity's sequence when planned; a move plans a new generation
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
    promoted: ActivityAttendee | None


@dataclass(slots=True, frozen=True)
class Roll:
    """An activity's attendees: those with a seat and the waiting list, each in order."""

    going: list[ActivityAttendee]
    waiting: list[ActivityAttendee]


class ActivityRepo:
    """Activities, attendees, reminders and duty notices."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    @property
    def _postgres(self) -> bool:
        return bool(self._sessions.kw["bind"].dialect.name == "postgresql")

    # -- activities ----------------------------------------------------------------------------------

    async def create(self, activity: Activity) -> Activity:
        """Store a new activity; if one was already created by the same message (``message_key``), that one."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(activity)
        except IntegrityError:
            existing = await self.by_message(activity.message_key) if activity.message_key else None
            if existing is None:
                raise
            return existing
        return activity

    async def by_message(self, message_key: str) -> Activity | None:
        """The activity created by a message."""
        async with self._sessions() as session:
            query = select(Activity).where(Activity.message_key == message_key)
            return (await session.exec(query)).first()

    async def get(self, activity_id: int) -> Activity | None:
        """One activity by id."""
        async with self._sessions() as session:
            return await session.get(Activity, activity_id)

    async def upcoming(
        self,
        now: datetime,
        *,
        alliance_id: str | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[Activity]:
        """Scheduled activities not yet started, soonest first; for one alliance, its own and alliance-wide ones."""
        query = (
            select(Activity)
            .where(Activity.status == ActivityStatus.SCHEDULED.value)
            .where(col(Activity.start) > now)
            .order_by(col(Activity.start), col(Activity.id))
            .limit(limit)
        )
        if until is not None:
            query = query.where(col(Activity.start) <= until)
        if alliance_id is not None:
            query = query.where(
                or_(col(Activity.alliance_id) == alliance_id, col(Activity.alliance_id).is_(None))
            )
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def for_calendar(self, since: datetime, *, alliance_id: str | None = None) -> list[Activity]:
        """Activities for an iCalendar feed (cancelled ones too, so subscribers drop them), from ``since``."""
        query = (
            select(Activity)
            .where(col(Activity.start) >= since)
            .order_by(col(Activity.start), col(Activity.id))
        )
        if alliance_id is not None:
            query = query.where(
                or_(col(Activity.alliance_id) == alliance_id, col(Activity.alliance_id).is_(None))
            )
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def exists(self, *, activity_type: str, alliance_id: str, since: datetime, until: datetime) -> bool:
        """Whether a scheduled activity of a type for the alliance (or a joint one) starts in [since, until)."""
        query = (
            select(func.count())
            .select_from(Activity)
            .where(Activity.type == activity_type)
            .where(Activity.status == ActivityStatus.SCHEDULED.value)
            .where(col(Activity.start) >= since, col(Activity.start) < until)
            .where(
                or_(col(Activity.alliance_id) == alliance_id, col(Activity.alliance_id).is_(None))
            )
        )
        async with self._sessions() as session:
            return bool((await session.exec(query)).one())

    async def cancel(self, activity_id: int, *, at: datetime, note: str = "") -> Activity | None:
        """Cancel an activity (sequence + 1) and its pending reminders; None if it was not scheduled."""
        async with self._sessions() as session, session.begin():
            activity = await session.get(Activity, activity_id, with_for_update=self._postgres)
            if activity is None or activity.cancelled:
                return None
            activity.status = ActivityStatus.CANCELLED.value
            activity.sequence += 1
            activity.updated_at = at
            activity.note = note
            await self._cancel_reminders(session, activity_id, at=at, detail="活动已取消")
            return activity

    async def move(
        self, activity_id: int, *, start: datetime, at: datetime, ends_at: datetime | None = None
    ) -> tuple[datetime, Activity] | None:
        """Move a scheduled activity (sequence + 1), cancelling its pending reminders; returns the old start.
        Without a new ``ends_at`` an end time keeps its distance from the start."""
        async with self._sessions() as session, session.begin():
            activity = await session.get(Activity, activity_id, with_for_update=self._postgres)
            if activity is None or activity.cancelled:
                return None
            old = activity.start
            if ends_at is None and activity.ends_at is not None:
                ends_at = start + (activity.ends_at - activity.start)
            activity.start, activity.ends_at = start, ends_at
            activity.sequence += 1
            activity.updated_at = at
            await self._cancel_reminders(session, activity_id, at=at, detail="活动已改期")
            return old, activity

    # -- attendees -------------------------------------------------------------------------------

    async def roll(self, activity_id: int) -> Roll:
        """Who has a seat and who waits, each in sign-up order."""
        async with self._sessions() as session:
            rows = list(
                (
                    await session.exec(
                        select(ActivityAttendee)
                        .where(ActivityAttendee.activity_id == activity_id)
                        .order_by(col(ActivityAttendee.joined_at), col(ActivityAttendee.id))
                    )
                ).all()
            )
        return Roll(
            going=[r for r in rows if r.status == AttendeeStatus.GOING.value],
            waiting=[r for r in rows if r.status == AttendeeStatus.WAITING.value],
        )

    async def going_counts(self, activity_ids: Iterable[int]) -> dict[int, int]:
        """Seats taken per activity."""
        ids = list(activity_ids)
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = await session.exec(
                select(ActivityAttendee.activity_id, func.count())
                .where(col(ActivityAttendee.activity_id).in_(ids))
                .where(ActivityAttendee.status == AttendeeStatus.GOING.value)
                .group_by(col(ActivityAttendee.activity_id))
            )
            return {activity_id: count for activity_id, count in rows.all()}

    async def join(self, activity: Activity, user_id: str, *, at: datetime) -> JoinResult:
        """Take a seat, or a place on the waiting list when the activity is full."""
        assert activity.id is not None
        async with self._sessions() as session, session.begin():
            if self._postgres:  # serialise sign-ups per activity so capacity holds under concurrency
                await session.get(Activity, activity.id, with_for_update=True)
            rows = list(
                (
                    await session.exec(
                        select(ActivityAttendee)
                        .where(ActivityAttendee.activity_id == activity.id)
                        .order_by(col(ActivityAttendee.joined_at), col(ActivityAttendee.id))
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
            full = activity.capacity is not None and going >= activity.capacity
            status = AttendeeStatus.WAITING if full else AttendeeStatus.GOING
            row = ActivityAttendee(activity_id=activity.id, user_id=user_id, status=status.value, joined_at=at)
            session.add(row)
            await session.flush()
            assert row.id is not None
            return JoinResult(status, len(waiting) + 1 if full else 0, False, row.id)

    async def leave(self, activity: Activity, user_id: str) -> LeaveResult:
        """Give up a seat or a waiting-list place; the first on the waiting list takes a freed seat."""
        assert activity.id is not None
        async with self._sessions() as session, session.begin():
            if self._postgres:
                await session.get(Activity, activity.id, with_for_update=True)
            rows = list(
                (
                    await session.exec(
                        select(ActivityAttendee)
                        .where(ActivityAttendee.activity_id == activity.id)
                        .order_by(col(ActivityAttendee.joined_at), col(ActivityAttendee.id))
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
                update(ActivityReminder)
                .where(col(ActivityReminder.activity_id) == activity.id)
                .where(col(ActivityReminder.target) == f"user:{user_id}")
                .where(col(ActivityReminder.status) == ReminderStatus.PENDING.value)
                .values(status=ReminderStatus.CANCELLED.value, detail="已取消报名")
            )
            promoted = None
            going = sum(1 for r in rows if r.status == AttendeeStatus.GOING.value) - (1 if was_going else 0)
            waiting = [r for r in rows if r.status == AttendeeStatus.WAITING.value and r is not mine]
            if waiting and (activity.capacity is None or going < activity.capacity):
                promoted = waiting[0]
                promoted.status = AttendeeStatus.GOING.value
            return LeaveResult(True, was_going, promoted)

    # -- reminders -------------------------------------------------------------------------------

    async def add_reminders(self, reminders: Sequence[ActivityReminder]) -> int:
        """Plan reminders; one already planned (same activity, generation, kind and target) is kept as is."""
        if not reminders:
            return 0
        try:
            return await self._add_reminders(reminders)
        except IntegrityError:
            # another process planned some of the same reminders meanwhile: go row by row
            added = 0
            for reminder in reminders:
                try:
                    added += await self._add_reminders([ActivityReminder.model_validate(reminder.model_dump())])
                except IntegrityError:
                    continue
            return added

    async def _add_reminders(self, reminders: Sequence[ActivityReminder]) -> int:
        added = 0
        async with self._sessions() as session, session.begin():
            existing = set(
                (
                    await session.exec(
                        select(
                            ActivityReminder.activity_id,
                            ActivityReminder.sequence,
                            ActivityReminder.kind,
                            ActivityReminder.target,
                        ).where(col(ActivityReminder.activity_id).in_({r.activity_id for r in reminders}))
                    )
                ).all()
            )
            for reminder in reminders:
                key = (reminder.activity_id, reminder.sequence, reminder.kind, reminder.target)
                if key in existing:
                    continue
                existing.add(key)
                session.add(reminder)
                added += 1
        return added

    async def claim_due_reminders(
        self, now: datetime, *, worker: str, limit: int = 200, lease: timedelta = timedelta(minutes=5)
    ) -> list[ActivityReminder]:
        """Atomically claim due reminders (and ones whose claimer died) for ``worker``."""
        due = or_(
            and_(col(ActivityReminder.status) == ReminderStatus.PENDING.value, col(ActivityReminder.due) <= now),
            and_(
                col(ActivityReminder.status) == ReminderStatus.SENDING.value,
                col(ActivityReminder.claimed_at) < now - lease,
            ),
        )
        candidates = (
            select(col(ActivityReminder.id))
            .where(due)
            .order_by(col(ActivityReminder.due), col(ActivityReminder.id))
            .limit(limit)
        )
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(ActivityReminder)
            .where(col(ActivityReminder.id).in_(candidates.scalar_subquery()))
            .where(due)  # re-checked under the row lock / write lock
            .values(
                status=ReminderStatus.SENDING.value,
                claimed_by=worker,
                claimed_at=now,
                attempts=ActivityReminder.attempts + 1,
            )
            .returning(col(ActivityReminder.id))
        )
        async with self._sessions() as session, session.begin():
            ids = list((await session.exec(statement)).scalars().all())
            if not ids:
                return []
            rows = await session.exec(
                select(ActivityReminder).where(col(ActivityReminder.id).in_(ids)).order_by(col(ActivityReminder.due))
            )
            return list(rows.all())

    async def finish_reminder(
        self, reminder_id: int, *, status: ReminderStatus, at: datetime, detail: str = ""
    ) -> None:
        """Record how a claimed reminder ended (sent or dropped)."""
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(ActivityReminder)
                .where(col(ActivityReminder.id) == reminder_id)
                .values(status=status.value, finished_at=at, detail=detail[:500])
            )

    async def pending_reminders(self, *, limit: int | None = None) -> list[ActivityReminder]:
        """Reminders still to send, soonest first."""
        query = (
            select(ActivityReminder)
            .where(
                col(ActivityReminder.status).in_([ReminderStatus.PENDING.value, ReminderStatus.SENDING.value])
            )
            .order_by(col(ActivityReminder.due), col(ActivityReminder.id))
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._sessions() as session:
            return list((await session.exec(query)).all())

    async def reminders_of(self, activity_id: int) -> list[ActivityReminder]:
        """Every reminder of one activity (all generations), by due time."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(ActivityReminder)
                .where(ActivityReminder.activity_id == activity_id)
                .order_by(col(ActivityReminder.due), col(ActivityReminder.id))
            )
            return list(rows.all())

    async def next_due(self) -> datetime | None:
        """When the earliest pending reminder is due."""
        async with self._sessions() as session:
            return (
                await session.exec(
                    select(func.min(ActivityReminder.due)).where(
                        ActivityReminder.status == ReminderStatus.PENDING.value
                    )
                )
            ).one()

    @staticmethod
    async def _cancel_reminders(session: AsyncSession, activity_id: int, *, at: datetime, detail: str) -> None:
        await session.exec(
            update(ActivityReminder)
            .where(col(ActivityReminder.activity_id) == activity_id)
            .where(col(ActivityReminder.status) == ReminderStatus.PENDING.value)
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
