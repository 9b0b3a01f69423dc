"""The year report's funding, talent and benefit sections: sheets 经费, 经费明细, 人才, 效益 and the charts
``funds_sources_uses.png``, ``funds_budget.png``, ``talent_trained.png``, ``talent_titles.png`` and
``benefits.png``, beside the reports
service's own (which calls ``collect``, ``summary_rows``, ``summary_lines``, ``write_sheets`` and
``write_charts`` of every module in its ``REPORT_SECTIONS``).

One counting rule for shared money everywhere: an award's yuan count per alliance by the reports'
``AWARD_SHARE_RULE`` — in the awards sheet, ``/统计``, the awards chart and, as 奖励 spending, in the ledger
(``AWARD_LEDGER_RULE``); a benefit of an achievement credited to several studios is split the same way
(``BENEFIT_SHARE_RULE``). The rules are written under the sheets that apply them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.services.benefits import BENEFIT_SHARE_RULE, split_benefit
from bot.services.funds import (
    AWARD_LEDGER_RULE,
    INCOME_SOURCES,
    SPENDING_CATEGORIES,
    Ledger,
    build_ledgers,
)
from bot.services.talent import GRADES, TITLES, TalentFigures, talent_figures
from bot.store import Store
from bot.store.achievements import AchievementRepo
from bot.store.benefits import BenefitRepo
from bot.store.talent import TalentRepo
from bot.store.topics import TopicRepo

if TYPE_CHECKING:
    from bot.services.reports import SummaryRow, YearReport

KEY = "funds"  # this module's entry in ``YearReport.sections``
# the charts' English labels where no CJK font is installed (the order of INCOME_SOURCES, SPENDING_CATEGORIES
# and TITLES)
SOURCES_EN = ("company grant", "lead unit's union", "unit's own funds", "special support")
CATEGORIES_EN = ("meetings", "seminars", "training", "joint research", "awards")
TITLES_EN = (
    "technician",
    "senior technician",
    "principal technician",
    "chief technician",
    "company craftsman",
    "city craftsman",
    "provincial craftsman",
    "national craftsman",
    "company model worker",
    "provincial model worker",
    "national model worker",
    "May Day medal",
    "advanced worker",
)


@dataclass(slots=True, frozen=True)
class BenefitLine:
    """One application in the chain: topic → achievement → application → benefit, with its shares."""

    topic: str  # "T-3 …" or ""
    achievement_id: int
    achievement: str
    studios: tuple[str, ...]
    project: str
    unit: str
    applied_on: str
    benefit: int
    shares: dict[str, int]  # alliance id -> yuan
    studio_shares: dict[str, int]  # studio id -> yuan


@dataclass(slots=True)
class FundsSection:
    """What these sections show, collected once."""

    ledgers: dict[str, Ledger]
    talent: dict[str, TalentFigures]  # alliance id -> figures; "" -> the whole scope
    honours: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    mentorships: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    benefits: list[BenefitLine] = field(default_factory=list)

    def income(self) -> int:
        """Income of the alliances in scope."""
        return sum(ledger.income for ledger in self.ledgers.values())

    def spending(self) -> int:
        """Spending of the alliances in scope."""
        return sum(ledger.spending for ledger in self.ledgers.values())

    def benefit_by_alliance(self, alliances: list[str]) -> dict[str, int]:
        """Direct economic benefit per alliance in scope (split by ``BENEFIT_SHARE_RULE``)."""
        totals = dict.fromkeys(alliances, 0)
        for line in self.benefits:
            for alliance_id, yuan in line.shares.items():
                if alliance_id in totals:
                    totals[alliance_id] += yuan
        return totals


def section(report: YearReport) -> FundsSection:
    """This module's part of a collected report."""
    found: FundsSection = report.sections[KEY]
    return found


