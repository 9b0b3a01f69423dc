"""Technical problems: plain group messages and ``/ask`` (``/提问``) log them; ``/claim`` (``/认领``),
``/answer`` (``/答复``), ``/solve`` (``/解决``), ``/close`` (``/关闭``), ``/reopen`` (``/重开``) follow them;
``/problem N`` and ``/problems`` (``/问题``) show them. Also the feature's setup: service and scheduled jobs.

Who may do what: any studio lead claims (for the studio they lead; ``@ID`` picks one, admins and alliance leads
may claim for a studio of theirs); the claiming studio's lead answers; the asker, the claiming studio's lead or
an admin marks a problem solved; the asker, a lead of the problem's alliance or an admin closes and reopens it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.cron import CronTrigger

from bot.core.dispatcher import (
    Context,
    Role,
    Router,
    UsageError,
    UserError,
    first_word,
    fold,
    split_command,
)
from bot.core.messages import Event
from bot.core.middleware import dedupe_key
from bot.core.runtime import Runtime
from bot.routing import Judgement
from bot.routing.judge import Tone, chatter_tone, wish_in
from bot.services.activities.service import ActivityService
from bot.services.problems import (
    DIGEST_JOB,
    ESCALATION_JOB,
    MAX_TEXT,
    TODO_JOB,
    Logged,
    ProblemService,
    close_refusal,
    cn_time,
    problem_label,
    reopen_refusal,
    short,
    studio_label,
    transfer_refusal,
)
from bot.services.studios import display_names
from bot.store.feedback import FeedbackRepo
from bot.store.media import PhotoRepo, photo_lines
from bot.store.problems import ACTIVE, UNCLAIMED, Problem, ProblemStatus
from bot.store.studios import Alliance, Studio

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("技术问题")

_NUMBER = re.compile(r"^#?(\d{1,9})$")
_STUDIO_OPT = re.compile(r"(?:^|\s)[@＠](\S+)")
_ACTIONS = {
    "logged": "登记问题",
    "routed": "推荐并通知",
    "referred": "转联盟负责人协调",
    "claimed": "认领",
    "answered": "答复",
    "solved": "标记解决",
    "closed": "关闭",
    "reopened": "重新打开",
    "unsolved": "提问人反馈还没解决",
    "escalated": "升级转派",
    "transferred": "转派",
    "released": "释放认领",
    "imported": "导入（历史已解决问题）",
}
# "有没有做过转体桥的？", "谁懂接触网？", "哪个工作室擅长盾构？": who can help, not a problem to log
_WHO_CAN = re.compile(
    r"(?:有没有|有谁|谁|哪个工作室|哪家|哪位)(?:人|工作室|单位|师傅)?"
    r"(?:做过|干过|弄过|搞过|懂|会|熟悉|擅长|有经验|接触过)"
)
LIST_LIMIT = 20


def service_of(ctx: Context) -> ProblemService:
    """The problems service."""
    return ctx.runtime.feature(ProblemService)


def parse_number(args: str) -> tuple[int, str]:
    """``"5 其余文字"`` or ``"#5"`` → (5, rest); raises ``UsageError``."""
    word, rest = first_word(args)
    match = _NUMBER.match(word)
    if not match:
        raise UsageError("请写问题编号，例如 5 或 #5。发送 /问题 查看未解决的问题。")
    return int(match.group(1)), rest.strip()


async def problem_or_error(ctx: Context, number: int) -> Problem:
    """The problem ``#number``."""
    problem = await service_of(ctx).repo.get(number)
    if problem is None:
        raise UserError(f"没有编号为 #{number} 的问题。发送 /问题 查看未解决的问题。")
    return problem


def event_text(action: str, detail: str | None) -> str:
    """One step of a problem's history: ``登记问题（隧道联盟群）``, ``推荐并通知：盾构…工作室（T1）``,
    ``答复（盾构…工作室）：降低推进速度`` — one colon at most, no word said twice."""
    label = _ACTIONS.get(action, action)
    if not detail:
        return label
    # rows written before the wording was tidied carry the prefixes in the stored detail
    detail = detail.removeprefix("群：") if action == "logged" else detail.removeprefix("通知 ")
    if action == "logged":
        return f"{label}（{detail}）"
    head, colon, tail = detail.partition("：")
    if colon and head and len(head) <= 40:
        return f"{label}（{head}）：{short(tail, 80)}"
    return f"{label}：{short(detail, 80)}"


