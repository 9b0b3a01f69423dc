"""Console pages of technical problems: the board (filters by alliance, studio, status and age; pages) and a
problem's page (history, asked studios) with the actions the viewer's role allows — transfer, close, reopen —
through the same ``ProblemService`` methods and refusals as ``/转派``, ``/关闭`` and ``/重开``."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

from aiohttp import web

from bot.channels.web.auth import Refused, bot_of, page, redirect, studios_by_id, viewer_of
from bot.handlers.problems import event_text
from bot.services.problems import (
    MAX_TEXT,
    ProblemService,
    close_refusal,
    problem_label,
    reopen_refusal,
    studio_label,
    transfer_refusal,
)
from bot.services.studios import display_names
from bot.store.media import EXTENSIONS, MediaFiles, PhotoRepo
from bot.store.problems import ACTIVE, UNCLAIMED, Problem, ProblemStatus

PAGE_SIZE = 50
SHA256 = re.compile(r"^[0-9a-f]{64}$")
STATUS_FILTERS: dict[str, tuple[str, tuple[ProblemStatus, ...] | None]] = {
    "active": ("未解决", ACTIVE),
    "unclaimed": ("待认领", UNCLAIMED),
    "claimed": ("已认领", (ProblemStatus.CLAIMED,)),
    "answered": ("已答复", (ProblemStatus.ANSWERED,)),
    "solved": ("已解决", (ProblemStatus.SOLVED,)),
    "closed": ("已关闭", (ProblemStatus.CLOSED,)),
    "all": ("全部", None),
}


def _number(value: str | None, default: int | None = None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else default


async def handle_board(request: web.Request) -> web.Response:
    """``GET /console/problems``."""
    bot = bot_of(request)
    service = bot.runtime.feature(ProblemService)
    status = request.query.get("status", "active")
    if status not in STATUS_FILTERS:
        status = "active"
    alliance_id = request.query.get("alliance") or None
    studio_id = request.query.get("studio") or None
    days = _number(request.query.get("days"))
    number = max(1, _number(request.query.get("page"), 1) or 1)
    created_before = bot.clock.now() - timedelta(days=days) if days else None
    total, problems = await service.repo.board(
        statuses=STATUS_FILTERS[status][1],
        alliance_id=alliance_id,
        studio_id=studio_id,
        created_before=created_before,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    kept = {"status": status, "alliance": alliance_id or "", "studio": studio_id or "", "days": days or ""}
    return page(
        request,
        "problems.html",
        {
            "active": "problems",
            "problems": problems,
            "total": total,
            "page": number,
            "pages": pages,
            "filters": kept,
            "query": urlencode(kept),
            "statuses": {key: label for key, (label, _) in STATUS_FILTERS.items()},
            "alliances": await bot.store.alliances.all(),
            "studios": await studios_by_id(request),
        },
    )


async def _problem(request: web.Request) -> Problem:
    number = _number(request.match_info["id"])
    problem = await bot_of(request).runtime.feature(ProblemService).repo.get(number) if number else None
    if problem is None:
        raise Refused("没有这个问题。", status=404)
    return problem


async def handle_problem(request: web.Request) -> web.Response:
    """``GET /console/problems/{id}``: the problem, its history, the studios asked and the allowed actions."""
    bot = bot_of(request)
    service = bot.runtime.feature(ProblemService)
    viewer = viewer_of(request)
    problem = await _problem(request)
    assert problem.id is not None
    detail = await service.repo.detail(problem.id)
    assert detail is not None
    studios = await studios_by_id(request)
    names = await display_names(bot.store, [problem.asker, *(e.actor for e in detail.events)])
    history = [
        {
            "at": e.at,
            "actor": "系统" if e.actor == "system" else names.get(e.actor, e.actor),
            "text": event_text(e.action, e.detail),
        }
        for e in detail.events
    ]
    caller = viewer.caller
    can_transfer = (
        not problem.state.final
        and problem.state != ProblemStatus.ANSWERED
        and transfer_refusal(caller, problem) is None
    )
    targets = [
        s
        for s in studios.values()
        if can_transfer and s.id != problem.studio_id and transfer_refusal(caller, problem, s) is None
    ]
    return page(
        request,
        "problem.html",
        {
            "active": "problems",
            "problem": problem,
            "label": problem_label(problem, 60),
            "asker": names[problem.asker],
            "requests": [
                {"studio": studio_label(studios.get(r.studio_id), r.studio_id), "rank": r.rank, "request": r}
                for r in detail.requests
            ],
            "owner": studio_label(studios.get(problem.studio_id), problem.studio_id)
            if problem.studio_id
            else "",
            "history": history,
            "can_close": not problem.state.final and close_refusal(caller, problem) is None,
            "can_reopen": problem.state.final and reopen_refusal(caller, problem) is None,
            "targets": targets if can_transfer else [],
            "photos": await PhotoRepo(bot.store.sessions).of_problem(problem.id),
            "notice": request.query.get("done", ""),
        },
    )


async def _form(request: web.Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.post()).items()}


async def handle_close(request: web.Request) -> web.StreamResponse:
    """``POST /console/problems/{id}/close``: as ``/关闭 N 理由``."""
    service = bot_of(request).runtime.feature(ProblemService)
    viewer = viewer_of(request)
    problem = await _problem(request)
    refusal = close_refusal(viewer.caller, problem)
    if refusal:
        raise Refused(refusal)
    reason = (await _form(request)).get("reason", "").strip()
    if len(reason) > MAX_TEXT:
        raise Refused(f"理由请不超过 {MAX_TEXT} 字。", status=400)
    if problem.state.final:
        raise Refused(f"问题 {problem_label(problem)}已经{problem.state.label}，无需关闭。", status=409)
    closed = await service.close(problem, user_id=viewer.user_id, reason=reason)
    if closed is None:
        raise Refused("问题的状态刚刚发生了变化，请刷新后再试。", status=409)
    return _back(problem, f"问题 #{problem.id} 已关闭。")


async def handle_reopen(request: web.Request) -> web.StreamResponse:
    """``POST /console/problems/{id}/reopen``: as ``/重开 N``."""
    service = bot_of(request).runtime.feature(ProblemService)
    viewer = viewer_of(request)
    problem = await _problem(request)
    refusal = reopen_refusal(viewer.caller, problem)
    if refusal:
        raise Refused(refusal)
    if not problem.state.final:
        raise Refused(f"问题 {problem_label(problem)}还没有解决或关闭，无需重开。", status=409)
    reopened = await service.reopen(problem, user_id=viewer.user_id)
    if reopened is None:
        raise Refused("问题的状态刚刚发生了变化，请刷新后再试。", status=409)
    return _back(problem, f"问题 #{problem.id} 已重新打开，当前状态：{reopened.state.label}。")


async def handle_transfer(request: web.Request) -> web.StreamResponse:
    """``POST /console/problems/{id}/transfer``: as ``/转派 N 工作室``."""
    bot = bot_of(request)
    service = bot.runtime.feature(ProblemService)
    viewer = viewer_of(request)
    problem = await _problem(request)
    studio = await bot.store.studios.get((await _form(request)).get("studio", "").strip())
    if studio is None:
        raise Refused("没有找到要转给的工作室。", status=400)
    refusal = transfer_refusal(viewer.caller, problem, studio)
    if refusal:
        raise Refused(refusal)
    if problem.state.final or problem.state == ProblemStatus.ANSWERED:
        raise Refused(f"问题 {problem_label(problem)}已{problem.state.label}，不能再转派。", status=409)
    if problem.studio_id == studio.id:
        return _back(problem, f"问题已由{studio.name}认领，无需转派。")
    moved = await service.transfer(problem, studio=studio, user_id=viewer.user_id)
    if moved is None:
        raise Refused("问题的状态刚刚发生了变化，请刷新后再试。", status=409)
    return _back(
        problem, f"已把问题 #{problem.id} 转给{studio_label(studio, studio.id)}，已通知其负责人和提问人。"
    )


async def handle_photo(request: web.Request) -> web.StreamResponse:
    """``GET /console/problems/{id}/photos/{photo}``: one of the problem's photos, from the content-addressed
    files under the data directory. The file is found from the stored row (never from the URL), so no path
    can be asked for; an unknown photo, or a row whose file is gone, is a 404."""
    bot = bot_of(request)
    problem = await _problem(request)
    assert problem.id is not None
    wanted = _number(request.match_info["photo"])
    photo = next(
        (p for p in await PhotoRepo(bot.store.sessions).of_problem(problem.id) if p.id == wanted), None
    )
    if photo is None or not SHA256.match(photo.sha256) or photo.mime not in EXTENSIONS:
        raise Refused("没有这张照片。", status=404)
    root = bot.settings.effective_data_dir / "media"
    path = MediaFiles(root).path_of(photo.sha256, photo.mime)
    if not path.is_file():
        raise Refused("照片文件已不在服务器上。", status=404)
    return web.FileResponse(
        path,
        headers={
            "Content-Type": photo.mime,
            "Cache-Control": "private, max-age=86400",  # content-addressed: the bytes never change
            "X-Content-Type-Options": "nosniff",
        },
    )


def _back(problem: Problem, notice: str) -> web.Response:
    return redirect(f"/console/problems/{problem.id}?{urlencode({'done': notice})}")


def add_routes(console: web.Application) -> None:
    """Mount the problem pages."""
    console.router.add_get("/problems", handle_board, name="problems")
    console.router.add_get("/problems/{id}", handle_problem, name="problem")
    console.router.add_get("/problems/{id}/photos/{photo}", handle_photo, name="problem-photo")
    console.router.add_post("/problems/{id}/close", handle_close, name="problem-close")
    console.router.add_post("/problems/{id}/reopen", handle_reopen, name="problem-reopen")
    console.router.add_post("/problems/{id}/transfer", handle_transfer, name="problem-transfer")
