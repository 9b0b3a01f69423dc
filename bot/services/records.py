"""Each studio's record (档案): per year, problems asked / claimed / answered / solved with the median hours
to claim and to solve, topics proposed and joined, achievements by type, awards, activities hosted and
attended, evaluation results and star changes; and its "八有" checklist with who confirmed each item."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from bot.core.dispatcher import Caller, Role, UserError
from bot.core.runtime import Runtime
from bot.store.achievements import Achievement, AchievementRepo, Award
from bot.store.audit import AuditRepo
from bot.store.evaluations import ChecklistItem, EvaluationRepo, Nominee, RecordRepo, StarChange
from bot.store.studios import Studio

if TYPE_CHECKING:
    from bot.store import Store

EIGHT = (
    "有创新团队",
    "有场所设备",
    "有攻关目标",
    "有管理制度",
    "有创新能力",
    "有经费保障",
    "有考核激励",
    "有创新成果",
)


def checklist_item(word: str) -> str | None:
    """One of the eight items from its name with or without 有 (``创新团队`` → ``有创新团队``)."""
    word = word.strip()
    for item in EIGHT:
        if word in (item, item[1:]):
            return item
    return None


@dataclass(slots=True)
class YearRecord:
    """One year of a studio's record."""

    year: int
    asked: int = 0
    claimed: int = 0
    answered: int = 0
    solved: int = 0
    claim_hours: list[float] = field(default_factory=list)
    solve_hours: list[float] = field(default_factory=list)
    topics_proposed: int = 0
    topics_joined: int = 0
    achievements: Counter[str] = field(default_factory=Counter)
    awards: int = 0
    award_yuan: int = 0
    hosted: int = 0
    trainings: int = 0  # hosted activities of the type 培训
    attended: int = 0
    evaluations: list[str] = field(default_factory=list)

    @staticmethod
    def _median(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    @property
    def median_claim_hours(self) -> float | None:
        """Median hours from a problem's logging to the studio's claim."""
        return self._median(self.claim_hours)

    @property
    def median_solve_hours(self) -> float | None:
        """Median hours from a problem's logging to its solution."""
        return self._median(self.solve_hours)


@dataclass(slots=True)
class StudioRecord:
    """A studio's whole record."""

    studio: Studio
    years: dict[int, YearRecord]
    stars: list[StarChange]
    checklist: dict[str, ChecklistItem]
    nominees: list[Nominee]


async def build_record(
    store: Store,
    studio: Studio,
    *,
    tz: tzinfo,
    now: datetime,
    achievements: Sequence[Achievement] | None = None,
    awards: Sequence[Award] | None = None,
) -> StudioRecord:
    """A studio's record, every year with something in it (and the current year). ``achievements`` and
    ``awards`` (the counted ones, as the repository lists them) spare a caller building every studio's record
    reading both tables once per studio."""
    records = RecordRepo(store.sessions)
    evaluations = EvaluationRepo(store.sessions)
    achievement_repo = AchievementRepo(store.sessions)
    years: dict[int, YearRecord] = {}

    def year(when: datetime | None) -> YearRecord | None:
        number = when.astimezone(tz).year if when is not None else None
        if number is None:
            return None
        return years.setdefault(number, YearRecord(number))

    requests, claimed = await records.problems(studio.id)
    for request in requests:
        if (row := year(request.asked_at)) is not None:
            row.asked += 1
    for problem in claimed:
        if (row := year(problem.claimed_at)) is not None:
            row.claimed += 1
            if (hours := _hours(problem.created_at, problem.claimed_at)) is not None:
                row.claim_hours.append(hours)
        if (row := year(problem.answered_at)) is not None:
            row.answered += 1
        if (row := year(problem.solved_at)) is not None:
            row.solved += 1
            if (hours := _hours(problem.created_at, problem.solved_at)) is not None:
                row.solve_hours.append(hours)
    proposed, joined = await records.topics(studio.id)
    for topic in proposed:
        if (row := year(topic.created_at)) is not None:
            row.topics_proposed += 1
    for _topic_id, when in {topic_id: when for topic_id, when in joined}.items():
        if (row := year(when)) is not None:
            row.topics_joined += 1
    if achievements is None:
        achievements = await achievement_repo.all()
    if awards is None:
        awards = await achievement_repo.awards()
    credited = [a for a in achievements if studio.id in a.studios]
    for achievement in credited:
        years.setdefault(achievement.year, YearRecord(achievement.year)).achievements[achievement.type] += 1
    mine = {a.id for a in credited}
    for award in awards:
        if award.studio_id == studio.id or award.achievement_id in mine:
            row = years.setdefault(award.year, YearRecord(award.year))
            row.awards += 1
            row.award_yuan += award.amount
    people = {studio.lead_userid, *await records.members_of(studio.id)}
    hosted, attended = await records.activities(people)
    for activity in hosted:
        if (row := year(activity.start)) is not None:
            row.hosted += 1
            row.trainings += activity.type == "培训"
    for activity in {a.id: a for a, _ in attended}.values():
        if (row := year(activity.start)) is not None:
            row.attended += 1
    nominees = await evaluations.nominees(studio_id=studio.id)
    for nominee in nominees:
        evaluation = await evaluations.round(nominee.round_id)
        if evaluation is None or evaluation.closed_at is None:
            continue
        if (row := year(evaluation.closed_at)) is not None:
            result = {"winner": "入选", "not_selected": "未入选", "unscored": "无人评分"}.get(
                nominee.result, ""
            )
            score = f" {nominee.score:g} 分" if nominee.score is not None else ""
            row.evaluations.append(f"评选 #{evaluation.id} {evaluation.kind}{score} {result}".strip())
    years.setdefault(now.astimezone(tz).year, YearRecord(now.astimezone(tz).year))
    checklist = {item.item: item for item in await evaluations.checklist(studio.id)}
    return StudioRecord(
        studio=studio,
        years=dict(sorted(years.items(), reverse=True)),
        stars=await evaluations.star_history(studio.id),
        checklist=checklist,
        nominees=nominees,
    )


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds() / 3600, 0.0)