def _ended(problem: Problem) -> str:
    if problem.state == ProblemStatus.SOLVED:
        return f"问题 {problem_label(problem)}已经解决。如需继续，请发送 /重开 {problem.id}。"
    return f"问题 {problem_label(problem)}已关闭。如需继续，请发送 /重开 {problem.id}。"


# -- replies ---------------------------------------------------------------------------------------


def logged_reply(logged: Logged, studios: dict[str, Studio]) -> str:
    """The group reply to a logged problem, about three lines on a phone: the number with the two commands,
    the studios asked with the evidence for each, and an earlier solved one if any; the rest is in /问题 N."""
    problem = logged.problem
    lines = [f"已登记技术问题 #{problem.id}。认领 /认领 {problem.id}，进展 /问题 {problem.id}。"]
    capped = "、".join(studios[m.id].name if m.id in studios else m.id for m in logged.capped)
    if logged.studios:
        asked = []
        for match in logged.studios:
            studio = studios.get(match.id)
            name = studio.name if studio else match.id
            evidence = "、".join([*match.matched, *match.related][:3])
            asked.append(f"{name}（{evidence}）" if evidence else name)
        line = "已私信推荐：" + "；".join(asked)
        if capped:
            line += f"（{capped}今日受理已达上限，已顺延）"
    elif not studios:
        line = "花名册中还没有工作室，暂时无法推荐；导入花名册后可由管理员转派：/转派 问题编号 工作室编号。"
    else:
        why = f"{capped}今日受理已达上限，已顺延" if capped else "花名册中暂无专业对口的工作室"
        if logged.coordinators:
            line = f"{why}；已转给联盟负责人协调，有进展会通知您。"
        else:  # nobody to pass it to: no alliance lead, no admins configured (BOT_ADMINS)
            line = f"{why}；也没有可转交的联盟负责人。问题已登记，可随时用 /问题 {problem.id} 查看进展。"
    lines.append(line)
    for same in logged.similar[:1]:
        earlier = logged.similar_problems.get(same.id)
        solver = studios.get(same.studio_id)
        lines.append(
            f"此前类似问题 #{same.id} 已解决，{solver.name if solver else same.studio_id}答复：{short(same.answer, 80)}"
            + (f"（详见 /问题 {earlier.id}）" if earlier and len(same.answer) > 80 else "")
        )
    return "\n".join(lines)


async def chatter_reply(ctx: Context, verdict: Judgement, text: str) -> str | None:
    """A reply in kind to a message that is not a technical problem: nothing to an acknowledgement, a word to
    thanks, a wish or good news, the time and place to a question about an activity. ``""`` is silence; None
    lets a private chat get the greeting with the way to /帮助."""
    tone = chatter_tone(text)
    in_group = ctx.event.in_group
    if tone == Tone.SCHEDULE:
        if ActivityService in ctx.runtime.features:
            answer = await ctx.runtime.feature(ActivityService).schedule_answer(text, ctx.runtime.clock.now())
            if answer:
                return answer
        return "这条不是技术问题，我没有登记。活动安排可发送 /活动列表 查看。"
    if tone == Tone.CELEBRATION:
        return "祝贺！👏"
    if tone == Tone.WISH:
        return f"{wish_in(text) or '同乐'}！"
    if tone == Tone.THANKS:
        return "不客气！"
    if tone == Tone.ACK:
        return ""
    if tone in (Tone.GREETING, Tone.LAUGHTER):
        return "" if in_group else None if tone == Tone.GREETING else "🙂"
    if verdict.reason in ("empty/sticker", "too short"):
        return "" if in_group else None
    if verdict.reason == "logistics":
        return "这条不是技术问题，我没有登记。活动安排可发送 /活动列表 查看。"
    if not in_group:
        return None
    return "这条看起来不是技术问题，没有登记；如需登记，请发送 /提问 问题内容。"


async def _log(ctx: Context, text: str) -> str:
    service = service_of(ctx)
    logged = await service.log(
        text, asker=ctx.caller.user_id, group=ctx.event.chat_id, message_key=dedupe_key(ctx.event)
    )
    return logged_reply(logged, await service.studios())


# -- logging ---------------------------------------------------------------------------------------

ASK_WORDS = ("ask", "提问")


