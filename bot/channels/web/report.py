"""The report page: the year's figures (the workbook's summary, per alliance and per studio), its charts, and
the XLSX download — all from ``bot.services.reports``, as ``alliance-bot report`` and ``/统计``.

The page is fast on its first request and never stale:
- it collects the report without the evaluation sheets (a record per studio, which only the workbook shows);
- the built report is kept per year and scope, keyed by ``content_version`` (a digest of the rows it is built
  from, computed by the database) and the local date; any change, from chat, the console or another process,
  changes the version, and an activity starting since (held, no longer scheduled) retires the entry too;
- the charts (matplotlib, seconds) are not drawn while the page waits: the page loads them from
  ``/console/report/charts`` (an HTML fragment) after it is shown, and they are drawn once per version."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.channels.web.auth import Refused, bot_of, page, render, viewer_of
from bot.services.problems import ProblemService
from bot.services.reports import (
    YearReport,
    collect,
    report_file_name,
    summary_rows,
    workbook_refusal,
    write_charts,
    write_workbook,
)
from bot.services.reports_quality import NONE_YET, RESPONSE_RULE, SATISFACTION_RULE, hours_shown, share_text
from bot.store.versions import content_version

KEPT = 8  # (year, scope) reports kept


@dataclass(slots=True)
class Built:
    """A report built at one data version, and its charts once drawn."""

    version: str
    day: date
    report: YearReport
    charts: list[tuple[str, str]] | None = None
    drawing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def current(self, version: str, day: date, now: datetime) -> bool:
        """Whether this is still the report the data and the clock give."""
        started = any(not a.held and a.start <= now for a in self.report.activities)
        return self.version == version and self.day == day and not started


ReportCache = dict[tuple[int, str | None], Built]
REPORT_CACHE: web.AppKey[ReportCache] = web.AppKey("console_reports", dict)


def _scope(request: web.Request) -> tuple[int, str | None]:
    bot = bot_of(request)
    raw = request.query.get("year", "")
    year = int(raw) if raw.isdigit() and 1980 <= int(raw) <= 2100 else bot.runtime.local_now().year
    return year, request.query.get("alliance") or None


async def _report(request: web.Request) -> YearReport:
    """The full report (with the evaluation sheets), for the workbook."""
    bot = bot_of(request)
    year, alliance_id = _scope(request)
    try:
        return await collect(
            bot.store, year=year, tz=bot.settings.tz, now=bot.clock.now(), alliance_id=alliance_id
        )
    except LookupError:
        raise Refused("没有这个联盟。", status=404) from None


async def _built(request: web.Request) -> Built:
    """The page's report for the requested year and scope: the cached one while current, else a new one."""
    bot = bot_of(request)
    key = _scope(request)
    now = bot.clock.now()
    day = now.astimezone(bot.settings.tz).date()
    version = await content_version(bot.store.sessions)
    cache = request.config_dict[REPORT_CACHE]
    cached = cache.get(key)
    if cached is not None and cached.current(version, day, now):
        return cached
    try:
        report = await collect(
            bot.store, year=key[0], tz=bot.settings.tz, now=now, alliance_id=key[1], evaluations=False
        )
    except LookupError:
        raise Refused("没有这个联盟。", status=404) from None
    built = Built(version=version, day=day, report=report)
    cache.pop(key, None)
    cache[key] = built
    while len(cache) > KEPT:
        cache.pop(next(iter(cache)))
    return built


def _charts(report: YearReport) -> list[tuple[str, str]]:
    """The charts as (name, base64 PNG), drawn in a temporary folder (matplotlib writes files)."""
    with tempfile.TemporaryDirectory() as folder:
        return [
            (p.stem, base64.b64encode(p.read_bytes()).decode("ascii"))
            for p in write_charts(report, Path(folder))
        ]


def _workbook(report: YearReport) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return write_workbook(report, Path(folder) / "report.xlsx").read_bytes()


