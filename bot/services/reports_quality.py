"""How well each studio serves askers, for the year report, ``/统计`` and the console's report page: first-response
time and the askers' satisfaction per studio, computed once here (``collect_quality``) and shown by all three.

Definitions (stated to users as ``RESPONSE_RULE`` and ``SATISFACTION_RULE``, under the sheet that applies them):

- **First response.** A studio is asked to take a problem when the problem is logged, escalated to it or
  transferred to it (a ``problem_request`` row with its ``asked_at``). Its first response is its first claim of
  that problem at or after that moment (the first ``claimed`` entry in the problem's history naming the studio).
  Answering needs a claim (``/答复`` on an unclaimed problem claims it first), so the claim is also the first
  answer's lower bound: the claim is the first response. A request counts in the year it was made; a request
  not (yet) claimed counts as asked, not as a response. A studio claiming a problem it was never asked about
  has no first-response time for it.
- **Satisfaction.** A problem's rating is its asker's latest: 👍 on the relayed answer or 已解决 (``/解决`` by
  the asker) is 满意, 👎 or 还没解决 (``/未解决``) is 不满意, a withdrawn 👍/👎 leaves it unrated; ratings by
  others do not count. It counts for the studio that holds the problem (the claiming studio, which answered or
  solved it), in the year the rating was given. The share satisfied is 满意 / (满意 + 不满意).

A studio with no response or no rating shows 「暂无」, never a division by zero.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.store.feedback import FeedbackRepo
from bot.store.problems import ProblemRepo

if TYPE_CHECKING:
    from bot.services.reports import SummaryRow, YearReport
    from bot.store import Store
    from bot.store.studios import Studio

NONE_YET = "暂无"  # a figure without data: no response measured, nothing rated
SHEET = "工作室响应与满意度"
RESPONSE_RULE = (
    "首次响应口径：从工作室被请求（登记时推荐、超时转下一家或转派）到该工作室首次认领该问题的小时数"
    "（答复须先认领，认领即首次响应）；按请求发生的年份统计，未认领的请求只计入被请求数。"
)
SATISFACTION_RULE = (
    "满意度口径：每个问题取提问人最后一次评价（👍 或「已解决」为满意，👎 或「还没解决」为不满意，撤回不计），"
    "计入认领并答复该问题的工作室，按评价的年份统计；满意率 = 满意 ÷（满意 + 不满意）。"
)
# the studio a ``claimed`` history entry names: its detail is the studio's label, ``名称（ID）``
_CLAIMED_STUDIO = re.compile(r"（([^（）]+)）$")


@dataclass(slots=True)
class StudioQuality:
    """One studio's (or, for the totals, the scope's) first responses and ratings in the year."""

    studio_id: str
    name: str
    alliance_id: str
    asked: int = 0  # requests to take a problem
    response_hours: list[float] = field(default_factory=list)  # one per request claimed
    satisfied: int = 0
    unsatisfied: int = 0

    @property
    def responded(self) -> int:
        """Requests with a first response."""
        return len(self.response_hours)

    @property
    def median_response(self) -> float | None:
        """Median hours to the first response, to 0.1 h; None without one."""
        return round(statistics.median(self.response_hours), 1) if self.response_hours else None

    @property
    def rated(self) -> int:
        """Problems rated 满意 or 不满意."""
        return self.satisfied + self.unsatisfied

    @property
    def satisfied_share(self) -> float | None:
        """满意 / rated; None with nothing rated."""
        return self.satisfied / self.rated if self.rated else None


@dataclass(slots=True)
class QualityFacts:
    """Every studio in scope (roster order, the never-asked ones too) and the totals over them."""

    studios: list[StudioQuality]
    total: StudioQuality

    def ranked(self) -> list[StudioQuality]:
        """Studios with ratings, best share first (more ratings first on a tie, then by id)."""
        rated = [s for s in self.studios if s.satisfied_share is not None]
        return sorted(rated, key=lambda s: (-(s.satisfied_share or 0.0), -s.rated, s.studio_id))


def claimed_studio(detail: str) -> str | None:
    """The studio id a ``claimed`` history entry names (its detail is ``名称（ID）``)."""
    match = _CLAIMED_STUDIO.search(detail.strip())
    return match.group(1) if match else None


def first_responses(
    requests: Iterable[tuple[int, str, datetime]], claims: Iterable[tuple[int, datetime, str]]
) -> dict[tuple[int, str], float | None]:
    """Per request ``(problem, studio)``: hours from being asked to the studio's first claim at or after it, or
    None when it has not claimed since."""
    by_problem: dict[tuple[int, str], list[datetime]] = {}
    for problem_id, at, detail in claims:
        studio_id = claimed_studio(detail)
        if studio_id is not None:
            by_problem.setdefault((problem_id, studio_id), []).append(at)
    result: dict[tuple[int, str], float | None] = {}
    for problem_id, studio_id, asked_at in requests:
        later = [at for at in by_problem.get((problem_id, studio_id), []) if at >= asked_at]
        result[(problem_id, studio_id)] = (min(later) - asked_at).total_seconds() / 3600 if later else None
    return result


async def collect_quality(
    store: Store, *, since: datetime, until: datetime, studios: Sequence[Studio]
) -> QualityFacts:
    """First responses to the requests of ``[since, until)`` and the ratings given then, for ``studios``."""
    rows = {s.id: StudioQuality(s.id, s.name, s.alliance_id) for s in studios}
    requests, claims = await ProblemRepo(store.sessions).response_history(since, until)
    for (_, studio_id), hours in first_responses(requests, claims).items():
        row = rows.get(studio_id)
        if row is None:
            continue
        row.asked += 1
        if hours is not None:
            row.response_hours.append(hours)
    for _, studio_id, rating in await FeedbackRepo(store.sessions).asker_ratings(since, until):
        row = rows.get(studio_id)
        if row is None:
            continue
        if rating > 0:
            row.satisfied += 1
        else:
            row.unsatisfied += 1
    total = StudioQuality("合计", "", "")
    for row in rows.values():
        total.asked += row.asked
        total.response_hours += row.response_hours
        total.satisfied += row.satisfied
        total.unsatisfied += row.unsatisfied
    return QualityFacts(list(rows.values()), total)


# -- what the outputs show -----------------------------------------------------------------------------


def hours_shown(value: float | None) -> float | str:
    """Hours as a number, or 「暂无」."""
    return value if value is not None else NONE_YET


def share_text(row: StudioQuality) -> str:
    """``66.7%`` or 「暂无」."""
    share = row.satisfied_share
    return f"{share:.1%}" if share is not None else NONE_YET


def summary_rows(report: YearReport) -> list[SummaryRow]:
    """The totals for the summary sheet (and the console page, which shows the same rows)."""
    from bot.services.reports import SummaryRow

    facts = report.quality
    if facts is None:
        return []
    total = facts.total
    share = total.satisfied_share
    return [
        SummaryRow(
            "首次响应用时中位数",
            hours_shown(total.median_response),
            f"小时（{total.responded} 次响应/{total.asked} 次请求）",
        ),
        SummaryRow("满意评价", total.satisfied, "个"),
        SummaryRow("不满意评价", total.unsatisfied, "个"),
        SummaryRow(
            "满意率",
            share if share is not None else NONE_YET,
            f"满意 {total.satisfied}/已评价 {total.rated}",
            percent=True,
        ),
    ]


def summary_line(report: YearReport) -> str | None:
    """One short chat line: the share satisfied and the median first response, and the best and worst rated
    studios when two or more were rated."""
    facts = report.quality
    if facts is None:
        return None
    total = facts.total
    median = total.median_response
    response = f"{median} 小时（{total.responded} 次）" if median is not None else NONE_YET
    satisfaction = (
        f"{share_text(total)}（已评价 {total.rated} 个）" if total.rated else f"{NONE_YET}（无人评价）"
    )
    line = f"服务：满意率 {satisfaction}，首次响应中位 {response}。"
    ranked = facts.ranked()
    if len(ranked) >= 2 and ranked[0].satisfied_share != ranked[-1].satisfied_share:
        best, worst = ranked[0], ranked[-1]
        line += f"\n满意率最高 {best.name} {share_text(best)}，最低 {worst.name} {share_text(worst)}。"
    return line


def write_sheet(report: YearReport, new: Callable[[str], Any]) -> None:
    """The per-studio sheet: requests, first responses and their median, ratings and the share satisfied, a
    合计 row, and the two definitions under it."""
    facts = report.quality
    if facts is None:
        return
    sheet = new(SHEET)
    sheet.header(
        [
            "工作室编号",
            "工作室",
            "联盟",
            "被请求",
            "已响应",
            "首次响应中位（小时）",
            "满意",
            "不满意",
            "已评价",
            "满意率",
        ]
    )
    for row in [*facts.studios, facts.total]:
        share = row.satisfied_share
        sheet.row(
            [
                row.studio_id,
                row.name,
                report.alliance_name(row.alliance_id) if row.alliance_id else "",
                row.asked,
                row.responded,
                hours_shown(row.median_response),
                row.satisfied,
                row.unsatisfied,
                row.rated,
                share if share is not None else NONE_YET,
            ],
            percent={9} if share is not None else (),
        )
    sheet.blank()
    sheet.footnote(RESPONSE_RULE)
    sheet.footnote(SATISFACTION_RULE)