@router.command(
    "ask",
    "提问",
    summary="登记技术问题，推荐并通知最合适的工作室",
    usage="/提问 问题内容，例如 /提问 盾构始发时土压波动大，怎么调掘进参数？",
)
async def handle_ask(ctx: Context) -> str:
    """Log a problem, whatever the judge would say."""
    text = ctx.args.strip()
    if not text:
        raise UsageError("请写上问题内容。")
    if len(text) > MAX_TEXT:
        raise UsageError(f"问题内容请不超过 {MAX_TEXT} 字。")
    return await _log(ctx, text)


@router.text
async def handle_message(ctx: Context) -> str | None:
    """A message that is not a command: a technical problem is logged, chatter gets a short line."""
    text = ctx.event.text.strip()
    service = service_of(ctx)
    if len(text) > MAX_TEXT:
        return (
            f"这条消息有 {len(text)} 字，超过了 {MAX_TEXT} 字，没有登记。请把问题精简一下再发，"
            "细节可在登记后补充。"
        )
    if _WHO_CAN.search(text) and len(text) <= 60:
        return await _who_can_help(ctx, text)
    verdict = await service.judge(text)
    if not verdict.is_problem:
        return await chatter_reply(ctx, verdict, text)
    earlier = await service.open_duplicate(text, now=ctx.runtime.clock.now())
    if earlier is not None:
        reply = (
            f"这个问题已登记为 #{earlier.id}（{earlier.state.label}），"
            f"正在跟进，没有重复登记。查看进展：/问题 {earlier.id}；确实是新问题请发送 /提问 问题内容。"
        )
        if earlier.answer and earlier.state == ProblemStatus.ANSWERED:
            # someone else asking what was already answered gets the answer now, not only a pointer to it
            reply += f"\n目前的答复：{short(earlier.answer, 120)}"
        return reply
    return await _log(ctx, text)


def _warmer(service: ProblemService) -> Callable[[Event], Awaitable[None]]:
    async def warm(event: Event) -> None:
        """Before a message's transaction: embed its text (a problem, most likely) in a worker thread, so
        the handler finds the vector cached and holds its database connection only for database work."""
        text = event.text.strip()
        parsed = split_command(text)
        if parsed is not None:  # only a problem is embedded: plain text, or the ask command's text
            word, text = parsed
            if word not in ASK_WORDS:
                return
        if not text or len(text) > MAX_TEXT:
            return
        index = await service.index()
        await asyncio.to_thread(index.prepare, text)

    return warm


async def _who_can_help(ctx: Context, text: str) -> str:
    """The studios with evidence for what is asked about, with their leads; nothing is logged."""
    service = service_of(ctx)
    index = await service.index()
    await asyncio.to_thread(index.prepare, text)
    studios = await service.studios()
    found = [m for m in index.rank(text, limit=3) if m.confident and m.id in studios]
    if not found:
        return "花名册里没有找到做过这方面的工作室。可以直接把问题发给我，我会登记并请联盟负责人协调。"
    lines = ["这些工作室做过相关工作："]
    for rank, match in enumerate(found, start=1):
        studio = studios[match.id]
        why = f"（{'、'.join(match.matched)}）" if match.matched else ""
        lines.append(f"{rank}. {studio_label(studio, studio.id)}，负责人 {studio.lead_name}{why}")
    lines.append("有具体问题请直接发给我（或 /提问 问题内容），我会登记并通知他们。")
    return "\n".join(lines)


# -- lifecycle -------------------------------------------------------------------------------------


async def _studio_for(ctx: Context, problem: Problem, args: str) -> Studio:
    """The studio the caller claims or answers for: ``@ID``, the one they lead, or the one that was asked."""
    store = ctx.runtime.store
    caller = ctx.caller
    match = _STUDIO_OPT.search(args)
    if match:
        studio = await store.studios.find(match.group(1))
        if studio is None:
            raise UserError(f"没有编号为 {match.group(1)} 的工作室。发送 /工作室 查看编号。")
        if not (
            studio.id in caller.studios
            or caller.at_least(Role.ADMIN)
            or (caller.at_least(Role.ALLIANCE_LEAD) and studio.alliance_id in caller.alliances)
        ):
            raise UserError(f"您不是{studio.name}（{studio.id}）的负责人，不能代表它操作。")
        return studio
    if not caller.studios:
        raise UserError(
            "只有工作室负责人可以认领和答复问题；管理员或联盟负责人请用 @工作室编号 指明代表哪个工作室。"
        )
    chosen = caller.studios[0]
    if len(caller.studios) > 1:
        assert problem.id is not None
        asked = [r.studio_id for r in await service_of(ctx).repo.requests_of(problem.id)]
        mine = [s for s in caller.studios if s in asked or s == problem.studio_id]
        if len(mine) != 1:
            raise UsageError(
                f"您负责多个工作室（{'、'.join(caller.studios)}），请用 @工作室编号 指明，例如 @{caller.studios[0]}。"
            )
        chosen = mine[0]
    studio = await store.studios.get(chosen)
    assert studio is not None
    return studio


