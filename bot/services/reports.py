"""The alliance's year in figures: an XLSX workbook, PNG charts, and the same summary as a short Chinese text.

``collect`` reads the database (problems through the problems feature's model, activities through ``ActivityRepo``,
topics, achievements and awards through this feature's repos) into a ``YearReport`` of plain numbers;
``write_workbook`` and ``write_charts`` render it; ``summary_rows`` are the figures the charter cares about —
the first sheet of the workbook and the text of ``/stats``.

Awards are money, and money must add up the same way everywhere. The one rule, stated to users as
``AWARD_SHARE_RULE``: an award is split equally among its credited studios (the achievement's studios, or the one
studio awarded), and each share counts for that studio's alliance; the yuan that do not divide evenly go to the
first credited studio. ``split_award`` applies it to one award and ``YearReport.awards_by_alliance`` sums it; the
``/stats`` text, the summary and awards sheets and the awards chart all read that sum, so per-alliance amounts add
up to the total in each of them, and a one-alliance report counts only that alliance's shares.

Charts need a CJK font for their Chinese labels. When none is installed (``fc-list :lang=zh`` is empty; on
Debian ``apt-get install fonts-noto-cjk``), the charts fall back to English labels and alliance ids instead of
showing empty boxes, and the report still succeeds.
"""

from __future__ import annotations

import logging
import re
import statistics
import threading
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from bot.core.dispatcher import Caller, Role
from bot.services import reports_quality
from bot.services.reports_evaluations import (
    EvaluationFacts,
    collect_evaluations,
    write_evaluation_sheets,
    write_stars_chart,
)
from bot.store import Store
from bot.store.achievements import Achievement, AchievementRepo, AchievementType, Award
from bot.store.problems import Problem
from bot.store.studios import Alliance, Studio
from bot.store.topics import TopicRepo

log = logging.getLogger(__name__)

MONTHS = tuple(range(1, 13))
ANNUAL_MEETING = "年会"
PERCENT = "0.0%"  # number format of rates in the workbook
NOTE = "注"  # the label of a summary row that is a footnote
# the alliance key for award money whose studios are not (or no longer) in the roster
UNASSIGNED = ""
UNASSIGNED_NAME = "未归属联盟"
AWARD_SHARE_RULE = (
    "奖励金额口径：一项奖励由多个工作室共享时，金额按获奖工作室平均分摊，每份计入该工作室所属联盟"
    "（除不尽的零头计入第一个署名工作室）；各联盟金额之和等于合计。"
)
# Modules adding sections to the report: each has ``collect``, ``summary_rows``, ``summary_lines``,
# ``write_sheets`` and ``write_charts`` (see ``bot.services.reports_funds``).
REPORT_SECTIONS: tuple[str, ...] = ("bot.services.reports_funds",)
# CJK fonts to look for, best first; matplotlib knows fonts by family name.
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "AR PL UMing CN",
    "Droid Sans Fallback",
    "Noto Serif CJK SC",
)
_EVENT_TYPES_EN = {
    "讲座": "lecture",
    "年会": "annual",
    "观摩": "visit",
    "研讨": "seminar",
    "评鉴": "review",
    "培训": "training",
    "会议": "meeting",
}
_ACHIEVEMENT_TYPES_EN = {
    AchievementType.INVENTION_PATENT.value: "invention patent",
    AchievementType.UTILITY_PATENT.value: "utility model",
    AchievementType.CONSTRUCTION_METHOD.value: "construction method",
    AchievementType.QC.value: "QC result",
    AchievementType.SCIENCE_AWARD.value: "S&T progress award",
    AchievementType.WORKER_INNOVATION.value: "worker innovation",
    AchievementType.MANAGEMENT_INNOVATION.value: "management innovation",
}


# -- the numbers -----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class ProblemFacts:
    """What the report needs of one problem."""

    alliance_id: str
    created_at: datetime
    claimed_at: datetime | None
    solved_at: datetime | None


@dataclass(slots=True)
class ProblemFigures:
    """Problems per alliance and month, and the median hours to claim and to solve."""

    logged: dict[str, list[int]] = field(default_factory=dict)  # alliance -> 12 monthly counts
    solved: dict[str, list[int]] = field(default_factory=dict)
    logged_and_solved: dict[str, int] = field(default_factory=dict)  # of those logged this year, solved
    claim_hours: dict[str, list[float]] = field(default_factory=dict)
    solve_hours: dict[str, list[float]] = field(default_factory=dict)

    def total(self, which: dict[str, list[int]], alliance_id: str | None = None) -> int:
        """A year's total of ``logged`` or ``solved``, for one alliance or all."""
        return sum(sum(v) for k, v in which.items() if alliance_id in (None, k))

    def monthly(self, which: dict[str, list[int]]) -> list[int]:
        """Monthly totals over all alliances."""
        return [sum(v[m - 1] for v in which.values()) for m in MONTHS]

    def median(self, which: dict[str, list[float]], alliance_id: str | None = None) -> float | None:
        """The median hours for one alliance or all; None with no data."""
        values = [h for k, v in which.items() if alliance_id in (None, k) for h in v]
        return statistics.median(values) if values else None


@dataclass(slots=True, frozen=True)
class ActivityFacts:
    """An activity of the year, as the report sees it."""

    type: str
    alliance_id: str | None  # None: joint activity of all alliances
    start: datetime
    held: bool  # started before the report's "now" (otherwise only scheduled)
    title: str = ""
    place: str | None = None
    organizer: str = ""  # user id


