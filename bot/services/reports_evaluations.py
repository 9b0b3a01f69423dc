"""The evaluations feature's part of the year report: a per-studio sheet (工作室档案), an evaluation sheet
(评选: rounds, nominees, scores, results) and a sheet of stars by alliance (星级) with its bar chart in the
workbook, and the same as a PNG beside the year's other charts (``stars_by_alliance.png``: stars exist in an
empty year too). ``reports`` calls ``collect_evaluations``, ``write_evaluation_sheets`` and
``write_stars_chart``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.services.records import EIGHT, YearRecord, build_record
from bot.services.studios import display_names
from bot.store.achievements import AchievementRepo
from bot.store.evaluations import EvaluationRepo

if TYPE_CHECKING:
    from bot.services.reports import YearReport
    from bot.store import Store
    from bot.store.studios import Studio

RESULTS = {"winner": "入选", "not_selected": "未入选", "unscored": "无人评分", "": "评选中"}


@dataclass(slots=True, frozen=True)
class StudioRow:
    """One studio's figures for the year."""

    studio: Studio
    year: YearRecord
    checklist: int  # "八有" items confirmed


@dataclass(slots=True, frozen=True)
class NomineeRow:
    """One nominee of a round of the year, with each panel member's total."""

    round_id: int
    kind: str
    scope: str
    state: str
    subject: str
    studio: str
    scores: list[tuple[str, float]]
    score: float | None
    rank: int | None
    result: str
    award: int | None


@dataclass(slots=True)
class EvaluationFacts:
    """What the evaluation sheets show."""

    studios: list[StudioRow] = field(default_factory=list)
    nominees: list[NomineeRow] = field(default_factory=list)
    stars: dict[str, Counter[int]] = field(default_factory=dict)  # alliance name → stars → studios


async def collect_evaluations(
    store: Store, *, year: int, tz: ZoneInfo, now: datetime, alliance_id: str | None
) -> EvaluationFacts:
    """The year's studio records, rounds and star counts (of one alliance or all)."""
    facts = EvaluationFacts()
    alliances = {a.id: a.name for a in await store.alliances.all()}
    studios = [s for s in await store.studios.all() if alliance_id is None or s.alliance_id == alliance_id]
    counted = AchievementRepo(store.sessions)
    every_achievement, every_award = await counted.all(), await counted.awards()  # once, not per studio
    for studio in studios:
        record = await build_record(
            store, studio, tz=tz, now=now, achievements=every_achievement, awards=every_award
        )
        facts.studios.append(
            StudioRow(studio, record.years.get(year, YearRecord(year)), len(record.checklist))
        )
        facts.stars.setdefault(alliances.get(studio.alliance_id, studio.alliance_id), Counter())[
            studio.stars
        ] += 1
    repo = EvaluationRepo(store.sessions)
    achievements = AchievementRepo(store.sessions)
    names = {s.id: s.name for s in await store.studios.all()}
    awards = {a.id: a.amount for a in await achievements.awards()}
    for evaluation in sorted(await repo.rounds(), key=lambda r: r.id or 0):
        assert evaluation.id is not None
        if evaluation.created_at.astimezone(tz).year != year and (
            evaluation.closed_at is None or evaluation.closed_at.astimezone(tz).year != year
        ):
            continue
        if alliance_id is not None and evaluation.alliance_id not in (None, alliance_id):
            continue
        scores = await repo.scores(evaluation.id)
        people = await display_names(store, list(dict.fromkeys(s.panelist for s in scores)))
        for nominee in await repo.nominees(evaluation.id):
            if alliance_id is not None and not any(s.id == nominee.studio_id for s in studios):
                continue
            subject = nominee.subject
            if nominee.achievement_id is not None:
                achievement = await achievements.get(nominee.achievement_id)
                subject = f"成果 #{nominee.achievement_id} {achievement.title}" if achievement else subject
            elif nominee.target_stars:
                subject = f"申报{nominee.target_stars}星"
            facts.nominees.append(
                NomineeRow(
                    round_id=evaluation.id,
                    kind=evaluation.kind,
                    scope=alliances.get(evaluation.alliance_id or "", "全部联盟"),
                    state="进行中" if evaluation.state == "open" else "已结束",
                    subject=subject,
                    studio=f"{names.get(nominee.studio_id, nominee.studio_id)}（{nominee.studio_id}）",
                    scores=[(people[s.panelist], s.total) for s in scores if s.nominee_id == nominee.id],
                    score=nominee.score,
                    rank=nominee.rank,
                    result=RESULTS.get(nominee.result, nominee.result),
                    award=awards.get(nominee.award_id) if nominee.award_id else None,
                )
            )
    return facts