@router.command(
    "claim",
    "认领",
    summary="工作室认领一个技术问题",
    usage="/认领 问题编号 [@工作室]，例如 /认领 5",
    role=Role.STUDIO_LEAD,
)
async def handle_claim(ctx: Context) -> str:
    """The caller's studio takes a problem."""
    number, rest = parse_number(ctx.args)
    problem = await problem_or_error(ctx, number)
    if problem.state.final:
        raise UserError(_ended(problem))
    studio = await _studio_for(ctx, problem, rest)
    if problem.state not in UNCLAIMED:
        if problem.studio_id == studio.id:
            return (
                f"{studio.name}已经认领了问题 {problem_label(problem)}。答复请发送 /答复 {number} 答复内容。"
            )
        other = await ctx.runtime.store.studios.get(problem.studio_id or "")
        raise UserError(f"问题 {problem_label(problem)}已由{studio_label(other, problem.studio_id)}认领。")
    claimed = await service_of(ctx).claim(problem, studio=studio, user_id=ctx.caller.user_id)
    if claimed is None:
        raise UserError(f"问题 #{number} 刚刚已被其他工作室认领或已结束，请发送 /问题 {number} 查看。")
    return (
        f"{studio.name}已认领问题 {problem_label(claimed)}，已通知提问人。\n"
        f"答复请发送 /答复 {number} 答复内容。"
    )


@router.command(
    "transfer",
    "转派",
    summary="把问题转给另一个工作室（联盟负责人、管理员）",
    usage="/转派 问题编号 工作室编号或名称，例如 /转派 5 T2",
    role=Role.ALLIANCE_LEAD,
)
async def handle_transfer(ctx: Context) -> str:
    """An alliance lead (of the problem's or the studio's alliance) or an admin hands a problem on."""
    number, rest = parse_number(ctx.args)
    if not rest:
        raise UsageError("请写上要转给的工作室，例如 /转派 5 T2。")
    problem = await problem_or_error(ctx, number)
    if problem.state.final or problem.state == ProblemStatus.ANSWERED:
        raise UserError(
            _ended(problem) if problem.state.final else f"问题 {problem_label(problem)}已经答复，不能再转派。"
        )
    key = rest.split()[0].lstrip("@＠")
    studio = await ctx.runtime.store.studios.find(key)
    if studio is None:
        raise UserError(f"没有找到工作室「{key}」。发送 /工作室 查看编号。")
    caller = ctx.caller
    refusal = transfer_refusal(caller, problem, studio)
    if refusal:
        raise UserError(refusal)
    if problem.studio_id == studio.id:
        return f"问题 {problem_label(problem)}已由{studio.name}认领，无需转派。"
    moved = await service_of(ctx).transfer(problem, studio=studio, user_id=caller.user_id)
    if moved is None:
        raise UserError(f"问题 #{number} 刚刚有了变化，请发送 /问题 {number} 查看后再试。")
    return f"已把问题 {problem_label(moved)}转给{studio_label(studio, studio.id)}，已通知其负责人和提问人。"