def split_award(amount: int, studio_alliances: Sequence[str]) -> dict[str, int]:
    """Yuan per alliance for an award credited to studios of these alliances (one entry per studio, in credit
    order): equal shares per studio, the remainder to the first; with no studio, all of it to ``UNASSIGNED``."""
    if not studio_alliances:
        return {UNASSIGNED: amount}
    share, remainder = divmod(amount, len(studio_alliances))
    result: dict[str, int] = {}
    for index, alliance_id in enumerate(studio_alliances):
        result[alliance_id] = result.get(alliance_id, 0) + share + (remainder if index == 0 else 0)
    return result


@dataclass(slots=True, frozen=True)
class AwardFacts:
    """An award with what it was for, its credited studios and its yuan per alliance (``split_award``)."""

    name: str
    amount: int
    target: str  # 成果 #3 …「…」 or the studio's name
    alliances: tuple[str, ...]
    studios: tuple[str, ...] = ()  # credited studio ids, in credit order
    shares: dict[str, int] = field(default_factory=dict)  # alliance id (or UNASSIGNED) -> yuan
    created_by: str = ""  # user id


@dataclass(slots=True)
class YearReport:
    """Everything the report shows, for one year and all alliances or one."""

    year: int
    tz: ZoneInfo
    generated_at: datetime
    alliances: list[Alliance]  # in scope, by id
    scope: str | None  # alliance id, or None for all
    problems: ProblemFigures | None  # None while the problems feature is not installed
    activities: list[ActivityFacts]
    topics: dict[str, list[int]]  # alliance -> [proposed, approved, concluded] in the year
    achievements: list[tuple[Achievement, tuple[str, ...]]]  # with the alliances of its studios
    awards: list[AwardFacts]
    studio_names: dict[str, str] = field(default_factory=dict)  # every studio in the roster, by id
    people: dict[str, str] = field(default_factory=dict)  # names of the users the report mentions, if known
    evaluations: EvaluationFacts | None = None  # studio records, rounds and stars (reports_evaluations)
    quality: reports_quality.QualityFacts | None = None  # first responses and satisfaction per studio
    sections: dict[str, Any] = field(default_factory=dict)  # what REPORT_SECTIONS collected, by their KEY

    @property
    def alliance_names(self) -> dict[str, str]:
        """Alliance names by id."""
        return {a.id: a.name for a in self.alliances}

    def activities_by_type(self, *, held: bool = True) -> dict[str, int]:
        """Activities held (or merely scheduled) this year, per type, in the charter's order."""
        counts = Counter(e.type for e in self.activities if e.held == held)
        order = list(_EVENT_TYPES_EN)
        return {t: counts[t] for t in sorted(counts, key=lambda t: (order.index(t) if t in order else 99, t))}

    def annual_meeting(self, alliance_id: str) -> str:
        """已举办 / 已安排 M月D日 / 未举办, for an alliance (its own or a joint annual meeting)."""
        meetings = [
            e for e in self.activities if e.type == ANNUAL_MEETING and e.alliance_id in (alliance_id, None)
        ]
        if any(e.held for e in meetings):
            return "已举办"
        if meetings:
            start = min(e.start for e in meetings).astimezone(self.tz)
            return f"已安排 {start.month}月{start.day}日"
        return "未举办"

    def topic_totals(self) -> list[int]:
        """[proposed, approved, concluded] over the alliances in scope."""
        return [sum(v[i] for v in self.topics.values()) for i in range(3)]

    def achievements_by_type(self) -> dict[str, int]:
        """Achievements of the year per type (every type listed, in the charter's order)."""
        counts = Counter(a.type for a, _ in self.achievements)
        result = {kind.value: counts.get(kind.value, 0) for kind in AchievementType}
        result.update({k: v for k, v in counts.items() if k not in result})
        return result

    def awards_by_alliance(self) -> dict[str, int]:
        """Award yuan per alliance in scope by ``AWARD_SHARE_RULE`` (every alliance listed, in order; for all
        alliances also ``UNASSIGNED`` when some money has no studio in the roster). The only place award money
        is summed: ``/stats``, the workbook and the chart all show these figures."""
        totals = {a.id: 0 for a in self.alliances}
        for award in self.awards:
            for alliance_id, yuan in award.shares.items():
                if alliance_id in totals:
                    totals[alliance_id] += yuan
                elif self.scope is None:
                    totals[UNASSIGNED] = totals.get(UNASSIGNED, 0) + yuan
        return totals

    @property
    def awards_total(self) -> int:
        """Yuan paid in awards this year (for one alliance: its shares)."""
        return sum(self.awards_by_alliance().values())

    def alliance_name(self, alliance_id: str) -> str:
        """An alliance's name (``UNASSIGNED``'s too), or its id when it is not in scope."""
        return (
            UNASSIGNED_NAME
            if alliance_id == UNASSIGNED
            else self.alliance_names.get(alliance_id, alliance_id)
        )


def year_bounds(year: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """1 January of ``year`` and of the next year, 00:00 local."""
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)


def _in_year(when: datetime | None, start: datetime, end: datetime) -> bool:
    return when is not None and start <= when < end