class RecordService:
    """Builds studio records and keeps the "八有" checklist."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.records = RecordRepo(runtime.store.sessions)
        self.evaluations = EvaluationRepo(runtime.store.sessions)
        self.achievements = AchievementRepo(runtime.store.sessions)
        self.audit = AuditRepo(runtime.store.sessions)

    async def studio(self, word: str) -> Studio:
        """A studio by id or name, or a refusal."""
        studio = await self.runtime.store.studios.find(word)
        if studio is None:
            raise UserError(f"没有编号为 {word} 的工作室。发送 /工作室 查看全部工作室。")
        return studio

    async def record(self, studio: Studio) -> StudioRecord:
        """The studio's record, every year with something in it (and the current year)."""
        return await build_record(
            self.runtime.store, studio, tz=self.runtime.settings.tz, now=self.runtime.clock.now()
        )

    async def confirm(
        self, studio: Studio, item: str, *, caller: Caller, note: str = "", source: str = "chat"
    ) -> ChecklistItem | None:
        """Confirm one "八有" item (an alliance lead of the studio's alliance, or an admin); returns the earlier
        confirmation when it already was confirmed."""
        if not (caller.at_least(Role.ADMIN) or studio.alliance_id in caller.alliances):
            raise UserError("只有本联盟的联盟负责人或管理员可以确认「八有」条件。")
        now = self.runtime.clock.now()
        earlier = await self.evaluations.confirm_item(
            ChecklistItem(
                studio_id=studio.id, item=item, confirmed_by=caller.user_id, confirmed_at=now, note=note
            )
        )
        if earlier is None:
            await self.audit.record(
                entity="studio",
                entity_id=studio.id,
                action="confirm",
                actor=caller.user_id,
                source=source,
                reason=note,
                after={"八有": item},
                at=now,
            )
        return earlier