@router.command(
    "answer",
    "答复",
    summary="认领的工作室答复技术问题（会通知提问人）",
    usage="/答复 问题编号 答复内容，例如 /答复 5 先降低推进速度，同时检查土仓压力传感器",
    role=Role.STUDIO_LEAD,
)
async def handle_answer(ctx: Context) -> str:
    """The claiming studio's lead answers; an unclaimed problem is claimed first."""
    number, rest = parse_number(ctx.args)
    match = _STUDIO_OPT.search(rest)
    text = (rest[: match.start()] + " " + rest[match.end() :]).strip() if match else rest
    if not text:
        raise UsageError("请写上答复内容。")
    if len(text) > MAX_TEXT:
        raise UsageError(f"答复内容请不超过 {MAX_TEXT} 字。")
    problem = await problem_or_error(ctx, number)
    if problem.state.final:
        raise UserError(_ended(problem))
    studio = await _studio_for(ctx, problem, rest)
    service = service_of(ctx)
    if problem.state in UNCLAIMED:
        claimed = await service.claim(problem, studio=studio, user_id=ctx.caller.user_id)
        if claimed is None:
            raise UserError(f"问题 #{number} 刚刚已被其他工作室认领或已结束，请发送 /问题 {number} 查看。")
        problem = claimed
    elif problem.studio_id != studio.id:
        other = await ctx.runtime.store.studios.get(problem.studio_id or "")
        raise UserError(
            f"问题 {problem_label(problem)}由{studio_label(other, problem.studio_id)}认领，只有它的负责人可以答复。"
        )
    answered = await service.answer(problem, studio=studio, user_id=ctx.caller.user_id, text=text)
    if answered is None:
        raise UserError(f"问题 #{number} 的状态刚刚发生了变化，请发送 /问题 {number} 查看。")
    return f"已答复问题 {problem_label(answered)}，并通知了提问人。提问人确认后可发送 /解决 {number}。"


@router.command(
    "solve",
    "解决",
    summary="标记技术问题已解决（提问人、认领工作室负责人或管理员）",
    usage="/解决 问题编号，例如 /解决 5",
)
async def handle_solve(ctx: Context) -> str:
    """Mark a problem solved."""
    number, _ = parse_number(ctx.args)
    problem = await problem_or_error(ctx, number)
    caller = ctx.caller
    allowed = (
        caller.user_id == problem.asker
        or caller.at_least(Role.ADMIN)
        or (problem.studio_id is not None and problem.studio_id in caller.studios)
    )
    if not allowed:
        raise UserError("只有提问人、认领工作室的负责人或管理员可以标记问题已解决。")
    if problem.state.final:
        raise UserError(_ended(problem))
    solved = await service_of(ctx).solve(problem, user_id=caller.user_id)
    if solved is None:
        raise UserError(f"问题 #{number} 的状态刚刚发生了变化，请发送 /问题 {number} 查看。")
    if caller.user_id == problem.asker:  # the asker confirming it counts as satisfied (like 👍)
        await service_of(ctx).rate(solved, user_id=caller.user_id, rating=1, event_key=_event_key(ctx, "solve"))
    learned = "，解答已收入知识库，今后类似问题会优先推荐该工作室" if solved.studio_id else ""
    return f"问题 {problem_label(solved)}已标记为解决{learned}。"


@router.command(
    "close",
    "关闭",
    summary="关闭技术问题（未解决；提问人、本联盟负责人或管理员）",
    usage="/关闭 问题编号 [理由]，例如 /关闭 5 重复提问",
)
async def handle_close(ctx: Context) -> str:
    """Close a problem without a solution."""
    number, reason = parse_number(ctx.args)
    if len(reason) > MAX_TEXT:
        raise UsageError(f"理由请不超过 {MAX_TEXT} 字。")
    problem = await problem_or_error(ctx, number)
    refusal = close_refusal(ctx.caller, problem)
    if refusal:
        raise UserError(refusal)
    if problem.state.final:
        raise UserError(_ended(problem))
    closed = await service_of(ctx).close(problem, user_id=ctx.caller.user_id, reason=reason)
    if closed is None:
        raise UserError(f"问题 #{number} 的状态刚刚发生了变化，请发送 /问题 {number} 查看。")
    return f"问题 {problem_label(closed)}已关闭" + (f"（理由：{reason}）" if reason else "") + "。"


@router.command(
    "reopen",
    "重开",
    "重新打开",
    summary="重新打开已解决或已关闭的问题（提问人、本联盟负责人或管理员）",
    usage="/重开 问题编号，例如 /重开 5",
)
async def handle_reopen(ctx: Context) -> str:
    """Reopen a solved or closed problem."""
    number, _ = parse_number(ctx.args)
    problem = await problem_or_error(ctx, number)
    refusal = reopen_refusal(ctx.caller, problem)
    if refusal:
        raise UserError(refusal)
    if not problem.state.final:
        raise UserError(f"问题 {problem_label(problem)}还没有解决或关闭（{problem.state.label}），无需重开。")
    reopened = await service_of(ctx).reopen(problem, user_id=ctx.caller.user_id)
    if reopened is None:
        raise UserError(f"问题 #{number} 的状态刚刚发生了变化，请发送 /问题 {number} 查看。")
    return f"问题 {problem_label(reopened)}已重新打开，当前状态：{reopened.state.label}。"