async def load_problems(store: Store) -> list[ProblemFacts] | None:
    """Every problem's alliance and timestamps (problems without an alliance are left out)."""
    async with store.sessions() as session:
        rows = (await session.exec(select(Problem).where(col(Problem.alliance_id).is_not(None)))).all()
    return [
        ProblemFacts(
            alliance_id=row.alliance_id,
            created_at=row.created_at,
            claimed_at=row.claimed_at,
            solved_at=row.solved_at,
        )
        for row in rows
        if row.alliance_id
    ]


def problem_figures(
    problems: Iterable[ProblemFacts],
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    alliances: Sequence[str],
) -> ProblemFigures:
    """Monthly logged/solved counts per alliance and the hours to claim and to solve (activities in the year)."""
    figures = ProblemFigures(
        logged={a: [0] * 12 for a in alliances},
        solved={a: [0] * 12 for a in alliances},
        logged_and_solved=dict.fromkeys(alliances, 0),
        claim_hours={a: [] for a in alliances},
        solve_hours={a: [] for a in alliances},
    )
    for problem in problems:
        alliance = problem.alliance_id
        if alliance not in figures.logged:
            continue
        if _in_year(problem.created_at, start, end):
            figures.logged[alliance][problem.created_at.astimezone(tz).month - 1] += 1
            if problem.solved_at is not None:
                figures.logged_and_solved[alliance] += 1
        if problem.claimed_at is not None and _in_year(problem.claimed_at, start, end):
            figures.claim_hours[alliance].append(
                (problem.claimed_at - problem.created_at).total_seconds() / 3600
            )
        if problem.solved_at is not None and _in_year(problem.solved_at, start, end):
            figures.solved[alliance][problem.solved_at.astimezone(tz).month - 1] += 1
            figures.solve_hours[alliance].append(
                (problem.solved_at - problem.created_at).total_seconds() / 3600
            )
    return figures


async def collect(
    store: Store,
    *,
    year: int,
    tz: ZoneInfo,
    now: datetime,
    alliance_id: str | None = None,
    evaluations: bool = True,
) -> YearReport:
    """Read the year's figures from the database; ``alliance_id`` limits them to one alliance. Without
    ``evaluations`` the studio records and rounds (the workbook's evaluation sheets, a record per studio: the
    slow part) are left out, for readers that show only the figures and charts."""
    from bot.store.activities import ActivityRepo

    start, end = year_bounds(year, tz)
    every_alliance = await store.alliances.all()
    alliances = every_alliance
    if alliance_id is not None:
        alliances = [a for a in alliances if a.id == alliance_id]
        if not alliances:
            raise LookupError(alliance_id)
    scope = [a.id for a in alliances]
    studios: dict[str, Studio] = {s.id: s for s in await store.studios.all()}

    problems = await load_problems(store)
    figures = (
        problem_figures(problems, start=start, end=end, tz=tz, alliances=scope)
        if problems is not None
        else None
    )

    activities = [
        ActivityFacts(
            e.type,
            e.alliance_id,
            e.start,
            e.start <= now,
            title=e.title,
            place=e.place,
            organizer=e.organizer,
        )
        for e in await ActivityRepo(store.sessions).for_calendar(start)
        if e.start < end and not e.cancelled and (e.alliance_id is None or e.alliance_id in scope)
    ]

    topics: dict[str, list[int]] = {a: [0, 0, 0] for a in scope}
    for topic in await TopicRepo(store.sessions).all():
        counts = topics.get(topic.alliance_id)
        if counts is None:
            continue
        for index, when in enumerate((topic.created_at, topic.approved_at, topic.closed_at)):
            if index == 2 and topic.status != "concluded":
                continue
            if _in_year(when, start, end):
                counts[index] += 1

    def alliances_of(studio_ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(studios[s].alliance_id for s in studio_ids if s in studios))

    repo = AchievementRepo(store.sessions)
    every = {a.id: a for a in await repo.all()}
    achievements = [
        (a, alliances_of(a.studios))
        for a in sorted(every.values(), key=lambda a: a.id or 0)
        if a.year == year and (alliance_id is None or alliance_id in alliances_of(a.studios))
    ]
    awards = []
    for award in await repo.awards(year=year):
        facts = _award_facts(award, every, studios, alliances_of)
        if alliance_id is None or alliance_id in facts.alliances:
            awards.append(facts)
    report = YearReport(
        evaluations=await collect_evaluations(store, year=year, tz=tz, now=now, alliance_id=alliance_id)
        if evaluations
        else None,
        year=year,
        tz=tz,
        generated_at=now,
        alliances=alliances,
        scope=alliance_id,
        problems=figures,
        quality=await reports_quality.collect_quality(
            store, since=start, until=end, studios=[s for s in studios.values() if s.alliance_id in scope]
        )
        if problems is not None
        else None,
        activities=activities,
        topics=topics,
        achievements=achievements,
        awards=awards,
        studio_names={s.id: s.name for s in studios.values()},
        people=await _people(
            store,
            [a.registered_by for a, _ in achievements]
            + [a.created_by for a in awards]
            + [e.organizer for e in activities if not e.held],
            alliances=every_alliance,
            studios=studios.values(),
        ),
    )
    for module in _sections():
        await module.collect(store, report)
    return report


def _sections() -> list[Any]:
    import importlib

    return [importlib.import_module(name) for name in REPORT_SECTIONS]


