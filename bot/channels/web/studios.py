"""Console pages of the roster: studios by alliance (type, stars, lead, current load), editing a studio, and
uploading a roster YAML with a validation preview before it is applied (the import ``alliance-bot studios
import`` runs)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.channels.web.auth import Refused, bot_of, page, redirect, viewer_of
from bot.services.problems import ProblemService
from bot.services.studios import (
    STUDIO_TYPES,
    RosterError,
    edit_studio,
    kept_stars_text,
    parse_roster_text,
    preview_roster,
    roster_import_refusal,
    studio_edit_refusal,
)
from bot.store.audit import AuditRepo
from bot.store.studios import Studio

MAX_ROSTER = 2 * 1024 * 1024  # bytes of an uploaded roster (161 studios are about 150 KB)


async def handle_studios(request: web.Request) -> web.Response:
    """``GET /console/studios``: the roster by alliance with each studio's current load."""
    bot = bot_of(request)
    viewer = viewer_of(request)
    alliances = await bot.store.alliances.all()
    studios = await bot.store.studios.all()
    load = await bot.runtime.feature(ProblemService).repo.load()
    by_alliance = {a.id: [s for s in studios if s.alliance_id == a.id] for a in alliances}
    return page(
        request,
        "studios.html",
        {
            "active": "studios",
            "alliances": alliances,
            "by_alliance": by_alliance,
            "load": load,
            "editable": {s.id for s in studios if studio_edit_refusal(viewer.caller, s) is None},
            "may_import": roster_import_refusal(viewer.caller) is None,
            "total": len(studios),
            "notice": request.query.get("done", ""),
        },
    )


async def _studio_for_edit(request: web.Request) -> tuple[Any, Studio]:
    bot = bot_of(request)
    studio = await bot.store.studios.get(request.match_info["id"])
    if studio is None:
        raise Refused("没有这个工作室。", status=404)
    refusal = studio_edit_refusal(viewer_of(request).caller, studio)
    if refusal:
        raise Refused(refusal)
    return bot, studio


async def handle_edit_form(request: web.Request) -> web.Response:
    """``GET /console/studios/{id}``: a studio's fields in a form, with its change history."""
    bot, studio = await _studio_for_edit(request)
    history = await AuditRepo(bot.store.sessions).history("studio", studio.id)
    return page(
        request,
        "studio.html",
        {
            "active": "studios",
            "studio": studio,
            "types": STUDIO_TYPES,
            "history": list(reversed(history)),
            "error": "",
            "notice": request.query.get("done", ""),
        },
    )


async def handle_edit(request: web.Request) -> web.StreamResponse:
    """``POST /console/studios/{id}``: validate as the roster would, save with an audit entry."""
    bot, studio = await _studio_for_edit(request)
    form = {k: str(v) for k, v in (await request.post()).items() if k != "csrf"}
    try:
        changed = await edit_studio(bot.store, studio, form, actor=viewer_of(request).user_id)
    except RosterError as exc:
        history = await AuditRepo(bot.store.sessions).history("studio", studio.id)
        context = {"active": "studios", "studio": studio, "types": STUDIO_TYPES, "history": history}
        return page(request, "studio.html", {**context, "error": str(exc), "notice": ""}, status=400)
    notice = f"已保存：{len(changed)} 项修改。" if changed else "没有修改。"
    return redirect(f"/console/studios/{studio.id}?{urlencode({'done': notice})}")


async def _read_upload(request: web.Request) -> tuple[str, str, bool]:
    """The uploaded roster's text and file name (a file field ``roster``, or the text of a form field), and
    whether the form's 「以名册星级为准」 is ticked (``override_stars``)."""
    if not request.content_type.startswith("multipart/"):
        raise Refused("请通过页面上的表单上传花名册文件。", status=400)
    reader = await request.multipart()
    text, name, override_stars = "", "", False
    while (part := await reader.next()) is not None:
        if getattr(part, "name", None) == "override_stars":
            value = await part.read_chunk()  # type: ignore[union-attr]  # a tick box ("1"): one chunk is plenty
            override_stars = value.strip() not in (b"", b"0")
            continue
        if getattr(part, "name", None) not in ("roster", "roster_text"):
            continue
        data = bytearray()
        while chunk := await part.read_chunk():  # type: ignore[union-attr]
            data.extend(chunk)
            if len(data) > MAX_ROSTER:
                raise Refused(f"花名册文件太大（超过 {MAX_ROSTER // 1024 // 1024} MB）。", status=413)
        if data:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise Refused("花名册文件不是 UTF-8 编码的文本。", status=400) from None
            name = getattr(part, "filename", None) or name
    if not text.strip():
        raise Refused("没有收到花名册内容，请选择 YAML 文件后再上传。", status=400)
    return text, name or "花名册", override_stars


async def handle_upload(request: web.Request) -> web.Response:
    """``POST /console/studios/import``: validate the upload and show what importing it would change."""
    bot = bot_of(request)
    refusal = roster_import_refusal(viewer_of(request).caller)
    if refusal:
        raise Refused(refusal)
    text, name, _override = await _read_upload(request)
    try:
        roster = await asyncio.to_thread(parse_roster_text, text)  # YAML of 161 studios: ~100 ms of CPU
    except RosterError as exc:
        return page(
            request,
            "roster.html",
            {"active": "studios", "error": str(exc), "name": name, "preview": None},
            status=400,
        )
    preview = await preview_roster(bot.store, roster)
    return page(
        request,
        "roster.html",
        {
            "active": "studios",
            "error": "",
            "name": name,
            "preview": preview,
            "roster": roster,
            "text": text,
            "kept_text": kept_stars_text,
        },
    )


async def handle_apply(request: web.Request) -> web.StreamResponse:
    """``POST /console/studios/import/apply``: import the previewed roster (all or nothing), audited."""
    bot = bot_of(request)
    viewer = viewer_of(request)
    refusal = roster_import_refusal(viewer.caller)
    if refusal:
        raise Refused(refusal)
    text, name, override_stars = await _read_upload(request)
    try:
        roster = await asyncio.to_thread(parse_roster_text, text)  # YAML of 161 studios: ~100 ms of CPU
    except RosterError as exc:
        raise Refused(str(exc), status=400) from None
    result = await bot.store.studios.import_roster(
        roster, actor=viewer.user_id, override_stars=override_stars, at=bot.runtime.clock.now()
    )
    summary = (
        f"导入完成：联盟 新增 {result.alliances_created}、更新 {result.alliances_updated}；"
        f"工作室 新增 {result.studios_created}、更新 {result.studios_updated}；未变 {result.unchanged}"
    )
    if result.kept_stars:
        summary += "；" + "；".join(kept_stars_text(k) for k in result.kept_stars)
    if result.stars_changed:
        summary += f"；星级按名册变更 {result.stars_changed} 个工作室（已记入星级历史）"
    await AuditRepo(bot.store.sessions).record(
        entity="roster",
        entity_id=name[:64],
        action="import",
        actor=viewer.user_id,
        source="console",
        after={"alliances": len(roster.alliances), "studios": len(roster.studios), "result": summary},
    )
    return redirect(f"/console/studios?{urlencode({'done': summary})}")


def add_routes(console: web.Application) -> None:
    """Mount the roster pages."""
    console.router.add_get("/studios", handle_studios, name="studios")
    console.router.add_post("/studios/import", handle_upload, name="studios-upload")
    console.router.add_post("/studios/import/apply", handle_apply, name="studios-apply")
    console.router.add_get("/studios/{id}", handle_edit_form, name="studio")
    console.router.add_post("/studios/{id}", handle_edit, name="studio-edit")