@router.command(
    "unsolved",
    "未解决",
    "还没解决",
    summary="提问人反馈问题还没解决（记为不满意；已解决的问题会重新打开）",
    usage="/未解决 问题编号 [说明]，例如 /未解决 5 按答复调整后土压仍然波动",
)
async def handle_unsolved(ctx: Context) -> str:
    """The asker says the answer did not help: recorded as dissatisfaction, and the problem stays open (a
    solved or closed one is reopened, as by /重开)."""
    number, note = parse_number(ctx.args)
    if len(note) > MAX_TEXT:
        raise UsageError(f"说明请不超过 {MAX_TEXT} 字。")
    problem = await problem_or_error(ctx, number)
    if ctx.caller.user_id != problem.asker:
        raise UserError(f"只有提问人可以反馈问题 #{number} 还没解决。")
    if problem.state is ProblemStatus.OPEN or problem.state is ProblemStatus.ROUTED:
        raise UserError(f"问题 {problem_label(problem)}还没有工作室答复（{problem.state.label}），请耐心等待。")
    current, reopened = await service_of(ctx).unsolved(
        problem, user_id=ctx.caller.user_id, note=note, event_key=_event_key(ctx, "unsolved")
    )
    if current is None:
        raise UserError(f"问题 #{number} 的状态刚刚发生了变化，请发送 /问题 {number} 查看。")
    if reopened:
        return f"已记录您的反馈：问题 {problem_label(current)}已重新打开，当前状态：{current.state.label}。"
    who = "已转告认领的工作室继续跟进" if current.studio_id else "问题仍在处理中"
    return f"已记录您的反馈：问题 {problem_label(current)}还没解决，{who}。解决后请发送 /解决 {number}。"


def _event_key(ctx: Context, what: str) -> str:
    """The key a satisfaction record is kept once under: the message (or card click) it came in."""
    event = ctx.event
    message = event.msg_id or event.received_at.isoformat()
    return f"{what}:{event.channel}:{event.user_id}:{message}"


# -- viewing ---------------------------------------------------------------------------------------


@router.command(
    "problem", "问题详情", summary="查看一个问题的详情和全部经过", usage="/问题详情 编号，例如 /problem 5"
)
async def handle_problem(ctx: Context) -> str:
    """One problem with its full history."""
    if not ctx.args.strip():
        raise UsageError()
    number, _ = parse_number(ctx.args)
    return await _details(ctx, number)


async def _details(ctx: Context, number: int) -> str:
    service = service_of(ctx)
    detail = await service.repo.detail(number)
    if detail is None:
        raise UserError(f"没有编号为 #{number} 的问题。发送 /问题 查看未解决的问题。")
    problem = detail.problem
    tz = service.tz
    studios = await service.studios()
    names = await display_names(ctx.runtime.store, [problem.asker, *(e.actor for e in detail.events)])
    lines = [
        f"问题 #{problem.id}（{problem.state.label}）",
        f"内容：{problem.text}",
        f"提问：{names[problem.asker]}，{cn_time(problem.created_at, tz)}"
        + (f"，群：{problem.group}" if problem.group else ""),
    ]
    if problem.ref:
        lines.append(f"外部编号：{problem.ref}")
    if detail.requests:
        asked = "、".join(studio_label(studios.get(r.studio_id), r.studio_id) for r in detail.requests)
        lines.append(f"已请求：{asked}")
    if problem.studio_id:
        lines.append(f"认领：{studio_label(studios.get(problem.studio_id), problem.studio_id)}")
    if problem.answer:
        lines.append(f"答复：{problem.answer}")
    if problem.close_reason:
        lines.append(f"关闭理由：{problem.close_reason}")
    assert problem.id is not None
    lines.extend(photo_lines(await PhotoRepo(ctx.runtime.store.sessions).of_problem(problem.id)))
    liked, disliked = await FeedbackRepo(ctx.runtime.store.sessions).tally(problem.id)
    if liked or disliked:
        lines.append(f"提问人反馈：👍 {liked} · 👎 {disliked}")
    lines.append("经过：")
    for event in detail.events:
        actor = "系统" if event.actor == "system" else names.get(event.actor, event.actor)
        lines.append(f"  {cn_time(event.at, tz)} {actor} {event_text(event.action, event.detail)}")
    if problem.state in UNCLAIMED:
        lines.append(f"工作室负责人认领请发送 /认领 {problem.id}。")
    return "\n".join(lines)


