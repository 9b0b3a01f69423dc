"""Console pages that change achievements and awards: an achievement's page (details, awards, audit trail) with
edit, withdraw (撤销) and confirm, and an award's page with edit and withdraw — through the same
``AchievementService`` methods, role checks and refusals as ``/成果 N 修改|撤销|确认`` and ``/奖励 修改|撤销``.

Every change needs a reason and lands in the audit log with source ``console``. The predicates the service
checks decide which forms a page shows and whether a refusal is a 403 (not allowed) or a 400 (bad input)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from bot.channels.web.auth import Refused, bot_of, page, redirect, require, viewer_of
from bot.core.dispatcher import Role, UserError
from bot.services.achievements.service import (
    STATE_LABELS,
    AchievementService,
    achievement_label,
    may_change_achievement,
    may_confirm_for,
)
from bot.services.studios import display_names, studio_list
from bot.store.achievements import ACTIVE, CONFIRMED, PENDING, WITHDRAWN, Achievement, AchievementType, Award

SOURCE = "console"
# the achievement form's fields and the service's (Chinese) field names
ACHIEVEMENT_FORM = {
    "type": "类型",
    "title": "名称",
    "year": "年份",
    "description": "简介",
    "studios": "工作室",
}
AWARD_FORM = {"amount": "金额", "year": "年份", "name": "名称", "note": "备注"}


def _number(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def service_of(request: web.Request) -> AchievementService:
    """The achievements service."""
    service: AchievementService = bot_of(request).runtime.feature(AchievementService)
    return service


async def _achievement(request: web.Request) -> Achievement:
    number = _number(request.match_info["id"])
    achievement = await service_of(request).achievements.get(number) if number else None
    if achievement is None:
        raise Refused("没有这项成果。", status=404)
    return achievement


async def _award(request: web.Request) -> Award:
    number = _number(request.match_info["id"])
    award = await service_of(request).achievements.get_award(number) if number else None
    if award is None:
        raise Refused("没有这笔奖励。", status=404)
    return award


async def _form(request: web.Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.post()).items() if k != "csrf"}


def _shown(value: object) -> str:
    """A field's current value as the form shows it (studios as ``T1、T3``)."""
    if isinstance(value, list):
        return "、".join(map(str, value))
    return "" if value is None else str(value)


def _changes(form: dict[str, str], current: dict[str, object], fields: dict[str, str]) -> dict[str, str]:
    """The service's ``{字段: 新值}`` for the form fields whose text differs from the current value."""
    return {
        word: form[key]
        for key, word in fields.items()
        if key in form and form[key].strip() != _shown(current[key]).strip()
    }


def _state_text(achievement: Achievement, studios: dict[str, object]) -> str:
    if achievement.state == PENDING:
        return f"待{studio_list(achievement.pending_studios or [], studios)}确认，确认前不计入统计"  # type: ignore[arg-type]
    if achievement.state == WITHDRAWN:
        return "已撤销，不计入统计"
    return STATE_LABELS.get(achievement.state, achievement.state)


def _back(path: str, notice: str) -> web.Response:
    return redirect(f"{path}?{urlencode({'done': notice})}")


async def handle_achievement(request: web.Request) -> web.Response:
    """``GET /console/achievements/{id}``: an achievement, its awards, its audit trail and the allowed forms."""
    bot = bot_of(request)
    service = service_of(request)
    caller = viewer_of(request).caller
    achievement = await _achievement(request)
    assert achievement.id is not None
    studios = await service.studio_names()
    awards = await service.achievements.awards_of(achievement.id, withdrawn=True)
    history = await service.history(achievement.id, [a.id for a in awards if a.id is not None])
    topic = await service.topics.get(achievement.topic_id) if achievement.topic_id is not None else None
    names = await display_names(bot.store, [achievement.registered_by] if achievement.registered_by else [])
    return page(
        request,
        "achievement.html",
        {
            "active": "achievements",
            "achievement": achievement,
            "label": achievement_label(achievement),
            "state": _state_text(achievement, studios),  # type: ignore[arg-type]
            "studios": studios,
            "studio_text": studio_list(achievement.studios, studios),
            "topic": topic,
            "registered_by": names.get(achievement.registered_by, achievement.registered_by),
            "awards": awards,
            "history": history,
            "types": [t.value for t in AchievementType],
            "form": {k: _shown(getattr(achievement, k)) for k in ACHIEVEMENT_FORM},
            "can_edit": achievement.state != WITHDRAWN
            and caller.at_least(Role.STUDIO_LEAD)
            and may_change_achievement(caller, achievement, studios),
            "can_confirm": achievement.state == PENDING
            and any(may_confirm_for(caller, s, studios) for s in achievement.pending_studios or []),
            "notice": request.query.get("done", ""),
        },
    )


