"""Console pages of the alliance's records: research topics, achievements (search), awards, the audit log."""

from __future__ import annotations

from aiohttp import web

from bot.channels.web.auth import bot_of, page, require, viewer_of
from bot.core.dispatcher import Role
from bot.services.achievements.service import AchievementService, may_confirm_for
from bot.services.topics import TopicService
from bot.store.achievements import CONFIRMED, PENDING, WITHDRAWN, AchievementType
from bot.store.audit import AuditRepo
from bot.store.topics import TopicStatus

AUDIT_PAGE = 50
ACHIEVEMENT_STATES = {CONFIRMED: "已确认", PENDING: "待确认", WITHDRAWN: "已撤销", "all": "全部（含已撤销）"}


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


async def handle_topics(request: web.Request) -> web.Response:
    """``GET /console/topics``: every research topic with its support, by status and alliance."""
    bot = bot_of(request)
    service = bot.runtime.feature(TopicService)
    status_word = request.query.get("status", "")
    statuses = [TopicStatus(status_word)] if status_word in TopicStatus.__members__.values() else None
    alliance_id = request.query.get("alliance") or None
    topics = await service.topics.all(statuses=statuses, alliance_id=alliance_id)
    support = await service.topics.support_counts([t.id for t in topics if t.id is not None])
    return page(
        request,
        "topics.html",
        {
            "active": "topics",
            "topics": topics,
            "support": support,
            "studios": await service.studio_names(),
            "alliances": {a.id: a for a in await bot.store.alliances.all()},
            "statuses": list(TopicStatus),
            "status": status_word,
            "alliance": alliance_id or "",
            "quorum": service.quorum,
        },
    )


async def handle_achievements(request: web.Request) -> web.Response:
    """``GET /console/achievements``: search by type, year, studio and words."""
    bot = bot_of(request)
    service = bot.runtime.feature(AchievementService)
    kind = request.query.get("type", "")
    year = _int(request.query.get("year"))
    studio_id = request.query.get("studio", "")
    words = request.query.get("q", "").strip()
    state = request.query.get("state", "")
    every = await service.achievements.all(uncounted=True)
    found = [a for a in every if year is None or a.year == year]
    if state in ACHIEVEMENT_STATES and state != "all":
        found = [a for a in found if a.state == state]
    elif state != "all":  # by default the counted and the pending, not the withdrawn
        found = [a for a in found if a.state != WITHDRAWN]
    if kind:
        found = [a for a in found if a.type == kind]
    if studio_id:
        found = [a for a in found if studio_id in a.studios]
    if words:
        found = [a for a in found if words in a.title or words in a.description]
    years = sorted({a.year for a in every}, reverse=True)
    studios = await service.studio_names()
    caller = viewer_of(request).caller
    shown = found[:500]
    return page(
        request,
        "achievements.html",
        {
            "active": "achievements",
            "achievements": shown,
            "total": len(found),
            "studios": studios,
            "types": [t.value for t in AchievementType],
            "years": years,
            "states": ACHIEVEMENT_STATES,
            "confirmable": {
                a.id
                for a in shown
                if a.state == PENDING
                and any(may_confirm_for(caller, s, studios) for s in a.pending_studios or [])
            },
            "query": {"type": kind, "year": year or "", "studio": studio_id, "q": words, "state": state},
            "notice": request.query.get("done", ""),
        },
    )


async def handle_awards(request: web.Request) -> web.Response:
    """``GET /console/awards``: prize money by year; each award links to its page (edit, withdraw)."""
    bot = bot_of(request)
    service = bot.runtime.feature(AchievementService)
    year = _int(request.query.get("year"))
    awards = await service.achievements.awards(year=year)
    titles = {a.id: a for a in await service.achievements.all(uncounted=True)}
    return page(
        request,
        "awards.html",
        {
            "active": "awards",
            "awards": awards,
            "achievements": titles,
            "studios": await service.studio_names(),
            "year": year or "",
            "total": sum(a.amount for a in awards),
        },
    )


async def handle_audit(request: web.Request) -> web.Response:
    """``GET /console/audit``: who changed what, newest first (admins)."""
    require(request, Role.ADMIN, "查看审计日志")
    bot = bot_of(request)
    number = max(1, _int(request.query.get("page")) or 1)
    entity = request.query.get("entity") or None
    actor = request.query.get("actor") or None
    entries = await AuditRepo(bot.store.sessions).recent(
        entity=entity, actor=actor, limit=AUDIT_PAGE + 1, offset=(number - 1) * AUDIT_PAGE
    )
    return page(
        request,
        "audit.html",
        {
            "active": "audit",
            "entries": entries[:AUDIT_PAGE],
            "more": len(entries) > AUDIT_PAGE,
            "page": number,
            "entity": entity or "",
            "actor": actor or "",
        },
    )


def add_routes(console: web.Application) -> None:
    """Mount the records pages."""
    console.router.add_get("/topics", handle_topics, name="topics")
    console.router.add_get("/achievements", handle_achievements, name="achievements")
    console.router.add_get("/awards", handle_awards, name="awards")
    console.router.add_get("/audit", handle_audit, name="audit")