async def collect(store: Store, report: YearReport) -> None:
    """Read the ledgers, the talent figures and the benefit chain of the report's year and scope."""
    scope = [a.id for a in report.alliances]
    ledgers = await build_ledgers(store, report.alliances, report.year)
    talent = {
        a.id: await talent_figures(
            store, year=report.year, tz=report.tz, now=report.generated_at, alliance_id=a.id
        )
        for a in report.alliances
    }
    talent[""] = await talent_figures(
        store, year=report.year, tz=report.tz, now=report.generated_at, alliance_id=report.scope
    )
    studios = {s.id: s for s in await store.studios.all()}
    result = FundsSection(ledgers, talent)
    repo = TalentRepo(store.sessions)
    for honour in await repo.honours():
        owner = studios[honour.studio_id].alliance_id if honour.studio_id in studios else honour.alliance_id
        if honour.on.year == report.year and owner in scope:
            result.honours.append(
                (
                    honour.on.isoformat(),
                    report.people.get(honour.person, honour.person),
                    honour.title,
                    honour.grade,
                    report.studio_names.get(honour.studio_id or "", "") or report.alliance_name(owner or ""),
                    honour.evidence,
                )
            )
    for mentorship in await repo.mentorships():
        studio = studios.get(mentorship.studio_id)
        if studio is None or studio.alliance_id not in scope:
            continue
        if mentorship.started_on.year > report.year or (
            mentorship.ended_on is not None and mentorship.ended_on.year < report.year
        ):
            continue
        result.mentorships.append(
            (
                studio.name,
                mentorship.master,
                mentorship.apprentice,
                mentorship.started_on.isoformat(),
                mentorship.goal,
                mentorship.outcome,
            )
        )
    achievements = {a.id: a for a in await AchievementRepo(store.sessions).all()}
    topics = {t.id: t for t in await TopicRepo(store.sessions).all()}
    for application in await BenefitRepo(store.sessions).applications():
        achievement = achievements.get(application.achievement_id)
        if achievement is None or application.applied_on.year != report.year:
            continue
        credited = tuple(dict.fromkeys(achievement.studios))
        alliances = [studios[s].alliance_id if s in studios else "" for s in credited]
        shares = split_benefit(application.benefit, alliances)
        if report.scope is not None and report.scope not in shares:
            continue
        per_studio: dict[str, int] = {}
        if credited:
            share, remainder = divmod(application.benefit, len(credited))
            per_studio = {s: share + (remainder if i == 0 else 0) for i, s in enumerate(credited)}
        topic = topics.get(achievement.topic_id) if achievement.topic_id is not None else None
        result.benefits.append(
            BenefitLine(
                topic=f"T-{topic.id} {topic.title}" if topic else "",
                achievement_id=application.achievement_id,
                achievement=f"{achievement.type}「{achievement.title}」",
                studios=credited,
                project=application.project,
                unit=application.unit,
                applied_on=application.applied_on.isoformat(),
                benefit=application.benefit,
                shares=shares,
                studio_shares=per_studio,
            )
        )
    report.sections[KEY] = result


def summary_rows(report: YearReport) -> list[SummaryRow]:
    """The summary sheet's rows for funds, talent and benefits (the last ones notes)."""
    from bot.services.reports import NOTE, SummaryRow

    data = section(report)
    talent = data.talent[""]
    benefit = sum(data.benefit_by_alliance([a.id for a in report.alliances]).values())
    rows = [
        SummaryRow("经费收入", data.income(), "元"),
        SummaryRow("经费支出", data.spending(), "元（含奖励支出，按分摊口径）"),
        SummaryRow("经费结余", data.income() - data.spending(), "元"),
        SummaryRow("培训举办", talent.trainings, "次（培训、讲座）"),
        SummaryRow("参训人次", talent.trained, f"人次（{talent.people} 人）"),
        SummaryRow("名师带徒", talent.mentorships, f"对本年新结对（出师 {talent.mentorships_done} 对）"),
    ]
    rows += [SummaryRow(f"称号：{grade}", count, "人") for grade, count in talent.by_grade().items() if count]
    rows += [
        SummaryRow("成果应用", len(data.benefits), "处"),
        SummaryRow("直接经济效益", benefit, "元"),
        SummaryRow(NOTE, AWARD_LEDGER_RULE),
        SummaryRow(NOTE, BENEFIT_SHARE_RULE),
    ]
    return rows