def write_evaluation_sheets(report: YearReport, new: Callable[[str], Any]) -> None:
    """The 工作室档案, 评选 and 星级 sheets (``new(title)`` makes a sheet writer)."""
    from openpyxl.chart import BarChart, Reference

    facts = report.evaluations
    if facts is None:
        return
    sheet = new("工作室档案")
    sheet.header(
        [
            "工作室编号",
            "工作室",
            "联盟",
            "星级",
            "被请求问题",
            "认领",
            "答复",
            "解决",
            "认领用时中位（小时）",
            "解决用时中位（小时）",
            "提出课题",
            "参与课题",
            "成果",
            "奖励项数",
            "奖励金额（元）",
            "主办活动",
            "其中培训",
            "参加活动",
            "八有已确认",
            "评选",
        ]
    )
    for row in facts.studios:
        year = row.year
        sheet.row(
            [
                row.studio.id,
                row.studio.name,
                report.alliance_name(row.studio.alliance_id),
                row.studio.stars,
                year.asked,
                year.claimed,
                year.answered,
                year.solved,
                year.median_claim_hours if year.median_claim_hours is not None else "—",
                year.median_solve_hours if year.median_solve_hours is not None else "—",
                year.topics_proposed,
                year.topics_joined,
                "、".join(f"{k} {n}" for k, n in year.achievements.items()) or 0,
                year.awards,
                year.award_yuan,
                year.hosted,
                year.trainings,
                year.attended,
                f"{row.checklist}/{len(EIGHT)}",
                "；".join(year.evaluations),
            ]
        )
    rounds = new("评选")
    rounds.header(
        [
            "评选编号",
            "类型",
            "范围",
            "状态",
            "申报对象",
            "工作室",
            "评分明细",
            "综合得分",
            "名次",
            "结果",
            "奖励（元）",
        ]
    )
    for nominee in facts.nominees:
        detail = "、".join(f"{name} {total:g}" for name, total in nominee.scores)
        rounds.row(
            [
                nominee.round_id,
                nominee.kind,
                nominee.scope,
                nominee.state,
                nominee.subject,
                nominee.studio,
                detail or "—",
                nominee.score if nominee.score is not None else "—",
                nominee.rank or "—",
                nominee.result,
                nominee.award or "",
            ]
        )
    if not facts.nominees:
        rounds.row(["本年度没有评选。"])
    stars = new("星级")
    stars.header(["联盟", "五星", "四星", "三星", "合计"])
    for name, counts in facts.stars.items():
        stars.row([name, counts[5], counts[4], counts[3], sum(counts.values())])
    count = len(facts.stars)
    if count:
        chart = BarChart()
        chart.type = "col"
        chart.grouping = "stacked"
        chart.overlap = 100
        chart.title = f"{report.year}年各联盟星级工作室"
        chart.y_axis.title = "工作室数"
        data = Reference(stars.sheet, min_col=2, max_col=4, min_row=1, max_row=count + 1)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(stars.sheet, min_col=1, min_row=2, max_row=count + 1))
        stars.sheet.add_chart(chart, "G2")


STAR_SERIES = (
    (5, "五星", "5 stars", "#E15759"),
    (4, "四星", "4 stars", "#F28E2B"),
    (3, "三星", "3 stars", "#4C78A8"),
)


def write_stars_chart(report: YearReport, *, labels: Any, plt: Any, save: Callable[[Any, str], None]) -> None:
    """``stars_by_alliance.png``: each alliance's studios by their current star rating, stacked."""
    facts = report.evaluations
    if facts is None:
        return
    names = [labels.alliance(a) for a in report.alliances]
    counts = [facts.stars.get(a.name, Counter()) for a in report.alliances]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = [0] * len(names)
    for stars, zh, en, colour in STAR_SERIES:
        values = [c[stars] for c in counts]
        ax.bar(range(len(names)), values, 0.55, bottom=bottom, label=labels.pick(zh, en), color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(labels.pick("工作室数", "studios"))
    ax.set_title(
        labels.pick(f"{report.year}年各联盟星级工作室", f"Star-rated studios per alliance, {report.year}")
    )
    ax.legend()
    save(fig, "stars_by_alliance.png")
