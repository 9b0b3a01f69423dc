"""Console page of talent development (人才培养): the ``/人才`` figures per alliance and for a studio, the year's
mentorships (名师带徒) and titles (称号荣誉), and — for alliance leads and admins — forms that record a mentorship
or a title through ``TalentService`` as ``/人才 带徒`` and ``/人才 称号`` do, once per form (its nonce)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.channels.web.auth import bot_of, page, redirect, require, viewer_of
from bot.channels.web.funds import form_key, nonce
from bot.core.dispatcher import Role
from bot.services.funds import Refusal, now_date, parse_day
from bot.services.studios import display_names
from bot.services.talent import GRADES, TITLES, TalentService
from bot.store.talent import TalentRepo


def _year(request: web.Request, raw: Any) -> int:
    text = str(raw or "").strip()
    if text.isdigit() and 1980 <= int(text) <= 2100:
        return int(text)
    return bot_of(request).runtime.local_now().year


async def _render(
    request: web.Request,
    year: int,
    studio_id: str,
    *,
    error: str = "",
    form: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    bot = bot_of(request)
    viewer = viewer_of(request)
    service = bot.runtime.feature(TalentService)
    alliances = await bot.store.alliances.all()
    studios = {s.id: s for s in await bot.store.studios.all()}
    studio = studios.get(studio_id) if studio_id else None
    rows = []
    for alliance in alliances:
        figures = await service.figures(year=year, alliance_id=alliance.id)
        rows.append({"name": alliance.name, "figures": figures, "grades": figures.by_grade()})
    total = await service.figures(year=year)
    rows.append({"name": "全部联盟", "figures": total, "grades": total.by_grade()})
    studio_figures = await service.figures(year=year, studio_id=studio.id) if studio else None
    repo = TalentRepo(bot.store.sessions)
    mentorships = [
        m
        for m in await repo.mentorships()
        if m.started_on.year <= year
        and (m.ended_on is None or m.ended_on.year >= year)
        and (studio is None or m.studio_id == studio.id)
    ]
    honours = [
        h for h in await repo.honours() if h.on.year == year and (studio is None or h.studio_id == studio.id)
    ]
    people = {p for m in mentorships for p in (m.master, m.apprentice)} | {h.person for h in honours}
    names = await display_names(bot.store, sorted(people))
    may_record = viewer.at_least(Role.ALLIANCE_LEAD)
    recordable = [s for s in studios.values() if service.may_record(viewer.caller, s)]
    values = {
        "master": "",
        "apprentice": "",
        "studio": studio.id if studio else "",
        "started_on": now_date(bot.runtime).isoformat(),
        "goal": "",
        "person": "",
        "title": "",
        "on": now_date(bot.runtime).isoformat(),
        "evidence": "",
        "nonce": nonce(),
        **(form or {}),
    }
    return page(
        request,
        "talent.html",
        {
            "active": "talent",
            "year": year,
            "rows": rows,
            "grades": GRADES,
            "titles": list(TITLES),
            "studio": studio,
            "studio_figures": studio_figures,
            "studios": studios,
            "mentorships": mentorships,
            "honours": honours,
            "names": names,
            "may_record": may_record,
            "recordable": recordable,
            "form": values,
            "error": error,
            "notice": request.query.get("done", ""),
        },
        status=status,
    )


async def handle_talent(request: web.Request) -> web.Response:
    """``GET /console/talent?year=&studio=``: the year's figures, mentorships and titles."""
    return await _render(request, _year(request, request.query.get("year")), request.query.get("studio", ""))


async def _form(request: web.Request) -> dict[str, str]:
    require(request, Role.ALLIANCE_LEAD, "登记名师带徒和称号")
    return {k: str(v).strip() for k, v in (await request.post()).items() if k != "csrf"}


def _back(year: int, notice: str) -> web.Response:
    return redirect(f"/console/talent?{urlencode({'year': year, 'done': notice})}")


async def handle_mentorship(request: web.Request) -> web.Response:
    """``POST /console/talent/mentorship``: record a mentorship (master, apprentice, studio, start, goal)."""
    form = await _form(request)
    viewer = viewer_of(request)
    key = form_key(viewer, form.get("nonce", ""), "mentorship")
    bot = bot_of(request)
    service = bot.runtime.feature(TalentService)
    year = _year(request, form.get("year"))
    try:
        if not form.get("master") or not form.get("apprentice"):
            raise ValueError("请写师傅和徒弟（姓名或企业微信账号）")
        master, apprentice = await service.resolve_people(
            [form["master"], form["apprentice"]], unique=False
        )
        studio = await bot.store.studios.get(form.get("studio", ""))
        if studio is None:
            raise ValueError("请选择工作室")
        day = parse_day(form.get("started_on", ""), today=now_date(bot.runtime))
        if day is None:
            raise ValueError("请写开始日期，例如 2026-03-05")
        mentorship = await service.add_mentorship(
            viewer.caller,
            master=master,
            apprentice=apprentice,
            studio=studio,
            started_on=day,
            goal=form.get("goal", "")[:500],
            message_key=key,
        )
    except (Refusal, ValueError) as exc:
        return await _render(request, year, "", error=str(exc).rstrip("。") + "。", form=form, status=400)
    names = await display_names(bot.store, [mentorship.master, mentorship.apprentice])
    notice = (
        f"已登记名师带徒 #{mentorship.id}：{studio.name} 师傅 {names[mentorship.master]}、"
        f"徒弟 {names[mentorship.apprentice]}，{mentorship.started_on.isoformat()} 起。"
    )
    return _back(year, notice)


async def handle_honour(request: web.Request) -> web.Response:
    """``POST /console/talent/honour``: record a title or honour with its date, studio and evidence."""
    form = await _form(request)
    viewer = viewer_of(request)
    key = form_key(viewer, form.get("nonce", ""), "honour")
    bot = bot_of(request)
    service = bot.runtime.feature(TalentService)
    year = _year(request, form.get("year"))
    try:
        if not form.get("person"):
            raise ValueError("请写姓名或企业微信账号")
        (person,) = await service.resolve_people([form["person"]])
        studio = await bot.store.studios.get(form["studio"]) if form.get("studio") else None
        if form.get("studio") and studio is None:
            raise ValueError("没有这个工作室")
        day = parse_day(form.get("on", ""), today=now_date(bot.runtime))
        if day is None:
            raise ValueError("请写获得日期，例如 2026-05-01")
        honour = await service.add_honour(
            viewer.caller,
            person=person,
            title_word=form.get("title", ""),
            on=day,
            studio=studio,
            alliance_id=None,
            evidence=form.get("evidence", "")[:500],
            message_key=key,
        )
    except (Refusal, ValueError) as exc:
        return await _render(request, year, "", error=str(exc).rstrip("。") + "。", form=form, status=400)
    name = (await display_names(bot.store, [honour.person]))[honour.person]
    return _back(year, f"已登记：{name} {honour.on.isoformat()} 获「{honour.title}」（{honour.grade}）。")


def add_routes(console: web.Application) -> None:
    """Mount the talent page and its forms."""
    console.router.add_get("/talent", handle_talent, name="talent")
    console.router.add_post("/talent/mentorship", handle_mentorship, name="talent-mentorship")
    console.router.add_post("/talent/honour", handle_honour, name="talent-honour")