async def _people(
    store: Store, user_ids: Iterable[str], *, alliances: Iterable[Alliance], studios: Iterable[Studio]
) -> dict[str, str]:
    """Names for these user ids where the roster (alliance and studio leads) or the members table has one."""
    wanted = set(user_ids) - {""}
    names: dict[str, str] = {}
    for alliance in alliances:
        if alliance.lead_userid in wanted and alliance.lead_name:
            names[alliance.lead_userid] = alliance.lead_name
    for studio in studios:
        if studio.lead_userid in wanted and studio.lead_name:
            names.setdefault(studio.lead_userid, studio.lead_name)
    for user_id in sorted(wanted - names.keys()):
        member = await store.members.get(user_id)
        if member is not None and member.name:
            names[user_id] = member.name
    return names


def _award_facts(
    award: Award, achievements: dict[int | None, Achievement], studios: dict[str, Studio], alliances_of: Any
) -> AwardFacts:
    if award.achievement_id is not None and award.achievement_id in achievements:
        achievement = achievements[award.achievement_id]
        target = f"成果 #{achievement.id} {achievement.type}「{achievement.title}」"
        credited = tuple(dict.fromkeys(achievement.studios))
    else:
        studio = studios.get(award.studio_id or "")
        target = f"{studio.name}（{studio.id}）" if studio else (award.studio_id or "—")
        credited = (award.studio_id,) if award.studio_id else ()
    # a credited studio missing from the roster keeps its share, counted as unassigned
    shares = split_award(
        award.amount, [studios[s].alliance_id if s in studios else UNASSIGNED for s in credited]
    )
    return AwardFacts(
        award.name,
        award.amount,
        target,
        alliances_of(credited),
        credited,
        shares,
        created_by=award.created_by,
    )


# -- the summary -----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class SummaryRow:
    """One figure of the summary: label, value and unit/remark."""

    label: str
    value: int | float | str
    note: str = ""
    percent: bool = False  # value is a fraction, shown as a percentage

    def shown(self) -> str:
        """The value as text (a rate as 33.3%)."""
        if self.percent and isinstance(self.value, int | float):
            return f"{self.value:.1%}"
        return str(self.value)


def _hours(value: float | None) -> float | str:
    return round(value, 1) if value is not None else "—"


def summary_rows(report: YearReport) -> list[SummaryRow]:
    """The charter's figures for the year, in order (the XLSX summary sheet and ``/stats``)."""
    names = report.alliance_names
    rows = [
        SummaryRow("年份", report.year),
        SummaryRow("范围", names[report.scope] if report.scope else "全部联盟"),
    ]
    figures = report.problems
    if figures is None:
        rows.append(SummaryRow("问题统计", "暂不可用", "问题功能尚未启用"))
    else:
        logged = figures.total(figures.logged)
        solved_of_logged = sum(figures.logged_and_solved.values())
        rows += [
            SummaryRow("登记问题数", logged, "个"),
            SummaryRow("解决问题数", figures.total(figures.solved), "个（本年解决，含往年登记）"),
            SummaryRow(
                "本年登记问题解决率",
                solved_of_logged / logged if logged else "—",
                f"{solved_of_logged}/{logged}",
                percent=True,
            ),
            SummaryRow("认领用时中位数", _hours(figures.median(figures.claim_hours)), "小时"),
            SummaryRow("解决用时中位数", _hours(figures.median(figures.solve_hours)), "小时"),
            *reports_quality.summary_rows(report),
        ]
    held = report.activities_by_type()
    rows.append(SummaryRow("举办活动", sum(held.values()), "次"))
    rows += [SummaryRow(f"活动：{kind}", count, "次") for kind, count in held.items()]
    scheduled = sum(report.activities_by_type(held=False).values())
    if scheduled:
        rows.append(SummaryRow("已安排待举办活动", scheduled, "次"))
    rows += [SummaryRow(f"年会：{a.name}", report.annual_meeting(a.id)) for a in report.alliances]
    proposed, approved, concluded = report.topic_totals()
    rows += [
        SummaryRow("课题提出", proposed, "个"),
        SummaryRow("课题立项", approved, "个"),
        SummaryRow("课题结题", concluded, "个"),
        SummaryRow("登记成果", len(report.achievements), "项"),
    ]
    rows += [
        SummaryRow(f"成果：{kind}", count, "项")
        for kind, count in report.achievements_by_type().items()
        if count
    ]
    rows += [
        SummaryRow("奖励项数", len(report.awards), "项"),
        SummaryRow(
            "奖励金额合计",
            report.awards_total,
            f"元（共享奖励只计{names[report.scope]}的份额）" if report.scope else "元",
        ),
    ]
    if report.scope is None:
        rows += [
            SummaryRow(f"奖励金额：{report.alliance_name(a)}", yuan, "元")
            for a, yuan in report.awards_by_alliance().items()
        ]
    for module in _sections():
        rows += module.summary_rows(report) if module.KEY in report.sections else []
    rows.append(SummaryRow(NOTE, AWARD_SHARE_RULE))
    return rows


