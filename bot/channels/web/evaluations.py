"""Console pages of evaluation rounds (评选): the list of rounds, a round's page (kind, scope, criteria with
weights, panel, deadlines, nominees, each panel member's progress, conflicts of interest, results after the
close) and forms that open a round, nominate, score and close — through ``EvaluationService``, the methods
``/评选`` calls, with the same role checks.

Every form carries a nonce; the step's key is built from it the way the chat path builds one from the message
id, so a double submit (or a browser's retry) opens, nominates, scores or closes exactly once."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.channels.web.auth import Refused, Viewer, bot_of, page, redirect, viewer_of
from bot.core.dispatcher import Forbidden, Role, UserError, fold
from bot.services.achievements.amounts import parse_amount
from bot.services.activities.dates import WhenError, read_when
from bot.services.evaluations import (
    STAR_WORDS,
    EvaluationService,
    Kind,
    criteria_text,
    panel_members,
    parse_criteria,
    round_label,
)
from bot.store.evaluations import OPEN, EvaluationRound

RESULTS = {"winner": "入选", "not_selected": "未入选", "unscored": "无人评分"}
MAX_FIELD = 500  # characters of one form field


def nonce() -> str:
    """A fresh form nonce: the key of the step the form's submit causes."""
    return secrets.token_urlsafe(12)


def step_key(viewer: Viewer, form: dict[str, str], step: str) -> str:
    """The step's key from the form's nonce (as ``message_key`` does from a chat message's id)."""
    value = form.get("nonce", "")
    if (
        not value
        or len(value) > 64
        or not value.isascii()
        or not value.replace("-", "").replace("_", "").isalnum()
    ):
        raise Refused("表单缺少校验码，请刷新页面后重新提交。", status=400)
    return f"console:{viewer.user_id}:{value}:{step}"


def service_of(request: web.Request) -> EvaluationService:
    """The evaluations service."""
    service: EvaluationService = bot_of(request).runtime.feature(EvaluationService)
    return service


async def _form(request: web.Request) -> dict[str, str]:
    form = {k: str(v).strip() for k, v in (await request.post()).items() if k != "csrf"}
    if any(len(v) > MAX_FIELD for v in form.values()):
        raise Refused(f"每一项请不超过 {MAX_FIELD} 字。", status=400)
    return form


async def _round(request: web.Request) -> EvaluationRound:
    raw = request.match_info["id"]
    valid = raw.isascii() and raw.isdigit() and len(raw) <= 9
    evaluation = await service_of(request).repo.round(int(raw)) if valid else None
    if evaluation is None:
        raise Refused("没有这一轮评选。", status=404)
    return evaluation


def _back(round_id: int, notice: str) -> web.Response:
    return redirect(f"/console/evaluations/{round_id}?{urlencode({'done': notice})}")


def _state(evaluation: EvaluationRound) -> str:
    return "进行中" if evaluation.state == OPEN else "已结束"


async def _scope(request: web.Request, evaluation: EvaluationRound) -> str:
    if evaluation.alliance_id is None:
        return "全部联盟"
    alliance = await bot_of(request).store.alliances.get(evaluation.alliance_id)
    return alliance.name if alliance else evaluation.alliance_id


