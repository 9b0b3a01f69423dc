"""Console pages of the funding ledger (经费台账), for alliance leads and admins: an alliance's year (income by
source, spending by category against its budgets, every line), an entry form, budgets, and a spreadsheet import
with a row-numbered preview before anything is written.

Every write goes through ``FundService`` exactly as ``/经费`` does (the same refusals: categories, budgets, the
admin's override) and is audited there. A form carries a one-off nonce, the console's message key: a form sent
twice (a double click, a reload) records once, as a chat message delivered twice does."""

from __future__ import annotations

import base64
import binascii
import secrets
import tempfile
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.channels.web.auth import Refused, Viewer, bot_of, page, redirect, require
from bot.core.dispatcher import Role
from bot.services.achievements.spreadsheet import ImportFileError
from bot.services.funds import (
    IMPORT_HEADER,
    INCOME_SOURCES,
    SPENDING_CATEGORIES,
    FundService,
    Ledger,
    Refusal,
    entry_label,
    import_file,
    now_date,
    parse_day,
    parse_yuan,
)
from bot.store.funds import EntryKind
from bot.store.studios import Alliance

MAX_UPLOAD = 256 * 1024  # bytes of a ledger spreadsheet (thousands of rows; the preview posts it back)
LINKS = {"activity": "活动", "topic": "课题", "award": "奖励"}
WHAT = "经费台账"


def nonce() -> str:
    """A fresh form nonce."""
    return secrets.token_urlsafe(16)


def form_key(viewer: Viewer, value: str, what: str) -> str:
    """The message key of a console form: one per viewer and nonce, so a second submission is the same one."""
    value = value.strip()
    if not (8 <= len(value) <= 64 and value.isascii()):
        raise Refused("表单已失效，请刷新页面后重新填写。", status=400)
    return f"console:{what}:{viewer.user_id}:{value}"


def _year(request: web.Request, raw: Any) -> int:
    text = str(raw or "").strip()
    if text.isdigit() and 1980 <= int(text) <= 2100:
        return int(text)
    return bot_of(request).runtime.local_now().year


async def _scope(request: web.Request, alliance_word: str, year: int) -> tuple[Viewer, list[Alliance], Alliance]:
    """The viewer, the alliances they keep, and the one asked for (their first by default)."""
    viewer = require(request, Role.ALLIANCE_LEAD, WHAT)
    service = bot_of(request).runtime.feature(FundService)
    every = await bot_of(request).store.alliances.all()
    kept = [a for a in every if service.may_keep(viewer.caller, a.id)]
    if not kept:
        raise Refused("您还不是任何联盟的负责人，无法查看经费台账。")
    if not alliance_word:
        return viewer, kept, kept[0]
    try:
        alliance = await service.alliance_for(viewer.caller, alliance_word)
    except Refusal as exc:
        raise Refused(str(exc)) from None
    return viewer, kept, alliance


def _spending_rows(ledger: Ledger) -> list[dict[str, Any]]:
    rows = []
    for category, spent in ledger.spending_by_category().items():
        budget = ledger.budgets.get(category)
        rows.append(
            {
                "category": category,
                "spent": spent,
                "budget": budget,
                "rate": f"{spent / budget:.0%}" if budget else "—",
                "left": budget - spent if budget is not None else None,
                "over": budget is not None and spent > budget,
            }
        )
    return rows