def summary_lines(report: YearReport) -> list[str]:
    """``/统计``'s lines for funds, talent and benefits."""
    data = section(report)
    talent = data.talent[""]
    benefit = sum(data.benefit_by_alliance([a.id for a in report.alliances]).values())
    grades = "、".join(f"{g} {n} 人" for g, n in talent.by_grade().items() if n)
    return [
        f"经费：收入 {data.income():,} 元，支出 {data.spending():,} 元，结余 {data.income() - data.spending():,} 元。",
        f"人才：培训 {talent.trainings} 次、参训 {talent.trained} 人次；名师带徒新结对 {talent.mentorships} 对"
        + (f"；获称号 {grades}" if grades else "")
        + "。",
        f"效益：成果应用 {len(data.benefits)} 处，直接经济效益 {benefit:,} 元。",
    ]


def write_sheets(report: YearReport, new: Callable[[str], Any]) -> None:
    """Sheets 经费, 经费明细, 人才, 效益."""
    data = section(report)
    funds = new("经费")
    categories = list(SPENDING_CATEGORIES)
    if any("其他" in ledger.spending_by_category() for ledger in data.ledgers.values()):
        categories.append("其他")
    funds.header(
        [
            "联盟编号",
            "联盟",
            *[f"收入：{s}" for s in INCOME_SOURCES],
            "收入合计",
            *[f"支出：{c}" for c in categories],
            "支出合计",
            "结余",
        ]
    )
    totals = [0] * (len(INCOME_SOURCES) + len(categories) + 3)
    for alliance in report.alliances:
        ledger = data.ledgers[alliance.id]
        income, spending = ledger.income_by_source(), ledger.spending_by_category()
        values = [
            *[income.get(s, 0) for s in INCOME_SOURCES],
            ledger.income,
            *[spending.get(c, 0) for c in categories],
            ledger.spending,
            ledger.balance,
        ]
        totals = [a + b for a, b in zip(totals, values, strict=True)]
        funds.row([alliance.id, alliance.name, *values])
    funds.row(["合计", "", *totals])
    funds.blank()
    funds.header(["联盟编号", "联盟", "类别", "预算（元）", "支出（元）", "执行率"])
    for alliance in report.alliances:
        ledger = data.ledgers[alliance.id]
        spending = ledger.spending_by_category()
        for category in SPENDING_CATEGORIES:
            budget = ledger.budgets.get(category)
            if budget is None and not spending.get(category):
                continue
            funds.row(
                [
                    alliance.id,
                    alliance.name,
                    category,
                    budget if budget is not None else "未设",
                    spending.get(category, 0),
                    spending.get(category, 0) / budget if budget else "—",
                ],
                percent={5},
            )
    funds.footnote(AWARD_LEDGER_RULE)
    funds.footnote(
        "专款专用：支出只能用于会议组织、研讨交流、学习培训、专项攻关、奖励；「其他」为管理员特批的支出。"
    )

    entries = new("经费明细")
    entries.header(
        [
            "联盟编号",
            "联盟",
            "日期",
            "收支",
            "类别",
            "金额（元）",
            "备注",
            "编号",
            "关联奖励",
            "特批",
            "登记人",
        ]
    )
    for alliance in report.alliances:
        for line in data.ledgers[alliance.id].lines:
            entries.row(
                [
                    alliance.id,
                    alliance.name,
                    line.on.isoformat() if line.on else "",
                    line.kind.label,
                    line.category,
                    line.amount,
                    line.note,
                    f"#{line.entry_id}" if line.entry_id is not None else "奖励登记",
                    f"#{line.award_id}" if line.award_id is not None else "",
                    line.override,
                    line.recorded_by,
                ]
            )

    talent = new("人才")
    talent.header(
        [
            "联盟编号",
            "联盟",
            "培训（次）",
            "参训（人次）",
            "参训（人）",
            "新结对师徒",
            "出师",
            "在带",
            *GRADES,
        ]
    )
    for key, name in [*((a.id, a.name) for a in report.alliances), ("合计", "")]:
        figures = data.talent["" if key == "合计" else key]
        grades = figures.by_grade()
        talent.row(
            [
                key,
                name,
                figures.trainings,
                figures.trained,
                figures.people,
                figures.mentorships,
                figures.mentorships_done,
                figures.mentorships_active,
                *[grades[g] for g in GRADES],
            ]
        )
    talent.blank()
    talent.header(["称号", "等级类别", *[a.name for a in report.alliances], "合计"])
    for title, grade in TITLES.items():
        counts = [data.talent[a.id].titles.get(title, 0) for a in report.alliances]
        talent.row([title, grade, *counts, data.talent[""].titles.get(title, 0)])
    talent.blank()
    talent.header(["日期", "姓名", "称号", "等级类别", "工作室或联盟", "证明材料"])
    for honour in data.honours:
        talent.row(list(honour))
    talent.blank()
    talent.header(["工作室", "师傅", "徒弟", "开始", "培养目标", "带徒成果"])
    for mentorship in data.mentorships:
        talent.row(list(mentorship))
    talent.footnote(
        "参训人次为培训、讲座两类已举办活动的签到人数之和（同一人同一活动只计一次）；参训人为其中不同的人。"
    )

    benefits = new("效益")
    scope = [a.id for a in report.alliances]
    by_alliance = data.benefit_by_alliance(scope)
    benefit_total = sum(by_alliance.values())
    benefits.header(["联盟编号", "联盟", "直接经济效益（元）", "占比"])
    for alliance in report.alliances:
        yuan = by_alliance[alliance.id]
        benefits.row(
            [alliance.id, alliance.name, yuan, yuan / benefit_total if benefit_total else "—"], percent={3}
        )
    benefits.row(["合计", "", benefit_total, 1.0 if benefit_total else "—"], percent={3})
    benefits.blank()
    per_studio: dict[str, int] = {}
    for item in data.benefits:
        for studio_id, yuan in item.studio_shares.items():
            per_studio[studio_id] = per_studio.get(studio_id, 0) + yuan
    benefits.header(["工作室编号", "工作室", "直接经济效益（元）"])
    for studio_id, yuan in sorted(per_studio.items(), key=lambda item: -item[1]):
        benefits.row([studio_id, report.studio_names.get(studio_id, studio_id), yuan])
    benefits.blank()
    benefits.header(
        ["课题", "成果编号", "成果", "工作室", "应用项目", "应用单位", "应用日期", "直接经济效益（元）"]
        + [f"计入{a.name}（元）" for a in report.alliances]
    )
    for item in data.benefits:
        benefits.row(
            [
                item.topic or "—",
                item.achievement_id,
                item.achievement,
                "、".join(report.studio_names.get(s, s) for s in item.studios),
                item.project,
                item.unit,
                item.applied_on,
                item.benefit,
                *[item.shares.get(a.id, 0) for a in report.alliances],
            ]
        )
    benefits.footnote(BENEFIT_SHARE_RULE)