async def handle_report(request: web.Request) -> web.Response:
    """``GET /console/report?year=&alliance=``: the figures; the charts follow from ``/console/report/charts``."""
    bot = bot_of(request)
    built = await _built(request)
    report = built.report
    figures = report.problems
    alliances = []
    awards = report.awards_by_alliance()
    for alliance in report.alliances:
        alliances.append(
            {
                "name": alliance.name,
                "logged": figures.total(figures.logged, alliance.id) if figures else 0,
                "solved": figures.total(figures.solved, alliance.id) if figures else 0,
                "topics": report.topics.get(alliance.id, [0, 0, 0]),
                "achievements": sum(1 for _, of in report.achievements if alliance.id in of),
                "awards": awards.get(alliance.id, 0),
                "meeting": report.annual_meeting(alliance.id),
            }
        )
    achievements = Counter(s for a, _ in report.achievements for s in a.studios)
    award_money: Counter[str] = Counter()
    for award in report.awards:
        for studio_id in award.studios:
            award_money[studio_id] += award.amount // max(1, len(award.studios))
    load = await bot.runtime.feature(ProblemService).repo.load()
    scope_ids = {a.id for a in report.alliances}
    quality = {q.studio_id: q for q in report.quality.studios} if report.quality else {}
    studios = [
        {
            "id": s.id,
            "name": s.name,
            "alliance": report.alliance_name(s.alliance_id),
            "achievements": achievements.get(s.id, 0),
            "awards": award_money.get(s.id, 0),
            "load": load.get(s.id, (0, 0)),
            # the same figures as the workbook's per-studio sheet (bot.services.reports_quality)
            "response": hours_shown(quality[s.id].median_response) if s.id in quality else NONE_YET,
            "rated": quality[s.id].rated if s.id in quality else 0,
            "satisfied": share_text(quality[s.id]) if s.id in quality else NONE_YET,
        }
        for s in await bot.store.studios.all()
        if s.alliance_id in scope_ids
    ]
    query = urlencode({"year": report.year, "alliance": report.scope or "", "v": built.version[:16]})
    return page(
        request,
        "report.html",
        {
            "active": "report",
            "report": report,
            "rows": summary_rows(report),
            "alliances": alliances,
            "studios": studios,
            "charts": built.charts,  # drawn already: shown at once
            "charts_url": f"/console/report/charts?{query}",
            "all_alliances": await bot.store.alliances.all(),
            "quality_rules": (RESPONSE_RULE, SATISFACTION_RULE) if report.quality else (),
            "may_download": workbook_refusal(viewer_of(request).caller, report.scope) is None,
        },
    )


async def handle_charts(request: web.Request) -> web.Response:
    """``GET /console/report/charts?year=&alliance=``: the charts of the current report, as an HTML fragment
    of inline PNGs, drawn once per data version (concurrent requests wait for the one drawing)."""
    built = await _built(request)
    async with built.drawing:
        if built.charts is None:
            # the stars-by-alliance chart needs the evaluation facts the page's report leaves out
            full = built.report if built.report.evaluations is not None else await _report(request)
            built.charts = await asyncio.to_thread(_charts, full)
    html = render(request, "report_charts.html", {"charts": built.charts})
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


async def handle_download(request: web.Request) -> web.Response:
    """``GET /console/report.xlsx?year=&alliance=``: the year's workbook."""
    report = await _report(request)
    refusal = workbook_refusal(viewer_of(request).caller, report.scope)
    if refusal:
        raise Refused(refusal)
    body = await asyncio.to_thread(_workbook, report)
    name = report_file_name(report.year, report.scope)
    return web.Response(
        body=body,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f"attachment; filename=\"report-{report.year}.xlsx\"; filename*=UTF-8''{quote(name)}"
        },
    )


def add_routes(console: web.Application) -> None:
    """Mount the report page, its charts and its download."""
    console[REPORT_CACHE] = {}
    console.router.add_get("/report", handle_report, name="report")
    console.router.add_get("/report/charts", handle_charts, name="report-charts")
    console.router.add_get("/report.xlsx", handle_download, name="report-download")