async def _render(
    request: web.Request,
    alliance_word: str,
    year: int,
    *,
    error: str = "",
    form: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> web.Response:
    viewer, kept, alliance = await _scope(request, alliance_word, year)
    bot = bot_of(request)
    ledger = await bot.runtime.feature(FundService).ledger(alliance, year)
    lines = sorted(ledger.lines, key=lambda item: (item.on or date(year, 12, 31), item.entry_id or 0))
    values = {
        "kind": "spending",
        "category": "",
        "amount": "",
        "on": now_date(bot.runtime).isoformat(),
        "note": "",
        "link_kind": "",
        "link_id": "",
        "override_reason": "",
        "nonce": nonce(),
        **(form or {}),
    }
    return page(
        request,
        "funds.html",
        {
            "active": "funds",
            "alliance": alliance,
            "alliances": kept,
            "year": year,
            "ledger": ledger,
            "income": ledger.income_by_source(),
            "spending": _spending_rows(ledger),
            "lines": lines,
            "sources": INCOME_SOURCES,
            "categories": SPENDING_CATEGORIES,
            "links": LINKS,
            "is_admin": viewer.at_least(Role.ADMIN),
            "form": values,
            "override": bool(form and form.get("override")),
            "error": error,
            "notice": notice or request.query.get("done", ""),
            "header": "、".join(IMPORT_HEADER) + "、备注（可省略）",
        },
        status=status,
    )


async def handle_funds(request: web.Request) -> web.Response:
    """``GET /console/funds?alliance=&year=``: an alliance's ledger for a year, with the forms."""
    return await _render(request, request.query.get("alliance", ""), _year(request, request.query.get("year")))


def _back(alliance: Alliance, year: int, notice: str) -> web.Response:
    return redirect(f"/console/funds?{urlencode({'alliance': alliance.id, 'year': year, 'done': notice})}")


def _link(form: dict[str, str]) -> dict[str, int | None]:
    kind, raw = form.get("link_kind", ""), form.get("link_id", "").strip().upper().removeprefix("T-")
    raw = raw.lstrip("#")
    links: dict[str, int | None] = {"activity_id": None, "topic_id": None, "award_id": None}
    if not kind:
        return links
    if kind not in LINKS:
        raise ValueError("关联类型只能是活动、课题或奖励")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise ValueError(f"请写关联{LINKS[kind]}的编号（数字）")
    links[f"{kind}_id"] = int(raw)
    return links


async def handle_entry(request: web.Request) -> web.Response:
    """``POST /console/funds/entry``: record income or spending by the chat's rules, once per form."""
    form = {k: str(v) for k, v in (await request.post()).items() if k != "csrf"}
    year = _year(request, form.get("year"))
    viewer, _, alliance = await _scope(request, form.get("alliance", ""), year)
    key = form_key(viewer, form.get("nonce", ""), "funds")
    bot = bot_of(request)
    service = bot.runtime.feature(FundService)
    kind = EntryKind.INCOME if form.get("kind") == "income" else EntryKind.SPENDING
    override = ""
    if form.get("override"):
        override = form.get("override_reason", "").strip()[:200] or "管理员特批"
    try:
        amount_word = form.get("amount", "").strip()
        if not amount_word:
            raise ValueError("请写明金额，例如 8000 或 2万")
        amount = parse_yuan(amount_word)
        day = parse_day(form.get("on", "").strip(), today=now_date(bot.runtime)) if form.get("on") else None
        if day is None:
            raise ValueError("请写日期，例如 2026-03-05")
        if not form.get("category", "").strip():
            raise ValueError("请写来源或类别")
        recorded = await service.record(
            viewer.caller,
            alliance=alliance,
            kind=kind,
            category_word=form.get("category", "").strip(),
            amount=amount,
            on=day,
            note=form.get("note", "").strip(),
            override=override,
            message_key=key,
            source="console",
            **_link(form),
        )
    except (Refusal, ValueError) as exc:
        message = str(exc).rstrip("。") + "。"
        return await _render(request, alliance.id, year, error=message, form=form, status=400)
    entry = recorded.entry
    notice = f"已登记{alliance.name}{entry_label(entry)}" + (f"：{entry.note}" if entry.note else "")
    if recorded.warning:
        notice += f"。{recorded.warning}"
    return _back(alliance, entry.year, notice)


async def handle_budget(request: web.Request) -> web.Response:
    """``POST /console/funds/budget``: set a category's budget for the year (as ``/经费 预算``)."""
    form = {k: str(v) for k, v in (await request.post()).items() if k != "csrf"}
    year = _year(request, form.get("year"))
    viewer, _, alliance = await _scope(request, form.get("alliance", ""), year)
    service = bot_of(request).runtime.feature(FundService)
    try:
        amount = parse_yuan(form.get("amount", "").strip())
        category = form.get("category", "").strip()
        ledger = await service.ledger(alliance, year)
        if ledger.budgets.get(category) == amount:  # a form sent twice: one change, one audit entry
            return _back(alliance, year, f"{year}年「{category}」预算已是 {amount:,} 元，未修改。")
        name, before, after = await service.set_budget(
            viewer.caller, alliance=alliance, year=year, category_word=category, amount=amount
        )
    except (Refusal, ValueError) as exc:
        return await _render(request, alliance.id, year, error=str(exc).rstrip("。") + "。", status=400)
    change = "设为" if before is None else f"由 {before:,} 元改为"
    return _back(alliance, year, f"{alliance.name}{year}年「{name}」预算{change} {after:,} 元。")


async def _upload(request: web.Request) -> tuple[dict[str, str], bytes, str]:
    """The fields and the file of the import form (multipart)."""
    if not request.content_type.startswith("multipart/"):
        raise Refused("请通过页面上的表单上传经费表格。", status=400)
    reader = await request.multipart()
    fields: dict[str, str] = {}
    data, name = bytearray(), ""
    while (part := await reader.next()) is not None:
        field = getattr(part, "name", None) or ""
        if field == "ledger":
            name = getattr(part, "filename", None) or ""
            while chunk := await part.read_chunk():  # type: ignore[union-attr]
                data.extend(chunk)
                if len(data) > MAX_UPLOAD:
                    raise Refused(f"文件太大（超过 {MAX_UPLOAD // 1024} KB）。", status=413)
        elif field:
            fields[field] = (await part.text())[:1000]  # type: ignore[union-attr]
    if not data:
        raise Refused("没有收到文件，请选择 .xlsx 或 .csv 文件后再上传。", status=400)
    return fields, bytes(data), name


async def _check(
    request: web.Request, viewer: Viewer, data: bytes, name: str, *, override: str, apply: bool, key: str | None
) -> Any:
    suffix = Path(name).suffix.lower()
    if suffix not in (".xlsx", ".xlsm", ".csv"):
        raise Refused(f"不支持的文件类型「{suffix or name}」，请用 .xlsx 或 .csv。", status=400)
    bot = bot_of(request)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return await import_file(
                bot.runtime,
                path,
                actor=viewer.user_id,
                override=override,
                caller=viewer.caller,
                apply=apply,
                key=key,
                source="console",
            )
        except ImportFileError as exc:
            raise Refused(f"无法读取文件：{exc}", status=400) from None
        except Refusal as exc:
            raise Refused(str(exc)) from None
        except Exception as exc:  # a damaged workbook: openpyxl raises many kinds
            raise Refused(f"无法读取文件「{name}」：不是有效的 .xlsx 或 .csv（{type(exc).__name__}）。", status=400) from None


def _override(viewer: Viewer, ticked: bool, reason: str) -> str:
    """An admin's override reason when the box is ticked; a non-admin's tick is refused."""
    if not ticked:
        return ""
    if not viewer.at_least(Role.ADMIN):
        raise Refused("只有管理员可以特批超范围或超预算的支出。")
    return reason.strip()[:200] or "管理员特批"


async def handle_import(request: web.Request) -> web.Response:
    """``POST /console/funds/import``: check an uploaded spreadsheet and show every row, or every bad row by
    number; nothing is written yet."""
    viewer = require(request, Role.ALLIANCE_LEAD, WHAT)
    fields, data, name = await _upload(request)
    override = _override(viewer, bool(fields.get("override")), fields.get("override_reason", ""))
    result = await _check(request, viewer, data, name, override=override, apply=False, key=None)
    alliances = {a.id: a.name for a in await bot_of(request).store.alliances.all()}
    return page(
        request,
        "funds_import.html",
        {
            "active": "funds",
            "name": name,
            "result": result,
            "alliances": alliances,
            "content": base64.b64encode(data).decode("ascii"),
            "override": override,
            "nonce": nonce(),
            "back": fields.get("alliance", ""),
        },
        status=400 if result.errors else 200,
    )


async def handle_apply(request: web.Request) -> web.Response:
    """``POST /console/funds/import/apply``: import the previewed file (all or nothing, once per preview)."""
    viewer = require(request, Role.ALLIANCE_LEAD, WHAT)
    form = {k: str(v) for k, v in (await request.post()).items() if k != "csrf"}
    key = form_key(viewer, form.get("nonce", ""), "funds-import")
    try:
        data = base64.b64decode(form.get("content", ""), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("上传内容已损坏，请重新上传。", status=400) from None
    if not data or len(data) > MAX_UPLOAD:
        raise Refused("上传内容为空或太大，请重新上传。", status=400)
    override = _override(viewer, bool(form.get("override")), form.get("override", ""))
    name = form.get("name", "")
    result = await _check(request, viewer, data, name, override=override, apply=True, key=key)
    if result.errors:
        alliances = {a.id: a.name for a in await bot_of(request).store.alliances.all()}
        context = {"active": "funds", "name": name, "result": result, "alliances": alliances}
        extra = {"content": "", "override": override, "nonce": "", "back": ""}
        return page(request, "funds_import.html", {**context, **extra}, status=400)
    if result.already:
        notice = f"「{name}」已经导入过了（{len(result.rows)} 笔），没有重复导入。"
    else:
        notice = f"导入完成：「{name}」新增经费记录 {result.added} 笔。"
    first = result.rows[0][1] if result.rows else None
    query = {"done": notice}
    if first is not None:
        query |= {"alliance": first.alliance_id, "year": str(first.year)}
    return redirect(f"/console/funds?{urlencode(query)}")


def add_routes(console: web.Application) -> None:
    """Mount the ledger pages."""
    console.router.add_get("/funds", handle_funds, name="funds")
    console.router.add_post("/funds/entry", handle_entry, name="funds-entry")
    console.router.add_post("/funds/budget", handle_budget, name="funds-budget")
    console.router.add_post("/funds/import", handle_import, name="funds-upload")
    console.router.add_post("/funds/import/apply", handle_apply, name="funds-apply")