def summary_text(report: YearReport) -> str:
    """The summary as a short Chinese chat message."""
    figures = report.problems
    scope = report.alliance_names[report.scope] if report.scope else "联盟"
    lines = [f"【{report.year}年{scope}统计】"]
    if figures is None:
        lines.append("问题：统计暂不可用。")
    else:
        logged = figures.total(figures.logged)
        lines.append(
            f"问题：登记 {logged} 个，解决 {figures.total(figures.solved)} 个；"
            f"认领用时中位数 {_hours(figures.median(figures.claim_hours))} 小时，"
            f"解决用时中位数 {_hours(figures.median(figures.solve_hours))} 小时。"
        )
        service = reports_quality.summary_line(report)
        if service:
            lines.append(service)
    held = report.activities_by_type()
    scheduled = report.activities_by_type(held=False)
    line = f"活动：举办 {sum(held.values())} 次" + _kinds(held)
    if scheduled:
        line += f"；已安排待举办 {sum(scheduled.values())} 次" + _kinds(scheduled)
    lines.append(line + "。")
    meetings = "；".join(f"{a.name}{report.annual_meeting(a.id)}" for a in report.alliances)
    if meetings:
        lines.append(f"年会：{meetings}。")
    proposed, approved, concluded = report.topic_totals()
    lines.append(f"课题：提出 {proposed} 个，立项 {approved} 个，结题 {concluded} 个。")
    by_type = "、".join(f"{k} {v}" for k, v in report.achievements_by_type().items() if v)
    lines.append(f"成果：登记 {len(report.achievements)} 项" + (f"（{by_type}）" if by_type else "") + "。")
    lines.append(
        f"奖励：{len(report.awards)} 项，合计 {report.awards_total:,} 元" + _award_split(report) + "。"
    )
    for module in _sections():
        lines += module.summary_lines(report) if module.KEY in report.sections else []
    if report.awards:
        lines.append(f"注：{AWARD_SHARE_RULE}")
    return "\n".join(lines)


def _kinds(counts: dict[str, int]) -> str:
    kinds = "、".join(f"{k} {v}" for k, v in counts.items() if v)
    return f"（{kinds}）" if kinds else ""


def _award_split(report: YearReport) -> str:
    if not report.awards:
        return ""
    if report.scope is not None:
        return f"（共享奖励只计{report.alliance_name(report.scope)}的份额）"
    by_alliance = report.awards_by_alliance()
    return "；按联盟：" + "、".join(
        f"{report.alliance_name(a)} {yuan:,} 元" for a, yuan in by_alliance.items()
    )


# -- the workbook ----------------------------------------------------------------------------------


def write_workbook(report: YearReport, path: Path) -> Path:
    """The XLSX workbook: 汇总 (summary) first, then one sheet per subject; ids come with names beside them,
    rates are numbers formatted as percentages, and every column is as wide as its content."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "汇总"
    sheet_writer = _Sheet(sheet)
    sheet_writer.header(["指标", "数值", "说明"])
    rows = summary_rows(report)
    for row in rows:
        if row.label != NOTE:
            sheet_writer.row([row.label, row.value, row.note], percent={1} if row.percent else ())
    sheet_writer.blank()
    for row in rows:
        if row.label == NOTE:
            sheet_writer.footnote(str(row.value))
    writers = [sheet_writer]

    def new(title: str) -> _Sheet:
        writers.append(_Sheet(book.create_sheet(title)))
        return writers[-1]

    _problem_sheets(report, new)
    reports_quality.write_sheet(report, new)
    _activity_sheets(report, new)

    topics = new("课题")
    topics.header(["联盟编号", "联盟", "提出", "立项", "结题"])
    for alliance in report.alliances:
        topics.row([alliance.id, alliance.name, *report.topics[alliance.id]])
    topics.row(["合计", "", *report.topic_totals()])

    _achievement_sheet(report, new("成果"))
    _award_sheet(report, new("奖励"))
    write_evaluation_sheets(report, new)
    for module in _sections():
        if module.KEY in report.sections:
            module.write_sheets(report, new)

    for writer in writers:
        writer.fit_columns()
    path.parent.mkdir(parents=True, exist_ok=True)
    _no_formulas(book)
    book.save(path)
    return path


class _Sheet:
    """Appends rows to a worksheet: bold headers, percentage cells, footnotes that do not widen a column."""

    MAX_WIDTH = 60  # wider text wraps rather than stretching its column further

    def __init__(self, sheet: Any) -> None:
        self.sheet = sheet
        self._footnotes: set[int] = set()

    def row(self, values: Sequence[Any], *, percent: Iterable[int] = ()) -> None:
        """A row; the cells at the 0-based positions ``percent`` hold fractions shown as 0.0%."""
        self.sheet.append(list(values))
        for index in percent:
            self.sheet.cell(self.sheet.max_row, index + 1).number_format = PERCENT

    def header(self, values: Sequence[Any]) -> None:
        """A header row, in bold."""
        from openpyxl.styles import Font

        self.row(values)
        for cell in self.sheet[self.sheet.max_row]:
            cell.font = Font(bold=True)

    def blank(self) -> None:
        """An empty row between two tables."""
        self.sheet.append([])

    def footnote(self, text: str) -> None:
        """A note in the first column; it runs on into the empty cells beside it."""
        self.sheet.append([text])
        self._footnotes.add(self.sheet.max_row)

    def fit_columns(self) -> None:
        """Every column as wide as its widest cell (a CJK character counts two), within ``MAX_WIDTH``."""
        from openpyxl.styles import Alignment
        from openpyxl.utils import get_column_letter

        widths: dict[int, int] = {}
        for row in self.sheet.iter_rows():
            for cell in row:
                if cell.value is None or cell.row in self._footnotes:
                    continue
                width = _display_width(_cell_text(cell))
                if width > self.MAX_WIDTH:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
                widths[cell.column] = max(widths.get(cell.column, 0), width)
        for column, width in widths.items():
            self.sheet.column_dimensions[get_column_letter(column)].width = min(width, self.MAX_WIDTH) + 2


def _cell_text(cell: Any) -> str:
    if cell.number_format == PERCENT and isinstance(cell.value, int | float):
        return f"{cell.value:.1%}"
    return str(cell.value)


def _display_width(text: str) -> int:
    """Columns the text takes in a spreadsheet: two for a wide (CJK) character, one otherwise."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _problem_sheets(report: YearReport, new: Any) -> None:
    figures = report.problems
    monthly = new("问题月度")
    monthly.header(["联盟编号", "联盟", "项目", *[f"{m}月" for m in MONTHS], "合计"])
    if figures is None:
        monthly.row(["问题功能尚未启用"])
        return
    for alliance in report.alliances:
        for label, which in (("登记", figures.logged), ("解决", figures.solved)):
            counts = which[alliance.id]
            monthly.row([alliance.id, alliance.name, label, *counts, sum(counts)])
    for label, which in (("登记", figures.logged), ("解决", figures.solved)):
        counts = figures.monthly(which)
        monthly.row(["合计", "", label, *counts, sum(counts)])
    timing = new("问题时效")
    timing.header(
        [
            "联盟编号",
            "联盟",
            "登记",
            "解决",
            "本年登记已解决",
            "解决率",
            "认领用时中位数（小时）",
            "解决用时中位数（小时）",
        ]
    )
    scopes: list[tuple[str, str, str | None]] = [(a.id, a.name, a.id) for a in report.alliances]
    for alliance_id, name, key in [*scopes, ("合计", "", None)]:
        logged = figures.total(figures.logged, key)
        solved_of_logged = sum(v for k, v in figures.logged_and_solved.items() if key in (None, k))
        timing.row(
            [
                alliance_id,
                name,
                logged,
                figures.total(figures.solved, key),
                solved_of_logged,
                solved_of_logged / logged if logged else "—",
                _hours(figures.median(figures.claim_hours, key)),
                _hours(figures.median(figures.solve_hours, key)),
            ],
            percent={5},
        )