async def handle_edit(request: web.Request) -> web.StreamResponse:
    """``POST /console/achievements/{id}/edit``: as ``/成果 N 修改 字段=值 原因=…``."""
    viewer = require(request, Role.STUDIO_LEAD, "修改成果")
    service = service_of(request)
    achievement = await _achievement(request)
    assert achievement.id is not None
    allowed = may_change_achievement(viewer.caller, achievement, await service.studio_names())
    form = await _form(request)
    current = {k: getattr(achievement, k) for k in ACHIEVEMENT_FORM}
    changes = _changes(form, current, ACHIEVEMENT_FORM)
    if allowed and not changes and achievement.state != WITHDRAWN:
        raise Refused("没有修改任何内容。", status=400)
    try:
        edited, what = await service.edit(
            achievement.id, changes, caller=viewer.caller, reason=form.get("reason", ""), source=SOURCE
        )
    except UserError as exc:
        raise Refused(str(exc), status=400 if allowed else 403) from None
    reason = form.get("reason", "").strip()
    return _back(
        f"/console/achievements/{achievement.id}",
        f"已修改{achievement_label(edited)}：{what}。原因：{reason}。",
    )


async def handle_delete(request: web.Request) -> web.StreamResponse:
    """``POST /console/achievements/{id}/delete``: as ``/成果 N 撤销 原因`` (the awards on it go too)."""
    viewer = require(request, Role.STUDIO_LEAD, "撤销成果")
    service = service_of(request)
    achievement = await _achievement(request)
    assert achievement.id is not None
    allowed = may_change_achievement(viewer.caller, achievement, await service.studio_names())
    reason = (await _form(request)).get("reason", "")
    try:
        withdrawn, awards = await service.delete(
            achievement.id, caller=viewer.caller, reason=reason, source=SOURCE
        )
    except UserError as exc:
        raise Refused(str(exc), status=400 if allowed else 403) from None
    extra = f"，其上的奖励 {'、'.join(f'#{a.id}' for a in awards)} 一并撤销" if awards else ""
    return _back(
        f"/console/achievements/{achievement.id}",
        f"已撤销{achievement_label(withdrawn)}{extra}。原因：{reason.strip()}。不再计入统计和报表，记录留档。",
    )


async def handle_confirm(request: web.Request) -> web.StreamResponse:
    """``POST /console/achievements/{id}/confirm``: as ``/成果 N 确认``."""
    viewer = viewer_of(request)
    service = service_of(request)
    achievement = await _achievement(request)
    assert achievement.id is not None
    studios = await service.studio_names()
    mine = any(may_confirm_for(viewer.caller, s, studios) for s in achievement.pending_studios or [])
    try:
        confirmed, done = await service.confirm(achievement.id, caller=viewer.caller, source=SOURCE)
    except UserError as exc:
        status = 403 if achievement.state == PENDING and not mine else 409
        raise Refused(str(exc), status=status) from None
    if confirmed.state == CONFIRMED:
        notice = f"已确认{achievement_label(confirmed)}（{studio_list(done, studios)}），成果已计入统计。"
    else:
        waiting = studio_list(confirmed.pending_studios or [], studios)
        notice = f"已确认{studio_list(done, studios)}的部分，还需{waiting}确认后才计入统计。"
    return _back(f"/console/achievements/{achievement.id}", notice)