async def handle_rounds(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    """``GET /console/evaluations``: every round, newest first, and the form that opens one."""
    bot = bot_of(request)
    service = service_of(request)
    viewer = viewer_of(request)
    rounds = await service.repo.rounds()
    alliances = await bot.store.alliances.all()
    may_open = viewer.at_least(Role.ALLIANCE_LEAD)
    scopes = [
        {"id": a.id, "name": a.name}
        for a in alliances
        if viewer.at_least(Role.ADMIN) or a.id in viewer.caller.alliances
    ]
    rows = []
    for evaluation in rounds:
        rows.append(
            {
                "round": evaluation,
                "label": round_label(evaluation),
                "state": _state(evaluation),
                "scope": await _scope(request, evaluation),
                "nominees": len(await service.repo.nominees(evaluation.id)),
            }
        )
    return page(
        request,
        "evaluations.html",
        {
            "active": "evaluations",
            "rows": rows,
            "may_open": may_open,
            "may_open_all": viewer.at_least(Role.ADMIN),
            "scopes": scopes,
            "kinds": list(Kind),
            "nonce": nonce(),
            "error": error,
            "notice": request.query.get("done", ""),
        },
        status=status,
    )


async def handle_round(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    """``GET /console/evaluations/{id}``: the round, its nominees, the panel's progress and the results."""
    bot = bot_of(request)
    service = service_of(request)
    viewer = viewer_of(request)
    evaluation = await _round(request)
    assert evaluation.id is not None
    studios = await service.studios()
    names = await service.names(evaluation.panel)
    scores = await service.repo.scores(evaluation.id)
    scored = {(s.panelist, s.nominee_id): s for s in scores}
    standings = await service.standings(evaluation)
    is_open = evaluation.state == OPEN
    nominees: list[dict[str, Any]] = []
    nominee_ids: list[int] = []
    awards = {a.id: a.amount for a in await service.achievements.awards()}
    conflicts: dict[str, list[int]] = {p: [] for p in evaluation.panel}
    for standing in standings if not is_open else sorted(standings, key=lambda s: s.nominee.id or 0):
        nominee = standing.nominee
        conflicted = [p for p in evaluation.panel if await service.conflicted(p, nominee)]
        for member in conflicted:
            conflicts[member].append(nominee.id or 0)
        nominee_ids.append(nominee.id or 0)
        mine = scored.get((viewer.user_id, nominee.id or 0))
        nominees.append(
            {
                "nominee": nominee,
                "label": await service.nominee_label(nominee, studios),
                "scored": standing.scored,
                "so_far": standing.score,
                "conflicted": [names[p] for p in conflicted],
                "me_conflicted": viewer.user_id in conflicted,
                "mine": mine,
                "result": RESULTS.get(nominee.result, ""),
                "award": awards.get(nominee.award_id) if nominee.award_id is not None else None,
            }
        )
    progress = []
    for member in evaluation.panel:
        done = sum(1 for n in nominee_ids if (member, n) in scored)
        progress.append(
            {
                "name": names[member],
                "user_id": member,
                "done": done,
                "due": len(nominee_ids) - len(conflicts[member]),
                "conflicts": conflicts[member],
            }
        )
    now = bot.clock.now()
    kind = Kind(evaluation.kind)
    own = [
        s
        for s in studios.values()
        if viewer.at_least(Role.ADMIN)
        or s.id in viewer.caller.studios
        or s.alliance_id in viewer.caller.alliances
    ]
    if evaluation.alliance_id is not None:
        own = [s for s in own if s.alliance_id == evaluation.alliance_id]
    may_close = is_open and _close_refusal(viewer, evaluation) is None
    return page(
        request,
        "evaluation.html",
        {
            "active": "evaluations",
            "evaluation": evaluation,
            "label": round_label(evaluation),
            "state": _state(evaluation),
            "scope": await _scope(request, evaluation),
            "criteria": criteria_text(evaluation),
            "weights": _weights(evaluation),
            "panel": [names[p] for p in evaluation.panel],
            "nominate_until": service.when(evaluation.nominate_until),
            "score_until": service.when(evaluation.score_until),
            "nominees": nominees,
            "progress": progress,
            "is_open": is_open,
            "may_nominate": is_open
            and now < evaluation.nominate_until
            and viewer.at_least(Role.STUDIO_LEAD)
            and bool(own),
            "nominate_studios": own,
            "achievement_round": kind is Kind.ACHIEVEMENT,
            "star_round": kind is Kind.STARS,
            "star_words": STAR_WORDS,
            "may_score": is_open and now < evaluation.score_until and viewer.user_id in evaluation.panel,
            "may_close": may_close,
            "closed_by": (await service.names([evaluation.closed_by]))[evaluation.closed_by]
            if evaluation.closed_by
            else "",
            "nonce": nonce(),
            "error": error,
            "notice": request.query.get("done", ""),
        },
        status=status,
    )


def _weights(evaluation: EvaluationRound) -> list[dict[str, Any]]:
    total = sum(float(c["weight"]) for c in evaluation.criteria) or 1.0
    return [
        {"name": str(c["name"]), "weight": float(c["weight"]), "share": float(c["weight"]) * 100 / total}
        for c in evaluation.criteria
    ]


def _close_refusal(viewer: Viewer, evaluation: EvaluationRound) -> str | None:
    """The service's rule for who may close a round (shown before a click; the service checks it again)."""
    caller = viewer.caller
    if (
        caller.at_least(Role.ADMIN)
        or caller.user_id == evaluation.created_by
        or (evaluation.alliance_id is not None and evaluation.alliance_id in caller.alliances)
    ):
        return None
    return "只有发起人、本联盟负责人或管理员可以结束评选。"


def _deadline(text: str, now: datetime, what: str) -> datetime:
    """A deadline from a ``datetime-local`` field (``2026-12-10T18:00``), a date, or the chat's words."""
    if not text:
        raise UserError(f"请填写{what}。")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            match = read_when(text, now=now)
        except WhenError as exc:
            raise UserError(f"{what}：{exc}") from None
        return match.start if match.has_time else match.start.replace(hour=23, minute=59)
    if value.tzinfo is None:
        value = value.replace(tzinfo=now.tzinfo)
    if "T" not in text and " " not in text:  # a date alone is the whole of that day
        value = value.replace(hour=23, minute=59)
    return value


def _whole(text: str, what: str, *, default: int | None) -> int | None:
    if not text:
        return default
    folded = fold(text)
    if not folded.isdigit() or len(folded) > 9:
        raise UserError(f"{what}请写整数。")
    return int(folded)


async def handle_open(request: web.Request) -> web.StreamResponse:
    """``POST /console/evaluations``: as ``/评选 发起 …``."""
    bot = bot_of(request)
    viewer = viewer_of(request)
    if not viewer.at_least(Role.ALLIANCE_LEAD):
        raise Refused("只有管理员或联盟负责人可以发起评选。")
    form = await _form(request)
    key = step_key(viewer, form, "evaluation-open")
    service = service_of(request)
    now = bot.runtime.local_now()
    try:
        try:
            kind = Kind.parse(form.get("kind", ""))
        except ValueError:
            raise UserError(f"不认识的评选类型「{form.get('kind', '')}」。") from None
        alliance_id = form.get("alliance") or None
        if alliance_id is not None and await bot.store.alliances.get(alliance_id) is None:
            raise UserError("没有这个联盟。")
        amount = parse_amount(form["amount"]) if form.get("amount") else None
        quota = _whole(form.get("quota", ""), "名额", default=None)
        passing = _whole(form.get("passing", ""), "入选线", default=60)
        if quota is not None and quota < 1:
            raise UserError("名额至少为 1。")
        if passing is not None and passing > 100:
            raise UserError("入选线应在 0 到 100 分之间。")
        evaluation = await service.open(
            caller=viewer.caller,
            kind=kind,
            alliance_id=alliance_id,
            criteria=parse_criteria(form["criteria"]) if form.get("criteria") else None,
            panel=await panel_members(bot.store, form.get("panel", "")),
            nominate_until=_deadline(form.get("nominate_until", ""), now, "申报截止"),
            score_until=_deadline(form.get("score_until", ""), now, "评分截止"),
            quota=quota,
            amount=amount,
            override=form.get("override") == "on",
            passing=passing if passing is not None else 60,
            message_key=key,
        )
    except (UserError, ValueError) as exc:
        return await handle_rounds(request, error=_message(exc), status=_status(exc))
    assert evaluation.id is not None
    return _back(evaluation.id, f"已发起{round_label(evaluation)}，已通知各联盟群和评鉴团成员。")


def _message(exc: Exception) -> str:
    text = str(exc)
    return text if text.endswith(("。", "！", "）")) else f"{text}。"


async def handle_nominate(request: web.Request) -> web.StreamResponse:
    """``POST /console/evaluations/{id}/nominate``: as ``/评选 申报 …``."""
    viewer = viewer_of(request)
    evaluation = await _round(request)
    assert evaluation.id is not None
    if not viewer.at_least(Role.STUDIO_LEAD):
        raise Refused("只有工作室负责人或联盟负责人可以申报。")
    form = await _form(request)
    key = step_key(viewer, form, "nominate")
    service = service_of(request)
    stars = _whole(form.get("stars", ""), "星级", default=None)
    try:
        if stars is not None and stars not in STAR_WORDS:
            raise UserError("星级只能是三星、四星或五星。")
        subject = form.get("subject", "")
        if not subject:
            raise UserError("请选择申报的工作室或填写成果编号。")
        nominee = await service.nominate(
            evaluation.id, fold(subject), caller=viewer.caller, target_stars=stars, message_key=key
        )
    except UserError as exc:
        return await handle_round(request, error=_message(exc), status=_status(exc))
    return _back(evaluation.id, f"已申报：{await service.nominee_label(nominee)}。")


def _status(exc: Exception) -> int:
    """403 for a refusal of who the caller is (role, panel, conflict), 400 for what they wrote."""
    return 403 if isinstance(exc, Forbidden) else 400


async def handle_score(request: web.Request) -> web.StreamResponse:
    """``POST /console/evaluations/{id}/score``: as ``/评选 评分 …``, one field per criterion."""
    viewer = viewer_of(request)
    evaluation = await _round(request)
    assert evaluation.id is not None
    form = await _form(request)
    key = step_key(viewer, form, "score")
    service = service_of(request)
    raw = form.get("nominee", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise Refused("请选择要评分的申报对象。", status=400)
    if viewer.user_id not in evaluation.panel:
        raise Refused(f"您不是{round_label(evaluation)}的评鉴团成员，不能评分。")
    nominee = await service.repo.nominee(int(raw))
    if (
        nominee is not None
        and nominee.round_id == evaluation.id
        and await service.conflicted(viewer.user_id, nominee)
    ):
        label = await service.nominee_label(nominee)
        return await handle_round(
            request, error=f"回避：{label} 涉及您所在的工作室，您不能为其评分。", status=403
        )
    try:
        values = [f"{c['name']}={form.get(f'score-{i}', '')}" for i, c in enumerate(evaluation.criteria)]
        if any(not form.get(f"score-{i}") for i in range(len(evaluation.criteria))):
            raise UserError(
                f"请为每一项标准打分（0–100）：{'、'.join(str(c['name']) for c in evaluation.criteria)}。"
            )
        outcome = await service.score(
            evaluation.id, int(raw), [fold(v) for v in values], caller=viewer.caller, message_key=key
        )
    except UserError as exc:
        return await handle_round(request, error=_message(exc), status=_status(exc))
    verb = "已更新评分" if outcome.replaced else "已评分"
    return _back(
        evaluation.id, f"{verb}：{await service.nominee_label(outcome.nominee)}，加权得分 {outcome.total:g}。"
    )


async def handle_close(request: web.Request) -> web.StreamResponse:
    """``POST /console/evaluations/{id}/close``: as ``/评选 结束 N`` — once, however often it is submitted."""
    viewer = viewer_of(request)
    evaluation = await _round(request)
    assert evaluation.id is not None
    refusal = _close_refusal(viewer, evaluation)
    if refusal:
        raise Refused(refusal)
    # as in chat, the close is a conditional change of the round's state (open → closed): a second submit,
    # another process or the job finds it closed and changes nothing
    service = service_of(request)
    try:
        standings = await service.close(evaluation.id, caller=viewer.caller, source="console")
    except UserError as exc:
        return await handle_round(request, error=_message(exc), status=_status(exc))
    if standings is None:
        return _back(evaluation.id, f"{round_label(evaluation)} 已经结束了。")
    winners = sum(1 for s in standings if s.nominee.result == "winner")
    return _back(
        evaluation.id,
        f"{round_label(evaluation)} 已结束：{len(standings)} 个申报对象，{winners} 个入选。结果已发到联盟群。",
    )


async def _rounds_page(request: web.Request) -> web.Response:
    return await handle_rounds(request)


async def _round_page(request: web.Request) -> web.Response:
    return await handle_round(request)


def add_routes(console: web.Application) -> None:
    """Mount the evaluation pages."""
    console.router.add_get("/evaluations", _rounds_page, name="evaluations")
    console.router.add_post("/evaluations", handle_open, name="evaluation-open")
    console.router.add_get("/evaluations/{id}", _round_page, name="evaluation")
    console.router.add_post("/evaluations/{id}/nominate", handle_nominate, name="evaluation-nominate")
    console.router.add_post("/evaluations/{id}/score", handle_score, name="evaluation-score")
    console.router.add_post("/evaluations/{id}/close", handle_close, name="evaluation-close")