def _activity_sheets(report: YearReport, new: Any) -> None:
    names = report.alliance_names
    types = list(dict.fromkeys([*_EVENT_TYPES_EN, *(e.type for e in report.activities)]))
    columns: list[str | None] = [a.id for a in report.alliances] + [None]

    activities = new("活动")
    activities.header(
        ["类型", *[f"{names[c]}（{c}）" if c else "全体联盟" for c in columns], "已举办合计", "已安排待举办"]
    )
    for kind in types:
        held = [
            sum(1 for e in report.activities if e.type == kind and e.held and e.alliance_id == c)
            for c in columns
        ]
        pending = sum(1 for e in report.activities if e.type == kind and not e.held)
        activities.row([kind, *held, sum(held), pending])
    activities.blank()
    activities.header(["联盟编号", "联盟", "年会"])
    for alliance in report.alliances:
        activities.row([alliance.id, alliance.name, report.annual_meeting(alliance.id)])

    upcoming = new("待举办活动")
    scheduled = sorted((e for e in report.activities if not e.held), key=lambda e: e.start)
    upcoming.header(["联盟编号", "联盟", *types, "合计"])
    for alliance_id in columns:
        counts = [sum(1 for e in scheduled if e.type == k and e.alliance_id == alliance_id) for k in types]
        upcoming.row(
            [alliance_id or "—", names[alliance_id] if alliance_id else "全体联盟", *counts, sum(counts)]
        )
    totals = [sum(1 for e in scheduled if e.type == k) for k in types]
    upcoming.row(["合计", "", *totals, sum(totals)])
    upcoming.blank()
    upcoming.header(["日期", "类型", "名称", "联盟编号", "联盟", "地点", "发起人账号", "发起人"])
    for activity in scheduled:
        upcoming.row(
            [
                activity.start.astimezone(report.tz).strftime("%Y-%m-%d %H:%M"),
                activity.type,
                activity.title,
                activity.alliance_id or "—",
                names.get(activity.alliance_id, activity.alliance_id) if activity.alliance_id else "全体联盟",
                activity.place or "",
                activity.organizer,
                report.people.get(activity.organizer, ""),
            ]
        )
    if not scheduled:
        upcoming.row(["本年没有待举办的活动"])


def _achievement_sheet(report: YearReport, achievements: _Sheet) -> None:
    names = report.alliance_names
    achievements.header(["类型", "数量"])
    for kind, count in report.achievements_by_type().items():
        achievements.row([kind, count])
    achievements.blank()
    achievements.header(
        ["编号", "类型", "名称", "工作室编号", "工作室", "联盟编号", "联盟", "年份", "登记人账号", "登记人"]
    )
    for achievement, alliances in report.achievements:
        achievements.row(
            [
                achievement.id,
                achievement.type,
                achievement.title,
                "、".join(achievement.studios),
                "、".join(report.studio_names.get(s, s) for s in achievement.studios),
                "、".join(alliances),
                "、".join(names.get(a, a) for a in alliances),
                achievement.year,
                achievement.registered_by,
                report.people.get(achievement.registered_by, ""),
            ]
        )


