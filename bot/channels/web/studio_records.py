"""The console page of a studio's record (档案): per year the figures ``/工作室 ID 档案`` answers with (from
``bot.services.records``), its star changes, and the "八有" checklist with who confirmed each item and when."""

from __future__ import annotations

from aiohttp import web

from bot.channels.web.auth import Refused, bot_of, page, viewer_of
from bot.services.evaluations import STAR_WORDS
from bot.services.records import EIGHT, RecordService
from bot.services.studios import display_names, studio_edit_refusal


async def handle_record(request: web.Request) -> web.Response:
    """``GET /console/studios/{id}/record``: the studio's record, year by year, and its checklist."""
    bot = bot_of(request)
    studio = await bot.store.studios.get(request.match_info["id"])
    if studio is None:
        raise Refused("没有这个工作室。", status=404)
    service = bot.runtime.feature(RecordService)
    record = await service.record(studio)
    confirmed = record.checklist
    names = await display_names(
        bot.store, [c.confirmed_by for c in confirmed.values()] + [c.actor for c in record.stars]
    )
    checklist = [{"item": item, "confirmed": confirmed.get(item)} for item in EIGHT]
    alliance = await bot.store.alliances.get(studio.alliance_id)
    return page(
        request,
        "studio_record.html",
        {
            "active": "studios",
            "studio": studio,
            "alliance": alliance,
            "record": record,
            "years": list(record.years.values()),
            "checklist": checklist,
            "done": sum(1 for c in checklist if c["confirmed"] is not None),
            "names": names,
            "star_words": STAR_WORDS,
            "editable": studio_edit_refusal(viewer_of(request).caller, studio) is None,
        },
    )


def add_routes(console: web.Application) -> None:
    """Mount the studio record page."""
    console.router.add_get("/studios/{id}/record", handle_record, name="studio-record")