def _english(names: tuple[str, ...], index: int) -> str:
    return names[index] if index < len(names) else f"#{index + 1}"


def write_charts(report: YearReport, *, labels: Any, plt: Any, save: Callable[[Any, str], None]) -> None:
    """Charts: sources vs. uses per alliance, budget attainment, talent, benefits."""
    data = section(report)
    year = report.year
    names = [labels.alliance(a) for a in report.alliances]
    xs = list(range(len(names)))
    width = 0.38
    colours = (
        "#4C78A8",
        "#72B7B2",
        "#9ECAE9",
        "#54A24B",
        "#F58518",
        "#E45756",
        "#B279A2",
        "#FF9DA6",
        "#9D755D",
    )

    fig, ax = plt.subplots(figsize=(9, 4.8))
    bottom = [0.0] * len(names)
    for index, source in enumerate(INCOME_SOURCES):
        values = [data.ledgers[a.id].income_by_source().get(source, 0) / 10_000 for a in report.alliances]
        ax.bar(
            [x - width / 2 for x in xs],
            values,
            width,
            bottom=bottom,
            color=colours[index],
            label=labels.pick(f"收入：{source}", f"in: {_english(SOURCES_EN, index)}"),
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    bottom = [0.0] * len(names)
    for index, category in enumerate(SPENDING_CATEGORIES):
        values = [
            data.ledgers[a.id].spending_by_category().get(category, 0) / 10_000 for a in report.alliances
        ]
        ax.bar(
            [x + width / 2 for x in xs],
            values,
            width,
            bottom=bottom,
            color=colours[index + 4],
            label=labels.pick(f"支出：{category}", f"out: {_english(CATEGORIES_EN, index)}"),
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    tallest = max(
        [max(data.ledgers[a.id].income, data.ledgers[a.id].spending) / 10_000 for a in report.alliances],
        default=0,
    )
    if tallest:
        ax.set_ylim(0, tallest * 1.35)  # headroom for the legend above the stacked bars
    ax.set_xticks(xs, names)
    ax.set_ylabel(labels.pick("万元", "10,000 yuan"))
    ax.set_title(
        labels.pick(f"{year}年经费来源与使用（左收入、右支出）", f"Funding sources and uses, {year}")
    )
    ax.legend(fontsize=7, ncol=2)
    save(fig, "funds_sources_uses.png")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    rates, notes = [], []
    for category in SPENDING_CATEGORIES:
        budget = sum(ledger.budgets.get(category, 0) for ledger in data.ledgers.values())
        spent = sum(
            ledger.spending_by_category().get(category, 0)
            for ledger in data.ledgers.values()
            if category in ledger.budgets
        )
        rates.append(spent / budget * 100 if budget else 0)
        # a bar of 0 must not read as "nothing spent of a budget": say which categories have none
        notes.append(f"{spent:,} / {budget:,}" if budget else labels.pick("未设预算", "no budget"))
    bars = ax.bar(
        [labels.pick(c, _english(CATEGORIES_EN, i)) for i, c in enumerate(SPENDING_CATEGORIES)],
        rates,
        color="#4C78A8",
    )
    for bar, note in zip(bars, notes, strict=True):
        ax.annotate(
            note,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color="#333333",
        )
    ax.axhline(100, color="#E45756", linestyle="--", linewidth=1)
    ax.set_ylabel(labels.pick("预算执行率（%）", "budget used (%)"))
    ax.set_title(labels.pick(f"{year}年预算执行（设有预算的类别）", f"Budget attainment, {year}"))
    save(fig, "funds_budget.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(xs, [data.talent[a.id].trained for a in report.alliances], color="#F58518")
    ax.set_xticks(xs, names)
    ax.set_ylabel(labels.pick("人次", "attendances"))
    ax.set_title(labels.pick(f"{year}年参训人次（培训、讲座签到）", f"People trained, {year}"))
    save(fig, "talent_trained.png")

    titles = list(TITLES)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(range(len(titles)), [data.talent[""].titles.get(t, 0) for t in titles], color="#54A24B")
    ax.set_xticks(
        range(len(titles)),
        [labels.pick(t, _english(TITLES_EN, i)) for i, t in enumerate(titles)],
        rotation=45,
        fontsize=8,
    )
    ax.set_ylabel(labels.pick("人", "people"))
    ax.set_title(labels.pick(f"{year}年获得称号与荣誉（按等级）", f"Titles earned by level, {year}"))
    save(fig, "talent_titles.png")

    by_alliance = data.benefit_by_alliance([a.id for a in report.alliances])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(names, [by_alliance[a.id] / 10_000 for a in report.alliances], color="#B279A2")
    ax.set_ylabel(labels.pick("万元", "10,000 yuan"))
    ax.set_title(
        labels.pick(f"{year}年成果直接经济效益（按联盟）", f"Direct economic benefit per alliance, {year}")
    )
    save(fig, "benefits.png")


# -- the report as a WeCom file (/报表) --------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class SentReport:
    """What ``/报表`` queued: the workbook's and the overview chart's names, and the summary."""

    workbook: str
    chart: str
    summary: str


class ReportDelivery:
    """Builds the year report for a chat request and queues it to the requester as WeCom files: the workbook
    and one overview image of the charts. Both rows and their outbox messages are written in the message's
    transaction, keyed by the message, so a retried message sends nothing twice."""

    def __init__(self, runtime: Any) -> None:
        import asyncio

        self.runtime = runtime
        self._render = (
            asyncio.Lock()
        )  # matplotlib's pyplot state is per process: one report renders at a time

    async def scope_for(self, caller: Any, word: str | None) -> str | None:
        """The alliance the caller may have a report of: an admin any (None: all alliances), an alliance lead
        their own (the one they lead when they name none)."""
        from bot.core.dispatcher import Role
        from bot.services.funds import Refusal

        store = self.runtime.store
        alliance = None
        if word:
            alliance = await store.alliances.find(word)
            if alliance is None:
                names = "、".join(a.name for a in await store.alliances.all())
                raise Refusal(f"没有找到联盟「{word}」。现有联盟：{names}。")
        if caller.at_least(Role.ADMIN):
            return alliance.id if alliance else None
        if alliance is None:
            if len(caller.alliances) != 1:
                raise Refusal("请写明联盟，例如 /报表 2026 隧道。")
            return str(caller.alliances[0])
        if alliance.id not in caller.alliances:
            raise Refusal(f"联盟负责人只能获取本联盟的报表，{alliance.name}的报表请联系其负责人或管理员。")
        return alliance.id

    async def send(
        self, caller: Any, *, year: int, alliance_id: str | None, message_key: str | None
    ) -> SentReport:
        """Collect, render and queue the report to ``caller``."""
        import asyncio
        import tempfile
        from pathlib import Path

        from bot.channels.wecom.files import file_message
        from bot.core.messages import Outbound, Target, TargetKind
        from bot.services.reports import collect, report_file_name, summary_text, write_report
        from bot.store.funds import FundRepo, ReportFile

        report = await collect(
            self.runtime.store,
            year=year,
            tz=self.runtime.settings.tz,
            now=self.runtime.clock.now(),
            alliance_id=alliance_id,
        )
        name = report_file_name(year, alliance_id)
        chart_name = name.removesuffix(".xlsx") + "-图表.png"
        with tempfile.TemporaryDirectory() as folder:
            async with self._render:
                workbook, charts = await asyncio.to_thread(write_report, report, Path(folder))
                overview = await asyncio.to_thread(overview_chart, charts, Path(folder) / chart_name)
            workbook_bytes, chart_bytes = workbook.read_bytes(), overview.read_bytes()
        files = FundRepo(self.runtime.store.sessions)
        now = self.runtime.clock.now()
        stored = [
            await files.add_file(
                ReportFile(name=name, content=workbook_bytes, created_by=caller.user_id, created_at=now)
            ),
            await files.add_file(
                ReportFile(name=chart_name, content=chart_bytes, created_by=caller.user_id, created_at=now)
            ),
        ]
        target = Target(TargetKind.USER_FILE, caller.user_id)
        key = message_key or f"report:{caller.user_id}:{now.isoformat()}"
        await self.runtime.outbox.send(
            *(
                Outbound(target, file_message(f.id or 0, kind=kind, name=f.name), f"report:{key}:{kind}")
                for f, kind in zip(stored, ("file", "image"), strict=True)
            )
        )
        return SentReport(name, chart_name, summary_text(report))


def overview_chart(charts: list[Any], out: Any) -> Any:
    """The report's charts side by side in one PNG (sent as one image message)."""
    from bot.services.reports import CHARTS_LOCK

    with CHARTS_LOCK:
        return _overview_chart(charts, out)


def _overview_chart(charts: list[Any], out: Any) -> Any:
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    columns = 3
    rows = max(1, math.ceil(len(charts) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 6, rows * 3.4))
    flat = list(axes.flat) if hasattr(axes, "flat") else [axes]
    for ax, chart in zip(flat, [*charts, *[None] * (len(flat) - len(charts))], strict=True):
        ax.axis("off")
        if chart is not None:
            ax.imshow(mpimg.imread(chart))
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