def _award_sheet(report: YearReport, awards: _Sheet) -> None:
    by_alliance = report.awards_by_alliance()
    awards.header(
        [
            "奖项",
            "对象",
            "工作室编号",
            "工作室",
            "登记人账号",
            "登记人",
            "金额（元）",
            *[f"计入{report.alliance_name(a)}（元）" for a in by_alliance],
        ]
    )
    for award in report.awards:
        awards.row(
            [
                award.name,
                award.target,
                "、".join(award.studios),
                "、".join(report.studio_names.get(s, s) for s in award.studios),
                award.created_by,
                report.people.get(award.created_by, ""),
                award.amount,
                *[award.shares.get(a, 0) for a in by_alliance],
            ]
        )
    awards.row(["合计", "", "", "", "", "", sum(a.amount for a in report.awards), *by_alliance.values()])
    awards.blank()
    awards.header(["联盟编号", "联盟", "奖励金额（元）", "占比"])
    total = report.awards_total
    for alliance_id, yuan in by_alliance.items():
        awards.row(
            [alliance_id or "—", report.alliance_name(alliance_id), yuan, yuan / total if total else "—"],
            percent={3},
        )
    awards.row(["合计", "", total, 1.0 if total else "—"], percent={3})
    awards.footnote(AWARD_SHARE_RULE)


def _no_formulas(book: Any) -> None:
    """Every cell as data: the workbook holds no formula of its own, so a text that openpyxl would take for
    one (a title or an award name starting with ``=``, e.g. ``=HYPERLINK(…)``) is written as the text it is."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"


_UNSAFE_NAME = re.compile(r"[^\w.-]|^\.+")


def report_file_name(year: int, scope: str | None) -> str:
    """The workbook's file name; a roster id in it cannot name another directory (``../``, ``/``, ``\\``)."""
    suffix = "-" + _UNSAFE_NAME.sub("_", scope) if scope else ""
    return f"联盟年度报告-{year}{suffix}.xlsx"


# -- the charts ------------------------------------------------------------------------------------


def find_cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in installed), None)
    if found is None:
        # matplotlib caches its font list: a font installed after the cache was built is not in it yet
        font_manager.fontManager = font_manager._load_fontmanager(try_read_cache=False)  # type: ignore[attr-defined]
        installed = {font.name for font in font_manager.fontManager.ttflist}
        found = next((name for name in CJK_FONTS if name in installed), None)
    return found


@dataclass(slots=True, frozen=True)
class ChartLabels:
    """Chart texts in Chinese (with a CJK font) or English (without one)."""

    chinese: bool

    def pick(self, chinese: str, english: str) -> str:
        """The text for the current language."""
        return chinese if self.chinese else english

    def alliance(self, alliance: Alliance) -> str:
        """An alliance's name, or its id."""
        return alliance.name if self.chinese else alliance.id

    def alliance_id(self, alliance_id: str, name: str) -> str:
        """An alliance's name, or its id (``UNASSIGNED``: 未归属联盟 / unassigned)."""
        return name if self.chinese else (alliance_id or "unassigned")

    def activity_type(self, kind: str) -> str:
        """An activity type."""
        return kind if self.chinese else _EVENT_TYPES_EN.get(kind, "other")

    def achievement_type(self, kind: str) -> str:
        """An achievement type."""
        return kind if self.chinese else _ACHIEVEMENT_TYPES_EN.get(kind, "other")


# pyplot's figure registry, rcParams (``rc_context``) and the warnings filters (``catch_warnings``) are
# process-wide: two threads drawing at once (the console draws in worker threads) restore each other's
# settings mid-draw, so a chart meant for a CJK font is drawn in DejaVu Sans. One drawing at a time.
CHARTS_LOCK = threading.Lock()


def write_charts(
    report: YearReport, out: Path, *, font: str | None = None, use_cjk: bool = True
) -> list[Path]:
    """PNG charts of the year; Chinese labels when a CJK font is available, English ones otherwise."""
    with CHARTS_LOCK:
        return _write_charts(report, out, font=font, use_cjk=use_cjk)