PROBLEMS_USAGE = (
    "/问题 [问题编号|筛选…] [N页]。筛选可组合：未解决（默认）/待认领/已认领/已答复/已解决/已关闭/全部、"
    "我的、联盟名、工作室编号或名称、超过N天；例如 /问题 5、/问题 我的、/问题 隧道 待认领、/问题 T1 全部 2页、"
    "/问题 超过3天"
)
_STATUS_WORDS: dict[str, tuple[ProblemStatus, ...] | None] = {
    "open": ACTIVE,
    "未解决": ACTIVE,
    "待解决": ACTIVE,
    "unclaimed": UNCLAIMED,
    "待认领": UNCLAIMED,
    "待分派": (ProblemStatus.OPEN,),
    "claimed": (ProblemStatus.CLAIMED,),
    "已认领": (ProblemStatus.CLAIMED,),
    "answered": (ProblemStatus.ANSWERED,),
    "已答复": (ProblemStatus.ANSWERED,),
    "solved": (ProblemStatus.SOLVED,),
    "已解决": (ProblemStatus.SOLVED,),
    "closed": (ProblemStatus.CLOSED,),
    "已关闭": (ProblemStatus.CLOSED,),
    "all": None,
    "全部": None,
}
_STATUS_NAMES = {ACTIVE: "未解决", UNCLAIMED: "待认领"}
_PAGE = re.compile(r"^(?:第?(\d{1,4})页|p(\d{1,4}))$", re.IGNORECASE)
_OLDER = re.compile(r"^(?:超过|大于|>)?(\d{1,3})天(?:以上|前)?$")


@dataclass(slots=True)
class ProblemQuery:
    """What ``/问题`` was asked to list."""

    statuses: tuple[ProblemStatus, ...] | None = ACTIVE
    explicit_status: bool = False
    mine: bool = False
    alliance: Alliance | None = None
    studio: Studio | None = None
    older_days: int | None = None
    page: int = 1

    def heading(self) -> str:
        """``隧道联盟 待认领的问题（超过 3 天）`` and the like."""
        parts = []
        if self.mine:
            parts.append("我的")
        if self.alliance:
            parts.append(self.alliance.name)
        if self.studio:
            parts.append(self.studio.name)
        if self.statuses is None:
            status = "" if parts else "全部"
        else:
            status = _STATUS_NAMES.get(self.statuses, self.statuses[0].label)
        if not parts:
            heading = f"{status}的技术问题"
        elif status:
            heading = "".join(parts) + f"{status}的问题"
        else:
            heading = "".join(parts) + ("问题" if parts[-1] == "我的" else "的问题")
        return heading + (f"（提出超过 {self.older_days} 天）" if self.older_days else "")


async def parse_problem_query(ctx: Context, words: list[str]) -> ProblemQuery:
    """Read ``/问题`` filters in any order; raises ``UsageError`` naming the word not understood."""
    query = ProblemQuery()
    store = ctx.runtime.store
    pending = list(words)
    while pending:
        raw = pending.pop(0)
        word = fold(raw).lower()
        if word in _STATUS_WORDS:
            query.statuses, query.explicit_status = _STATUS_WORDS[word], True
        elif word in ("mine", "我的"):
            query.mine = True
        elif word in ("studio", "工作室"):
            if not pending:
                raise UsageError("请写工作室编号或名称，例如 /问题 工作室 T1。")
            query.studio = await _studio_or_error(ctx, pending.pop(0))
        elif match := _PAGE.match(word):
            query.page = max(1, int(match.group(1) or match.group(2)))
        elif match := _OLDER.match(word):
            query.older_days = int(match.group(1))
        elif (alliance := await store.alliances.find(raw)) is not None:
            query.alliance = alliance
        elif (studio := await store.studios.find(raw)) is not None:
            query.studio = studio
        else:
            raise UsageError(f"不认识「{raw}」：它不是状态、联盟、工作室或页码。")
    if not query.explicit_status and (query.mine or query.studio):
        query.statuses = None  # my problems and a studio's: every state unless one is named
    return query


async def _studio_or_error(ctx: Context, word: str) -> Studio:
    studio = await ctx.runtime.store.studios.find(word)
    if studio is None:
        raise UserError(f"没有编号或名称为「{word}」的工作室。发送 /工作室 查看编号。")
    return studio


