"""Console pages of the alliance's records: research topics, achievements (search), awards, the audit log."""

from __future__ import annotations

from aiohttp import web

from bot.channels.web.auth import bot_of, page, require
from bot.core.dispatcher import Role
from bot.services.achievements.service import AchievementService
from bot.services.topics import TopicService
from bot.store.achievements import AchievementType
from bot.store.audit import AuditRepo
from bot.store.topics import TopicStatus

AUDIT_PAGE = 50


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
    every = await service.achievements.all()
    found = [a for a in every if year is None or a.year == year]
    if kind:
        found = [a for a in found if a.type == kind]
    if studio_id:
        found = [a for a in found if studio_id in a.studios]
    if words:
        found = [a for a in found if words in a.title or words in a.description]
    years = sorted({a.year for a in every}, reverse=True)
    return page(
        request,
        "achievements.html",
        {
            "active": "achievements",
            "achievements": found[:500],
            "total": len(found),
            "studios": await service.studio_names(),
            "types": [t.value for t in AchievementType],
            "years": years,
            "query": {"type": kind, "year": year or "", "studio": studio_id, "q": words},
        },
    )


async def handle_awards(request: web.Request) -> web.Response:
    """``GET /console/awards``: prize money by year (read-only)."""
    bot = bot_of(request)
    service = bot.runtime.feature(AchievementService)
    year = _int(request.query.get("year"))
    awards = await service.achievements.awards(year=year)
    titles = {a.id: a for a in await service.achievements.all()}
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
