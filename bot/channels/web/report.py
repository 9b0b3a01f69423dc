"""The report page: the year's figures (the workbook's summary, per alliance and per studio), its charts inline
as PNG, and the XLSX download — all from ``bot.services.reports``, as ``alliance-bot report`` and ``/统计``."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections import Counter
from pathlib import Path
from time import monotonic
from urllib.parse import quote

from aiohttp import web

from bot.channels.web.auth import Refused, bot_of, page, viewer_of
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

CHARTS_FOR = 300.0  # seconds the charts of a year and scope are reused (drawing them takes seconds)
ChartCache = dict[tuple[int, str | None], tuple[float, list[tuple[str, str]]]]
CHART_CACHE: web.AppKey[ChartCache] = web.AppKey("console_charts", dict)


async def _report(request: web.Request) -> YearReport:
    bot = bot_of(request)
    raw = request.query.get("year", "")
    year = int(raw) if raw.isdigit() and 1980 <= int(raw) <= 2100 else bot.runtime.local_now().year
    alliance_id = request.query.get("alliance") or None
    try:
        return await collect(
            bot.store, year=year, tz=bot.settings.tz, now=bot.clock.now(), alliance_id=alliance_id
        )
    except LookupError:
        raise Refused("没有这个联盟。", status=404) from None


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
    """``GET /console/report?year=&alliance=``."""
    bot = bot_of(request)
    report = await _report(request)
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
    studios = [
        {
            "id": s.id,
            "name": s.name,
            "alliance": s.alliance_id,
            "achievements": achievements.get(s.id, 0),
            "awards": award_money.get(s.id, 0),
            "load": load.get(s.id, (0, 0)),
        }
        for s in await bot.store.studios.all()
        if s.alliance_id in scope_ids
    ]
    cache = request.config_dict[CHART_CACHE]
    key = (report.year, report.scope)
    cached = cache.get(key)
    if cached is not None and monotonic() - cached[0] < CHARTS_FOR:
        charts = cached[1]
    else:
        charts = await asyncio.to_thread(_charts, report)
        cache[key] = (monotonic(), charts)
    return page(
        request,
        "report.html",
        {
            "active": "report",
            "report": report,
            "rows": summary_rows(report),
            "alliances": alliances,
            "studios": studios,
            "charts": charts,
            "all_alliances": await bot.store.alliances.all(),
            "may_download": workbook_refusal(viewer_of(request).caller, report.scope) is None,
        },
    )


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
    """Mount the report page and its download."""
    console[CHART_CACHE] = {}
    console.router.add_get("/report", handle_report, name="report")
    console.router.add_get("/report.xlsx", handle_download, name="report-download")