@router.command(
    "problems",
    "问题",
    "问题列表",
    summary="查看技术问题：未解决的、我的、某联盟或工作室的，可筛选、翻页",
    usage=PROBLEMS_USAGE,
)
async def handle_problems(ctx: Context) -> str:
    """Lists problems by filters, a page at a time; a number shows one problem's details."""
    words = ctx.args.split()
    service = service_of(ctx)
    if len(words) == 1 and _NUMBER.match(fold(words[0])):
        return await _details(ctx, int(fold(words[0]).lstrip("#")))
    query = await parse_problem_query(ctx, words)
    caller = ctx.caller
    mine: dict[str, Any] = {}
    if query.mine:
        # what I asked, what my studios were asked or took, and — for an alliance lead — my alliances' problems
        mine = {
            "asker": caller.user_id,
            "studio_ids": caller.studios or None,
            "alliance_ids": caller.alliances or None,
        }
    created_before = None
    if query.older_days:
        created_before = ctx.runtime.clock.now() - timedelta(days=query.older_days)
    if not query.mine and query.studio:
        mine = {"studio_ids": [query.studio.id]}
    problems = await service.repo.find(
        statuses=query.statuses,
        alliance_id=query.alliance.id if query.alliance else None,
        created_before=created_before,
        **mine,
    )
    if query.mine and query.studio:  # both: my problems that concern that studio
        ids = {p.id for p in await service.repo.find(statuses=query.statuses, studio_ids=[query.studio.id])}
        problems = [p for p in problems if p.id in ids]
    heading = query.heading()
    if not problems:
        return f"{heading}：暂无。"
    pages = (len(problems) + LIST_LIMIT - 1) // LIST_LIMIT
    if query.page > pages:
        return f"{heading}共 {len(problems)} 个，只有 {pages} 页。"
    shown = problems[(query.page - 1) * LIST_LIMIT : query.page * LIST_LIMIT]
    studios = await service.studios()
    lines = [f"{heading}（{len(problems)} 个" + (f"，第 {query.page}/{pages} 页）：" if pages > 1 else "）：")]
    for problem in shown:
        owner = f"，{studios[problem.studio_id].name}" if problem.studio_id in studios else ""
        lines.append(
            f"· {problem_label(problem, 30)}｜{problem.state.label}{owner}｜{cn_time(problem.created_at, service.tz)}"
        )
    if query.page < pages:
        again = " ".join(w for w in words if not _PAGE.match(fold(w).lower()))
        lines.append(f"下一页：/问题 {again} {query.page + 1}页".replace("  ", " "))
    lines.append("发送 /问题 编号 查看详情。")
    return "\n".join(lines)


# -- setup -----------------------------------------------------------------------------------------


async def _escalate(runtime: Runtime, now: datetime) -> str:
    return await runtime.feature(ProblemService).escalate_due(now)


async def _digest(runtime: Runtime, now: datetime) -> str:
    return await runtime.feature(ProblemService).morning_digest(now)


async def _todo(runtime: Runtime, now: datetime) -> str:
    return await runtime.feature(ProblemService).lead_todo(now)


async def setup(bot: BotApp) -> None:
    """Register the problem commands, build the routing index at start-up and add the escalation and digest
    jobs."""
    if ProblemService not in bot.runtime.features:
        bot.runtime.add_feature(ProblemService(bot.runtime))
    service = bot.runtime.feature(ProblemService)
    # in the background: the port opens (and /help is answered) while the tokenizer loads and the index is
    # built; the first problem waits for it, and a large history follows later (ProblemService.index)
    bot.warmups["routing-index"] = service.ready
    bot.shutdown_hooks.append(service.stop_indexing)
    bot.runtime.warmers.append(_warmer(bot.runtime.feature(ProblemService)))
    bot.add_router(router)
    tz = bot.settings.tz
    bot.jobs.add(
        ESCALATION_JOB,
        CronTrigger(minute="*/10", timezone=tz),
        _escalate,
        description="问题升级：超过认领时限无人认领的问题转请下一个工作室，并告知联盟负责人",
    )
    bot.jobs.add(
        DIGEST_JOB,
        CronTrigger(hour=9, minute=0, timezone=tz),
        _digest,
        description="问题晨报：每天 9:00 向各联盟群列出超过一天仍未解决的问题",
    )
    bot.jobs.add(
        TODO_JOB,
        CronTrigger(hour=8, minute=30, timezone=tz),
        _todo,
        description="负责人待办：每天 8:30 私信工作室负责人待认领、待答复的问题（没有待办不发）",
    )
