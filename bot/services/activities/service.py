"""The activities feature's service: create, move and cancel activities, sign-ups, and reminders from plan to send.

What must be sent lives in ``event_reminder`` rows. The ``reminders-sweep`` job claims due rows atomically and
queues each through the outbox with ``dedupe_key=reminder:{id}`` (a second guard against doubles). For
precision without one APScheduler job per reminder, one ``date`` job is armed for the earliest pending due
time and re-armed after each sweep and each change of plan; the interval sweep is the safety net.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.runtime import Runtime
from bot.core.scheduler import WORKER_ID, JobRegistry
from bot.services.activities.dates import WhenError, format_when, parse_when
from bot.services.activities.types import (
    ActivityType,
    duration_label,
    offset_code,
    parse_offsets,
    parse_offsets_by_type,
    types_named_in,
)
from bot.store.activities import (
    Activity,
    ActivityAudience,
    ActivityReminder,
    ActivityRepo,
    AttendeeStatus,
    JoinResult,
    LeaveResult,
    ReminderStatus,
)
from bot.store.studios import MemberRole

log = logging.getLogger(__name__)

SWEEP_JOB = "reminders-sweep"
ARMED_JOB_ID = "reminders-next-due"
ALL_ALLIANCES = "全体联盟"


@dataclass(slots=True, frozen=True)
class ReminderPlan:
    """When reminders go out before an activity: to the groups, and to each attendee personally."""

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


class ActivityService:
    """Activities and their reminders; registered as a feature service (``runtime.feature(ActivityService)``)."""

    def __init__(self, runtime: Runtime, *, scheduler: AsyncIOScheduler | None, jobs: JobRegistry) -> None:
        self.runtime = runtime
        self.repo = ActivityRepo(runtime.store.sessions)
        self._scheduler = scheduler
        self._jobs = jobs
        settings = runtime.settings
        self._group_default = parse_offsets(settings.reminder_offsets)
        self._group_by_type = parse_offsets_by_type(settings.reminder_offsets_by_type)
        self._attendee = parse_offsets(settings.reminder_attendee_offsets)

    # -- planning --------------------------------------------------------------------------------

    def plan(self, activity_type: str) -> ReminderPlan:
        """The reminder offsets for an activity type (settings default or the type's override)."""
        group = self._group_default
        try:
            group = self._group_by_type.get(ActivityType(activity_type), group)
        except ValueError:
            pass
        return ReminderPlan(group=group, attendee=self._attendee)

    async def group_targets(self, activity: Activity) -> list[str]:
        """Alliance targets of an activity's announcements and group reminders: its alliance, or every alliance
        for a joint one; none when the activity is for its leads or an invited list (they are told directly)."""
        if activity.for_whom != ActivityAudience.ALL:
            return []
        if activity.alliance_id is not None:
            return [f"alliance:{activity.alliance_id}"]
        return [f"alliance:{a.id}" for a in await self.runtime.store.alliances.all()]

    async def audience_users(self, activity: Activity) -> list[str]:
        """The people a leads-only or invited activity is for (told directly); empty for an open one."""
        if activity.for_whom == ActivityAudience.INVITED:
            return list(dict.fromkeys(activity.invited))
        if activity.for_whom != ActivityAudience.LEADS:
            return []
        return await self.leads_of(activity.alliance_id)

    async def leads_of(self, alliance_id: str | None) -> list[str]:
        """Studio and alliance leads of one alliance (every alliance when None), roster and granted ones."""
        store = self.runtime.store
        alliances = await store.alliances.all()
        wanted = {a.id for a in alliances if alliance_id is None or a.id == alliance_id}
        studios = await store.studios.all()
        in_scope = {s.id for s in studios if s.alliance_id in wanted}
        users = [a.lead_userid for a in alliances if a.id in wanted and a.lead_userid]
        users += [s.lead_userid for s in studios if s.id in in_scope and s.lead_userid]
        for member in await store.members.granted(MemberRole.ALLIANCE_LEAD.value, MemberRole.STUDIO_LEAD.value):
            if member.alliance_id in wanted or member.studio_id in in_scope:
                users.append(member.user_id)
        return list(dict.fromkeys(users))

    async def may_join(self, activity: Activity, user_id: str, *, is_lead: bool) -> bool:
        """Whether this person is in the activity's audience (the organiser always is)."""
        if activity.for_whom == ActivityAudience.ALL or user_id == activity.organizer:
            return True
        if activity.for_whom == ActivityAudience.LEADS:
            return is_lead
        return user_id in activity.invited

    async def plan_group_reminders(self, activity: Activity, now: datetime) -> list[ActivityReminder]:
        """Plan the group reminders still in the future, plus attendee reminders for those with a seat."""
        assert activity.id is not None
        plan = self.plan(activity.type)
        rows = [
            ActivityReminder(
                activity_id=activity.id,
                sequence=activity.sequence,
                kind=f"group:{offset_code(offset)}",
                target=target,
                due=activity.start - offset,
            )
            for offset in plan.group
            if activity.start - offset > now
            for target in await self.group_targets(activity)
        ]
        roll = await self.repo.roll(activity.id)
        for attendee in roll.going:
            rows.extend(self._attendee_rows(activity, attendee.user_id, now))
        await self.repo.add_reminders(rows)
        await self.arm()
        return rows

    def _attendee_rows(self, activity: Activity, user_id: str, now: datetime) -> list[ActivityReminder]:
        assert activity.id is not None
        return [
            ActivityReminder(
                activity_id=activity.id,
                sequence=activity.sequence,
                kind=f"attendee:{offset_code(offset)}",
                target=f"user:{user_id}",
                due=activity.start - offset,
            )
            for offset in self.plan(activity.type).attendee
            if activity.start - offset > now
        ]

    async def plan_attendee_reminders(self, activity: Activity, user_id: str, now: datetime) -> int:
        """Plan an attendee's personal reminders (those still in the future)."""
        added = await self.repo.add_reminders(self._attendee_rows(activity, user_id, now))
        if added:
            await self.arm()
        return added

    # -- changes ---------------------------------------------------------------------------------

    async def create(self, activity: Activity) -> tuple[Activity, list[ActivityReminder]]:
        """Store an activity, plan its reminders and announce it to its groups."""
        now = self.runtime.clock.now()
        activity.created_at = activity.updated_at = now
        # a retry of the message that created it gets the same activity; planning and announcing are idempotent,
        # so a retry that took over an interrupted message completes what it began
        activity = await self.repo.create(activity)
        reminders = await self.plan_group_reminders(activity, now)
        await self._announce(
            activity,
            self.announcement(activity),
            key=f"event:{activity.id}:created",
            meta={"card": "activity", "activity": str(activity.id)},  # 报名 / 取消报名 where cards are shown
        )
        return activity, reminders

    async def move(
        self, activity_id: int, start: datetime, ends_at: datetime | None = None
    ) -> tuple[datetime, Activity] | None:
        """Move an activity: new reminders, and attendees and groups are told."""
        now = self.runtime.clock.now()
        moved = await self.repo.move(activity_id, start=start, ends_at=ends_at, at=now)
        if moved is None:
            return None
        old, activity = moved
        await self.plan_group_reminders(activity, now)
        text = (
            f"【活动改期】{type_label(activity.type)}「{activity.title}」（#{activity.id}）改期了：\n"
            f"原定：{format_when(old.astimezone(self.runtime.settings.tz))}\n"
            f"改为：{self.when_text(activity)}"
            + (f"\n地点：{activity.place}" if activity.place else "")
        )
        key = f"event:{activity.id}:moved:{activity.sequence}"
        await self._announce(activity, text, key=key)
        await self._tell_attendees(
            activity, text + "\n如新时间无法参加，请发送 /取消报名 " + str(activity.id), key=key
        )
        return old, activity

    async def cancel(self, activity_id: int, reason: str = "") -> Activity | None:
        """Cancel an activity: reminders stop, attendees and groups are told."""
        now = self.runtime.clock.now()
        activity = await self.repo.cancel(activity_id, at=now, note=reason)
        if activity is None:
            return None
        text = (
            f"【活动取消】{type_label(activity.type)}「{activity.title}」（#{activity.id}，原定 "
            f"{format_when(self.local(activity.start))}）已取消。" + (f"\n原因：{reason}" if reason else "")
        )
        key = f"event:{activity.id}:cancelled"
        await self._announce(activity, text, key=key)
        await self._tell_attendees(activity, text, key=key)
        await self.arm()
        return activity

    async def join(self, activity: Activity, user_id: str) -> JoinResult:
        """Sign up; a seat gets personal reminders planned."""
        now = self.runtime.clock.now()
        result = await self.repo.join(activity, user_id, at=now)
        if result.status == AttendeeStatus.GOING and not result.already:
            await self.plan_attendee_reminders(activity, user_id, now)
        return result

    async def leave(self, activity: Activity, user_id: str) -> LeaveResult:
        """Withdraw; whoever moves up from the waiting list is told and gets reminders planned."""
        now = self.runtime.clock.now()
        result = await self.repo.leave(activity, user_id)
        if result.promoted is not None:
            promoted = result.promoted
            await self.plan_attendee_reminders(activity, promoted.user_id, now)
            await self.runtime.outbox.notify_user(
                promoted.user_id,
                f"【候补递补】您已从候补转为正式报名：{type_label(activity.type)}「{activity.title}」（#{activity.id}），"
                f"时间 {format_when(self.local(activity.start))}"
                + (f"，地点 {activity.place}" if activity.place else "")
                + f"。如不能参加，请发送 /取消报名 {activity.id}。",
                dedupe_key=f"event:{activity.id}:promoted:{promoted.id}",
            )
        return result

    # -- sending ---------------------------------------------------------------------------------

    async def sweep(self, now: datetime) -> SweepResult:
        """Send every due reminder this process claims; drop (and log) those whose activity already started."""
        sent = dropped = cancelled = 0
        while True:
            claimed = await self.repo.claim_due_reminders(now, worker=WORKER_ID)
            if not claimed:
                break
            activities: dict[int, Activity | None] = {}
            for reminder in claimed:
                if reminder.activity_id not in activities:
                    activities[reminder.activity_id] = await self.repo.get(reminder.activity_id)
            latest = _latest_per_target(claimed)
            for reminder in claimed:
                assert reminder.id is not None
                activity = activities[reminder.activity_id]
                if activity is None or activity.cancelled or activity.sequence != reminder.sequence:
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.CANCELLED, at=now, detail="活动已取消或改期"
                    )
                    cancelled += 1
                    continue
                if activity.start <= now:
                    log.warning(
                        "dropping reminder %s (%s to %s): event %s started at %s, before the reminder went out",
                        reminder.id,
                        reminder.kind,
                        reminder.target,
                        activity.id,
                        activity.start.isoformat(),
                    )
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.DROPPED, at=now, detail="活动已开始，提醒未发送"
                    )
                    dropped += 1
                    continue
                if latest[(reminder.activity_id, reminder.target)] is not reminder:
                    # caught up after downtime: one reminder per target, the most recent one, is enough
                    log.info("reminder %s superseded by a later one for the same target", reminder.id)
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.DROPPED, at=now, detail="补发时已由更近的提醒代替"
                    )
                    dropped += 1
                    continue
                try:
                    await self._deliver(activity, reminder, now)
                except LookupError as exc:  # the alliance left the roster
                    log.warning("reminder %s: %s", reminder.id, exc)
                    await self.repo.finish_reminder(
                        reminder.id, status=ReminderStatus.DROPPED, at=now, detail=str(exc)
                    )
                    dropped += 1
                    continue
                await self.repo.finish_reminder(
                    reminder.id, status=ReminderStatus.SENT, at=self.runtime.clock.now()
                )
                sent += 1
        await self.arm()
        return SweepResult(sent, dropped, cancelled)

    async def _deliver(self, activity: Activity, reminder: ActivityReminder, now: datetime) -> None:
        key = f"reminder:{reminder.id}"
        kind, _, address = reminder.target.partition(":")
        if kind == "alliance":
            await self.runtime.outbox.announce(address, await self.group_text(activity, now), dedupe_key=key)
        elif kind == "user":
            await self.runtime.outbox.notify_user(address, self.attendee_text(activity, now), dedupe_key=key)
        else:
            raise LookupError(f"unknown reminder target {reminder.target!r}")

    async def group_text(self, activity: Activity, now: datetime) -> str:
        """A group reminder, with the time left and how to sign up."""
        assert activity.id is not None
        lines = [
            f"【活动提醒】{type_label(activity.type)}「{activity.title}」",
            f"时间：{self.when_text(activity)}（还有{duration_label(activity.start - now)}）",
        ]
        if activity.place:
            lines.append(f"地点：{activity.place}")
        going = (await self.repo.going_counts([activity.id])).get(activity.id, 0)
        if activity.capacity is not None:
            left = max(activity.capacity - going, 0)
            lines.append(
                f"报名：{going}/{activity.capacity} 人"
                + (f"，还剩 {left} 个名额" if left else "，已满（可候补）")
            )
        else:
            lines.append(f"报名：已有 {going} 人")
        lines.append(f"发送 /报名 {activity.id} 报名，/活动 {activity.id} 查看详情。")
        return "\n".join(lines)

    def attendee_text(self, activity: Activity, now: datetime) -> str:
        """A personal reminder to someone with a seat."""
        text = (
            f"【活动提醒】您报名的{type_label(activity.type)}「{activity.title}」将于 "
            f"{format_when(self.local(activity.start))} 开始（还有{duration_label(activity.start - now)}）。"
        )
        if activity.place:
            text += f"\n地点：{activity.place}"
        return text + f"\n如不能参加，请发送 /取消报名 {activity.id} 让出名额。"

    def announcement(self, activity: Activity) -> str:
        """The message a new activity is announced with."""
        lines = [
            f"【新活动】{type_label(activity.type)}「{activity.title}」（#{activity.id}）",
            f"时间：{self.when_text(activity)}",
        ]
        if activity.place:
            lines.append(f"地点：{activity.place}")
        if activity.capacity is not None:
            lines.append(f"名额：{activity.capacity} 人")
        if activity.for_whom != ActivityAudience.ALL:
            lines.append(f"对象：{activity.for_whom.label}（本通知单独发给您）")
        lines.append(f"发送 /报名 {activity.id} 报名。")
        return "\n".join(lines)

    async def schedule_answer(self, text: str, now: datetime) -> str | None:
        """Answer a question about an activity's time or place (``明天大讲堂几点开始？在哪个会议室``) from the
        calendar: the open activities of the next weeks that match the day and type (or title words) it
        names. None when it names neither, so the caller answers as to any chatter."""
        day = _day_named_in(text, now.astimezone(self.runtime.settings.tz))
        kinds = {k.value for k in types_named_in(text)}
        candidates = [
            a
            for a in await self.repo.upcoming(now, until=now + SCHEDULE_HORIZON, limit=200)
            if a.for_whom == ActivityAudience.ALL
        ]
        if day is not None:
            candidates = [a for a in candidates if self.local(a.start).date() == day]
        if kinds:
            candidates = [a for a in candidates if a.type in kinds]
        elif candidates:
            words = _bigrams(text)
            scored = [(len(words & _bigrams(a.title)), a) for a in candidates]
            best = max(score for score, _ in scored)
            if best:
                candidates = [a for score, a in scored if score == best]
            elif day is None:
                return None
        if day is None and not kinds and not candidates:
            return None
        if not candidates:
            what = "、".join(type_label(k) for k in sorted(kinds)) or "活动"
            when = f"{day.month}月{day.day}日" if day else "近期"
            return f"日历里没有找到{when}的{what}。发送 /活动列表 查看近期活动。"
        lines = []
        for activity in candidates[:3]:
            place = f"，地点：{activity.place}" if activity.place else "，地点未定"
            lines.append(
                f"{type_label(activity.type)}「{activity.title}」（#{activity.id}）：{self.when_text(activity)}{place}"
            )
        if len(candidates) > 3:
            lines.append(f"另有 {len(candidates) - 3} 个，发送 /活动列表 查看。")
        lines.append(f"详情：/活动 {candidates[0].id}；报名：/报名 {candidates[0].id}")
        return "\n".join(lines)

    def when_text(self, activity: Activity) -> str:
        """``2026年12月9日（星期三）15:00`` or, with an end time, ``…15:00–17:00``."""
        text = format_when(self.local(activity.start))
        if activity.ends_at is not None:
            end = self.local(activity.ends_at)
            same_day = end.date() == self.local(activity.start).date()
            text += f"–{end:%H:%M}" if same_day else f" 至 {format_when(end)}"
        return text

    async def _announce(
        self, activity: Activity, text: str, *, key: str, meta: dict[str, str] | None = None
    ) -> None:
        for user_id in await self.audience_users(activity):
            await self.runtime.outbox.notify_user(user_id, text, dedupe_key=f"{key}:user:{user_id}", meta=meta)
        for target in await self.group_targets(activity):
            alliance_id = target.partition(":")[2]
            try:
                await self.runtime.outbox.announce(
                    alliance_id, text, dedupe_key=f"{key}:{alliance_id}", meta=meta
                )
            except LookupError:
                log.warning("event %s: alliance %s is not in the roster", activity.id, alliance_id)

    async def _tell_attendees(self, activity: Activity, text: str, *, key: str) -> None:
        assert activity.id is not None
        roll = await self.repo.roll(activity.id)
        for attendee in (*roll.going, *roll.waiting):
            await self.runtime.outbox.notify_user(
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
        run_at = max(due, self.runtime.clock.now())
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
        return when.astimezone(self.runtime.settings.tz)


def type_label(activity_type: str) -> str:
    """The Chinese label of a stored activity type (e.g. 讲座（大讲堂）)."""
    try:
        return ActivityType(activity_type).label
    except ValueError:
        return activity_type


def _latest_per_target(reminders: list[ActivityReminder]) -> dict[tuple[int, str], ActivityReminder]:
    latest: dict[tuple[int, str], ActivityReminder] = {}
    for reminder in reminders:
        key = (reminder.activity_id, reminder.target)
        if key not in latest or reminder.due >= latest[key].due:
            latest[key] = reminder
    return latest


SCHEDULE_HORIZON = timedelta(days=45)
_DAY_WORDS = re.compile(
    r"(?:大后天|今天|明天|后天|今晚|明晚)|(?:下下|下|本|这)?(?:周|星期|礼拜)[一二三四五六日天]"
    r"|\d{1,2}月\d{1,2}[日号]?|(?<![\d月])\d{1,2}[日号](?![线楼])"
)


def _day_named_in(text: str, now: datetime) -> date | None:
    """The day a question names (今天, 明天, 周五, 12月5日…), read with the activities' date parser."""
    match = _DAY_WORDS.search(text)
    if match is None:
        return None
    word = {"今晚": "今天", "明晚": "明天"}.get(match.group(0), match.group(0))
    try:
        return parse_when(word, now=now, allow_past=True).date()
    except WhenError:
        return None


def _bigrams(text: str) -> set[str]:
    """Character pairs of the CJK runs of ``text``."""
    return {run[i : i + 2] for run in re.findall(r"[\u4e00-\u9fff]+", text) for i in range(len(run) - 1)}