def _write_charts(report: YearReport, out: Path, *, font: str | None, use_cjk: bool) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = font or (find_cjk_font() if use_cjk else None)
    labels = ChartLabels(chinese=font is not None)
    if font is None and use_cjk:
        log.warning("no CJK font found (install fonts-noto-cjk); charts use English labels")
    out.mkdir(parents=True, exist_ok=True)
    style: Any = {"font.family": "sans-serif", "axes.unicode_minus": False}
    if font is not None:
        style["font.sans-serif"] = [font, "DejaVu Sans"]
    year = report.year
    paths: list[Path] = []
    with warnings.catch_warnings(), plt.rc_context(style):
        # a glyph missing from the chosen font must not fail a report (or a warnings-as-errors test run)
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")

        def save(fig: Any, name: str) -> None:
            for ax in fig.axes:
                _value_axis(
                    ax,
                    horizontal=name == "achievements_by_type.png",
                    counts=name != "awards_by_alliance.png",
                    empty_note=labels.pick("暂无数据", "no data"),
                )
            fig.tight_layout(rect=(0, 0.04, 1, 1) if fig.texts else None)  # room for a footnote
            path = out / name
            fig.savefig(path, dpi=120)
            plt.close(fig)
            paths.append(path)

        if report.problems is not None:
            fig, ax = plt.subplots(figsize=(9, 4.5))
            xs = list(MONTHS)
            width = 0.4
            ax.bar(
                [x - width / 2 for x in xs],
                report.problems.monthly(report.problems.logged),
                width,
                label=labels.pick("登记", "logged"),
                color="#4C78A8",
            )
            ax.bar(
                [x + width / 2 for x in xs],
                report.problems.monthly(report.problems.solved),
                width,
                label=labels.pick("解决", "solved"),
                color="#59A14F",
            )
            ax.set_xticks(xs, [labels.pick(f"{m}月", str(m)) for m in xs])
            ax.set_ylabel(labels.pick("问题数", "problems"))
            ax.set_title(
                labels.pick(
                    f"{year}年问题登记与解决（按月）", f"Problems logged and solved per month, {year}"
                )
            )
            ax.legend()
            save(fig, "problems_by_month.png")

        held = report.activities_by_type()
        fig, ax = plt.subplots(figsize=(7, 4))
        kinds = list(held) or list(_EVENT_TYPES_EN)
        ax.bar([labels.activity_type(k) for k in kinds], [held.get(k, 0) for k in kinds], color="#F28E2B")
        ax.set_ylabel(labels.pick("次数", "events"))
        ax.set_title(labels.pick(f"{year}年举办活动（按类型）", f"Events held by type, {year}"))
        save(fig, "events_by_type.png")

        fig, ax = plt.subplots(figsize=(8, 4.5))
        names = [labels.alliance(a) for a in report.alliances]
        width = 0.26
        series = (
            ("提出", "proposed", "#9ECAE9"),
            ("立项", "approved", "#4C78A8"),
            ("结题", "concluded", "#59A14F"),
        )
        for index, (zh, en, color) in enumerate(series):
            values = [report.topics[a.id][index] for a in report.alliances]
            ax.bar(
                [i + (index - 1) * width for i in range(len(names))],
                values,
                width,
                label=labels.pick(zh, en),
                color=color,
            )
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(labels.pick("课题数", "topics"))
        ax.set_title(labels.pick(f"{year}年联合攻关课题", f"Joint research topics, {year}"))
        ax.legend()
        save(fig, "topics.png")

        by_type = report.achievements_by_type()
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.barh(
            [labels.achievement_type(k) for k in by_type][::-1], list(by_type.values())[::-1], color="#B07AA1"
        )
        ax.set_xlabel(labels.pick("项数", "count"))
        ax.set_title(labels.pick(f"{year}年登记成果（按类型）", f"Achievements by type, {year}"))
        save(fig, "achievements_by_type.png")

        totals = report.awards_by_alliance()
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.bar(
            [labels.alliance_id(a, report.alliance_name(a)) for a in totals],
            [yuan / 10_000 for yuan in totals.values()],
            color="#E15759",
        )
        ax.set_ylabel(labels.pick("万元", "10,000 yuan"))
        ax.set_title(labels.pick(f"{year}年奖励金额（按联盟）", f"Awards paid per alliance, {year}"))
        fig.text(
            0.01,
            0.01,
            labels.pick(
                "共享奖励按获奖工作室平均分摊，计入各工作室所属联盟",
                "a shared award is split equally among its studios, each share to the studio's alliance",
            ),
            fontsize=8,
            color="#555555",
        )
        save(fig, "awards_by_alliance.png")
        write_stars_chart(report, labels=labels, plt=plt, save=save)
        for module in _sections():
            if module.KEY in report.sections:
                module.write_charts(report, labels=labels, plt=plt, save=save)
    return paths


def _value_axis(ax: Any, *, horizontal: bool, counts: bool, empty_note: str) -> None:
    """The value axis from 0. With nothing to show (every bar 0), 0–1 ticked at 0 and 1 and a note saying so,
    instead of matplotlib's 0–0.055 in thousandths; counts always on whole-number ticks."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    axis = ax.xaxis if horizontal else ax.yaxis
    set_limits = ax.set_xlim if horizontal else ax.set_ylim
    extent = max((bar.get_width() if horizontal else bar.get_height() for bar in ax.patches), default=0)
    if extent <= 0:
        set_limits(0, 1)
        axis.set_major_locator(FixedLocator([0, 1]))
        ax.text(0.5, 0.5, empty_note, transform=ax.transAxes, ha="center", va="center", color="#888888")
        return
    high = (ax.get_xlim() if horizontal else ax.get_ylim())[1]
    set_limits(0, max(high, 1) if counts else high)
    if counts:
        axis.set_major_locator(MaxNLocator(integer=True))


def write_report(report: YearReport, out: Path, *, use_cjk: bool = True) -> tuple[Path, list[Path]]:
    """The workbook ``联盟年度报告-YEAR[-ALLIANCE].xlsx`` and the charts, in ``out``."""
    workbook = write_workbook(report, out / report_file_name(report.year, report.scope))
    return workbook, write_charts(report, out, use_cjk=use_cjk)


def workbook_refusal(caller: Caller, scope: str | None) -> str | None:
    """Why ``caller`` may not download the year's workbook for ``scope`` (None: they may): an admin any, an
    alliance lead their own alliance's (the workbook names people; ``/统计``'s summary is for everyone)."""
    if caller.at_least(Role.ADMIN):
        return None
    if caller.at_least(Role.ALLIANCE_LEAD) and scope is not None and scope in caller.alliances:
        return None
    if caller.at_least(Role.ALLIANCE_LEAD):
        return "联盟负责人可以下载本联盟的年度报表，请先选择本联盟；全部联盟的报表由管理员下载。"
    return "下载年度报表需要「联盟负责人」及以上权限。"