async def handle_award(request: web.Request) -> web.Response:
    """``GET /console/awards/{id}``: an award, what it is for, its audit trail and the allowed forms."""
    service = service_of(request)
    caller = viewer_of(request).caller
    award = await _award(request)
    assert award.id is not None
    studios = await service.studio_names()
    achievement = (
        await service.achievements.get(award.achievement_id) if award.achievement_id is not None else None
    )
    # an award on an achievement shows the achievement's trail too; no achievement has number 0
    history = await service.history(award.achievement_id or 0, [award.id])
    return page(
        request,
        "award.html",
        {
            "active": "awards",
            "award": award,
            "achievement": achievement,
            "achievement_label": achievement_label(achievement) if achievement else "",
            "studio": studio_list([award.studio_id], studios) if award.studio_id else "",
            "withdrawn": award.state != ACTIVE,
            "history": history,
            "form": {k: _shown(getattr(award, k)) for k in AWARD_FORM},
            "can_change": award.state == ACTIVE
            and caller.at_least(Role.ALLIANCE_LEAD)
            and await service.may_change_award(award, caller),
            "notice": request.query.get("done", ""),
        },
    )


async def handle_award_edit(request: web.Request) -> web.StreamResponse:
    """``POST /console/awards/{id}/edit``: as ``/奖励 修改 N 金额=… 原因=…``."""
    viewer = require(request, Role.ALLIANCE_LEAD, "修改奖励")
    service = service_of(request)
    award = await _award(request)
    assert award.id is not None
    allowed = await service.may_change_award(award, viewer.caller)
    form = await _form(request)
    changes = _changes(form, {k: getattr(award, k) for k in AWARD_FORM}, AWARD_FORM)
    if allowed and not changes and award.state == ACTIVE:
        raise Refused("没有修改任何内容。", status=400)
    try:
        edited, what = await service.edit_award(
            award.id, changes, caller=viewer.caller, reason=form.get("reason", ""), source=SOURCE
        )
    except UserError as exc:
        raise Refused(str(exc), status=400 if allowed else 403) from None
    reason = form.get("reason", "").strip()
    return _back(f"/console/awards/{award.id}", f"已修改奖励 #{edited.id}：{what}。原因：{reason}。")


async def handle_award_delete(request: web.Request) -> web.StreamResponse:
    """``POST /console/awards/{id}/delete``: as ``/奖励 撤销 N 原因``."""
    viewer = require(request, Role.ALLIANCE_LEAD, "撤销奖励")
    service = service_of(request)
    award = await _award(request)
    assert award.id is not None
    allowed = await service.may_change_award(award, viewer.caller)
    reason = (await _form(request)).get("reason", "")
    try:
        withdrawn = await service.delete_award(award.id, caller=viewer.caller, reason=reason, source=SOURCE)
    except UserError as exc:
        raise Refused(str(exc), status=400 if allowed else 403) from None
    return _back(
        f"/console/awards/{award.id}",
        f"已撤销奖励 #{withdrawn.id}（{withdrawn.year}年「{withdrawn.name}」{withdrawn.amount:,} 元）。"
        f"原因：{reason.strip()}。",
    )


def add_routes(console: web.Application) -> None:
    """Mount the achievement and award pages and their actions."""
    console.router.add_get("/achievements/{id}", handle_achievement, name="achievement")
    console.router.add_post("/achievements/{id}/edit", handle_edit, name="achievement-edit")
    console.router.add_post("/achievements/{id}/delete", handle_delete, name="achievement-delete")
    console.router.add_post("/achievements/{id}/confirm", handle_confirm, name="achievement-confirm")
    console.router.add_get("/awards/{id}", handle_award, name="award")
    console.router.add_post("/awards/{id}/edit", handle_award_edit, name="award-edit")
    console.router.add_post("/awards/{id}/delete", handle_award_delete, name="award-delete")
