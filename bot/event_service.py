"""The events feature's service: create, move and cancel events, sign-ups, and reminders from plan to send.

What must be sent lives in ``event_reminder`` rows. The ``reminders-sweep`` job claims due rows atomically and
queues each through the outbox with ``dedupe_key=reminder:{id}`` (a second guard against doubles). For
precision without one APScheduler job per reminder, one ``date`` job is armed for the earliest pending due
time and re-armed after each sweep and each change of plan; the interval sweep is the safety net.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.event_types import EventType, duration_label, offset_code, parse_offsets, parse_offsets_by_type
from bot.scheduler import WORKER_ID, JobRegistry
from bot.services import Services
from bot.store.events import (
    AttendeeStatus,
    CalendarEvent,
    EventReminder,
    EventRepo,
    JoinResult,
    LeaveResult,
    ReminderStatus,
)
from bot.timeparse import format_when

log = logging.getLogger(__name__)

SWEEP_JOB = "reminders-sweep"
ARMED_JOB_ID = "reminders-next-due"
ALL_ALLIANCES = "全体联盟"


@dataclass(slots=True, frozen=True)
class ReminderPlan:
    """When reminders go out before an event: to the groups, and to each attendee personally."""

    group: tuple[timedelta, ...]
    attendee: tuple[timedelta, ...]


@dataclass(slots=True, frozen=True)
class SweepResult:
    """What one reminder sweep did."""

    sent: int = 0
    dropped: int = 0
    cancelled: int = 0

    def __str__(self) -> str:
        return f"sent {self.sent}, dropped {self.dropped}, cancelled {self.cancelled}"


class EventService:
    """Events and their reminders; registered as a feature service (``services.feature(EventService)``)."""

    def __init__(self, services: Services, *, scheduler: AsyncIOScheduler | None, jobs: JobRegistry) -> None:
        self.services = services
        self.repo = EventRepo(services.store.sessions)
        self._scheduler = scheduler
        self._jobs = jobs
        settings = services.settings
        self._group_default = parse_offsets(settings.reminder_offsets)
        self._group_by_type = parse_offsets_by_type(settings.reminder_offsets_by_type)
        self._attendee = parse_offsets(settings.reminder_attendee_offsets)

    # -- planning --------------------------------------------------------------------------------

    def plan(self, event_type: str) -> ReminderPlan:
        """The reminder offsets for an event type (settings default or the type's override)."""
        group = self._group_default
        try:
            group = self._group_by_type.get(EventType(event_type), group)
        except ValueError:
            pass
        return ReminderPlan(group=group, attendee=self._attendee)

    async def group_targets(self, event: CalendarEvent) -> list[str]:
        """Alliance targets of an event's group reminders: its alliance, or every alliance for a joint one."""
        if event.alliance_id is not None:
            return [f"alliance:{event.alliance_id}"]
        return [f"alliance:{a.id}" for a in await self.services.store.alliances.all()]

    async def plan_group_reminders(self, event: CalendarEvent, now: datetime) -> list[EventReminder]:
        """Plan the group reminders still in the future, plus attendee reminders for those with a seat."""
        assert event.id is not None
        plan = self.plan(event.type)
        rows = [
            EventReminder(
                event_id=event.id,
                sequence=event.sequence,
                kind=f"group:{offset_code(offset)}",
                target=target,
                due=event.start - offset,
            )
            for offset in plan.group
            if event.start - offset > now
            for target in await self.group_targets(event)
        ]
        roll = await self.repo.roll(event.id)
        for attendee in roll.going:
            rows.extend(self._attendee_rows(event, attendee.user_id, now))
        await self.repo.add_reminders(rows)
        await self.arm()
        return rows

    def _attendee_rows(self, event: CalendarEvent, user_id: str, now: datetime) -> list[EventReminder]:
        assert event.id is not None
        return [
            EventReminder(
                event_id=event.id,
                sequence=event.sequence,
                kind=f"attendee:{offset_code(offset)}",
                target=f"user:{user_id}",
                due=event.start - offset,
            )
            for offset in self.plan(event.type).attendee
            if event.start - offset > now
        ]

    async def plan_attendee_reminders(self, event: CalendarEvent, user_id: str, now: datetime) -> int:
        """Plan an attendee's personal reminders (those still in the future)."""
        added = await self.repo.add_reminders(self._attendee_rows(event, user_id, now))
        if added:
            await self.arm()
        return added

    # -- changes ---------------------------------------------------------------------------------

    async def create(self, event: CalendarEvent) -> tuple[CalendarEvent, list[EventReminder]]:
        """Store an event, plan its reminders and announce it to its groups."""
        now = self.services.clock.now()
        event.created_at = event.updated_at = now
        # a retry of the message that created it gets the same event; planning and announcing are idempotent,
        # so a retry that took over an interrupted message completes what it began
        event = await self.repo.create(event)
        reminders = await self.plan_group_reminders(event, now)
        await self._announce(event, self.announcement(event), key=f"event:{event.id}:created")
        return event, reminders

    async def move(self, event_id: int, start: datetime) -> tuple[datetime, CalendarEvent] | None:
        """Move an event: new reminders, and attendees and groups are told."""
        now = self.services.clock.now()
        moved = await self.repo.move(event_id, start=start, at=now)
        if moved is None:
            return None
        old, event = moved
        await self.plan_group_reminders(event, now)
        text = (
            f"【活动改期】{type_label(event.type)}「{event.title}」（#{event.id}）改期了：\n"
            f"原定：{format_when(old.astimezone(self.services.settings.tz))}\n"
            f"改为：{format_when(self.local(event.start))}"
            + (f"\n地点：{event.place}" if event.place else "")
        )
        key = f"event:{event.id}:moved:{event.sequence}"
        await self._announce(event, text, key=key)
        await self._tell_attendees(
            event, text + "\n如新时间无法参加，请发送 /取消报名 " + str(event.id), key=key
        )
        return old, event

    async def cancel(self, event_id: int, reason: str = "") -> CalendarEvent | None:
        """Cancel an event: reminders stop, attendees and groups are told."""
        now = self.services.clock.now()
        event = await self.repo.cancel(event_id, at=now, note=reason)
        if event is None:
            return None
        text = (
            f"【活动取消】{type_label(event.type)}「{event.title}」（#{event.id}，原定 "
            f"{format_when(self.local(event.start))}）已取消。" + (f"\n原因：{reason}" if reason else "")
        )
        key = f"event:{event.id}:cancelled"
        await self._announce(event, text, key=key)
        await self._tell_attendees(event, text, key=key)
        await self.arm()
        return event

    async def join(self, event: CalendarEvent, user_id: str) -> JoinResult:
        """Sign up; a seat gets personal reminders planned."""
        now = self.services.clock.now()
        result = await self.repo.join(event, user_id, at=now)
        if result.status == AttendeeStatus.GOING and not result.already:
            await self.plan_attendee_reminders(event, user_id, now)
        return result

    async def leave(self, event: CalendarEvent, user_id: str) -> LeaveResult:
        """Withdraw; whoever moves up from the waiting list is told and gets reminders planned."""
        now = self.services.clock.now()
        result = await self.repo.leave(event, user_id)
        if result.promoted is not None:
            promoted = result.promoted
            await self.plan_attendee_reminders(event, promoted.user_id, now)
            await self.services.outbox.notify_user(
                promoted.user_id,
                f"【候补递补】您已从候补转为正式报名：{type_label(event.type)}「{event.title}」（#{event.id}），"
                f"时间 {format_when(self.local(event.start))}"
                + (f"，地点 {event.place}" if event.place else "")
                + f"。如不能参加，请发送 /取消报名 {event.id}。",
                dedupe_key=f"event:{event.id}:promoted:{promoted.id}",
            )
        return result

    # -- sending ---------------------------------------------------------------------------------

    async def sweep(self, now: datetime) -> SweepResult:
        """Send every due reminder this process claims; drop (and log) those whose event already started."""
        sent = dropped = cancelled = 0
        while True:
            claimed = await self.repo.claim_due_reminders(now, worker=WORKER_ID)
            if not claimed:
                break
            events: dict[int, CalendarEvent | None] = {}
            for reminder in claimed:
                if reminder.event_id not in events:
                    events[reminder.event_id] = await self.repo.get(reminder.event_id)
            latest = _latest_per_target(claimed)
            for reminder in claimed:
                assert reminder.id is not None
                event = events[reminder.event_id]
                if event is None or event.cancelled or event.sequence != reminder.sequence:
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.CANCELLED, at=now, detail="活动已取消或改期"
                    )
                    cancelled += 1
                    continue
                if event.start <= now:
                    log.warning(
                        "dropping reminder %s (%s to %s): event %s started at %s, before the reminder went out",
                        reminder.id,
                        reminder.kind,
                        reminder.target,
                        event.id,
                        event.start.isoformat(),
                    )
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.DROPPED, at=now, detail="活动已开始，提醒未发送"
                    )
                    dropped += 1
                    continue
                if latest[(reminder.event_id, reminder.target)] is not reminder:
                    # caught up after downtime: one reminder per target, the most recent one, is enough
                    log.info("reminder %s superseded by a later one for the same target", reminder.id)
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.DROPPED, at=now, detail="补发时已由更近的提醒代替"
                    )
                    dropped += 1
                    continue
                try:
                    await self._deliver(event, reminder, now)
                except LookupError as exc:  # the alliance left the roster
                    log.warning("reminder %s: %s", reminder.id, exc)
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.DROPPED, at=now, detail=str(exc)
                    )
                    dropped += 1
                    continue
                await self.repo.finish_reminder(
                    reminder.id, status=ReminderStatus.SENT, at=self.services.clock.now()
                )
                sent += 1
        await self.arm()
        return SweepResult(sent, dropped, cancelled)

    async def _deliver(self, event: CalendarEvent, reminder: EventReminder, now: datetime) -> None:
        key = f"reminder:{reminder.id}"
        kind, _, address = reminder.target.partition(":")
        if kind == "alliance":
            await self.services.outbox.announce(address, await self.group_text(event, now), dedupe_key=key)
        elif kind == "user":
            await self.services.outbox.notify_user(address, self.attendee_text(event, now), dedupe_key=key)
        else:
            raise LookupError(f"unknown reminder target {reminder.target!r}")

    async def group_text(self, event: CalendarEvent, now: datetime) -> str:
        """A group reminder, with the time left and how to sign up."""
        assert event.id is not None
        lines = [
            f"【活动提醒】{type_label(event.type)}「{event.title}」",
            f"时间：{format_when(self.local(event.start))}（还有{duration_label(event.start - now)}）",
        ]
        if event.place:
            lines.append(f"地点：{event.place}")
        going = (await self.repo.going_counts([event.id])).get(event.id, 0)
        if event.capacity is not None:
            left = max(event.capacity - going, 0)
            lines.append(
                f"报名：{going}/{event.capacity} 人"
                + (f"，还剩 {left} 个名额" if left else "，已满（可候补）")
            )
        else:
            lines.append(f"报名：已有 {going} 人")
        lines.append(f"发送 /报名 {event.id} 报名，/活动 {event.id} 查看详情。")
        return "\n".join(lines)

    def attendee_text(self, event: CalendarEvent, now: datetime) -> str:
        """A personal reminder to someone with a seat."""
        text = (
            f"【活动提醒】您报名的{type_label(event.type)}「{event.title}」将于 "
            f"{format_when(self.local(event.start))} 开始（还有{duration_label(event.start - now)}）。"
        )
        if event.place:
            text += f"\n地点：{event.place}"
        return text + f"\n如不能参加，请发送 /取消报名 {event.id} 让出名额。"

    def announcement(self, event: CalendarEvent) -> str:
        """The message a new event is announced with."""
        lines = [
            f"【新活动】{type_label(event.type)}「{event.title}」（#{event.id}）",
            f"时间：{format_when(self.local(event.start))}",
        ]
        if event.place:
            lines.append(f"地点：{event.place}")
        if event.capacity is not None:
            lines.append(f"名额：{event.capacity} 人")
        lines.append(f"发送 /报名 {event.id} 报名。")
        return "\n".join(lines)

    async def _announce(self, event: CalendarEvent, text: str, *, key: str) -> None:
        for target in await self.group_targets(event):
            alliance_id = target.partition(":")[2]
            try:
                await self.services.outbox.announce(alliance_id, text, dedupe_key=f"{key}:{alliance_id}")
            except LookupError:
                log.warning("event %s: alliance %s is not in the roster", event.id, alliance_id)

    async def _tell_attendees(self, event: CalendarEvent, text: str, *, key: str) -> None:
        assert event.id is not None
        roll = await self.repo.roll(event.id)
        for attendee in (*roll.going, *roll.waiting):
            await self.services.outbox.notify_user(
                attendee.user_id, text, dedupe_key=f"{key}:{attendee.user_id}"
            )

    # -- arming ----------------------------------------------------------------------------------

    async def arm(self) -> datetime | None:
        """Arm one APScheduler ``date`` job at the earliest pending due time; returns that time."""
        due = await self.repo.next_due()
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return due
        if due is None:
            try:
                scheduler.remove_job(ARMED_JOB_ID)
            except JobLookupError:
                pass
            return None
        run_at = max(due, self.services.clock.now())
        scheduler.add_job(
            self._jobs.fire,
            trigger="date",
            run_date=run_at,
            args=[SWEEP_JOB],
            id=ARMED_JOB_ID,
            name="下一条活动提醒",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )
        return due

    def local(self, when: datetime) -> datetime:
        """A time in the configured zone."""
        return when.astimezone(self.services.settings.tz)


def type_label(event_type: str) -> str:
    """The Chinese label of a stored event type (e.g. 讲座（大讲堂）)."""
    try:
        return EventType(event_type).label
    except ValueError:
        return event_type


def _latest_per_target(reminders: list[EventReminder]) -> dict[tuple[int, str], EventReminder]:
    latest: dict[tuple[int, str], EventReminder] = {}
    for reminder in reminders:
        key = (reminder.event_id, reminder.target)
        if key not in latest or reminder.due >= latest[key].due:
            latest[key] = reminder
    return latest
