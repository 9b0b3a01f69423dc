"""The achievements database (创新成果库): ``/achieve`` (``/成果``: 登记, 查询, 查新, N), awards (``/award``,
``/awards``) (the year's figures, ``/stats``, are the reports feature's).

Registration runs the novelty pre-screening (首创鉴定初筛) at once and lists the most similar achievements and
topics with a similarity figure and the terms they share; ``/成果 查新 文字`` does the same for any text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.dispatcher import Context, Role, Router, UsageError, UserError, first_word, fold
from bot.services.achievements.amounts import parse_amount
from bot.services.achievements.novelty import NEAR_DUPLICATE, describe
from bot.services.achievements.service import AchievementService, achievement_label
from bot.services.benefits import achievement_chain_lines
from bot.services.funds import FundService, Refusal, shares_of
from bot.services.studios import studio_list
from bot.services.topics import topic_label
from bot.store.achievements import ACTIVE, TYPE_NAMES, Achievement, AchievementType, Award
from bot.store.studios import Studio

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("创新成果")

_OVERRIDE_WORDS = ("特批", "强制")

MAX_TITLE = 300
FIRST_YEAR = 1980
STRONG = 0.6  # a check scoring this high puts the novelty claim in doubt
ACHIEVE_USAGE = (
    "/成果 登记 类型 名称 [工作室…] [年份] [#T-课题]，例如 /成果 登记 工法 盾构管片拼装质量控制工法 T1 T3 2026；"
    "/成果 查询 关键词；/成果 查新 名称或简介；/成果 编号 查看详情；"
    "/成果 编号 修改 字段=值 原因=…（字段：类型、名称、年份、简介、工作室）；/成果 编号 撤销 原因；"
    "/成果 编号 确认（为本工作室确认他人登记的成果）。"
    f"类型：{TYPE_NAMES}"
)
AWARD_USAGE = (
    "/奖励 成果编号或工作室编号 金额 [年份] [奖项名称]，例如 /奖励 12 20000 2026 优秀成果奖、"
    "/奖励 T1 3万 2026 五星级工作室（章程：优秀成果 5000–20000 元，五星级工作室 30000 元）；"
    "改错：/奖励 修改 奖励编号 金额=2万 原因=…；/奖励 撤销 奖励编号 原因"
)
_SUBCOMMANDS = {
    "add": "add",
    "登记": "add",
    "新增": "add",
    "添加": "add",
    "search": "search",
    "查询": "search",
    "搜索": "search",
    "find": "search",
    "check": "check",
    "查新": "check",
    "鉴定": "check",
    "首创鉴定": "check",
    "award": "award",
    "奖励": "award",
    "list": "list",
    "列表": "list",
}
_YEAR = re.compile(r"^((?:19|20)\d\d)年?$")
_TOPIC_REF = re.compile(r"^(?:#T-?|T-)(\d{1,9})$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[、,;]+")


def service_of(ctx: Context) -> AchievementService:
    """The achievements service."""
    return ctx.runtime.feature(AchievementService)


def parse_year(word: str) -> int | None:
    """``2026`` or ``2026年`` → 2026; None for anything else."""
    match = _YEAR.match(fold(word))
    return int(match.group(1)) if match else None


def find_studio(word: str, studios: dict[str, Studio]) -> Studio | None:
    """A studio by id (any case) or exact name."""
    lowered = fold(word).lower()
    return next((s for s in studios.values() if s.id.lower() == lowered or s.name == word.strip()), None)


@dataclass(slots=True, frozen=True)
class AddRequest:
    """``/achieve add`` arguments."""

    type: AchievementType
    title: str
    studios: tuple[str, ...]
    year: int | None
    topic_id: int | None


def parse_add(args: str, studios: dict[str, Studio]) -> AddRequest:
    """``TYPE TITLE [工作室…] [年份] [#T-N]``: studios and year are read from the end; raises ``UsageError``."""
    word, rest = first_word(args)
    if not word:
        raise UsageError("请写明成果类型和名称。")
    try:
        kind = AchievementType.parse(word)
    except ValueError:
        raise UsageError(f"不认识的成果类型「{word}」，可用：{TYPE_NAMES}。") from None
    tokens = rest.split()
    topic_id = None
    for token in list(tokens):
        match = _TOPIC_REF.match(fold(token))
        if match:
            topic_id = int(match.group(1))
            tokens.remove(token)
    year = None
    found: list[str] = []
    while len(tokens) > 1:
        last = tokens[-1]
        if year is None and parse_year(last) is not None:
            year = parse_year(last)
            tokens.pop()
            continue
        parts = [p for p in _SEPARATORS.split(fold(last)) if p]
        matched = [find_studio(p, studios) for p in parts]
        if parts and all(m is not None for m in matched):
            found[:0] = [m.id for m in matched if m is not None]
            tokens.pop()
            continue
        break
    title = " ".join(tokens).strip()
    if not title:
        raise UsageError("请写上成果名称。")
    if len(title) > MAX_TITLE:
        raise UsageError(f"成果名称请不超过 {MAX_TITLE} 字。")
    return AddRequest(kind, title, tuple(dict.fromkeys(found)), year, topic_id)


# -- /achieve --------------------------------------------------------------------------------------


@router.command("achieve", "成果", summary="创新成果库：登记、查询、查新、详情", usage=ACHIEVE_USAGE)
async def handle_achieve(ctx: Context) -> str:
    """``/achieve`` with a sub-command or an achievement number."""
    word, rest = first_word(ctx.args)
    if not word:
        return await _recent(ctx)
    sub = _SUBCOMMANDS.get(word.lower())
    if sub == "add":
        return await _add(ctx, rest)
    if sub == "search":
        return await _search(ctx, rest)
    if sub == "check":
        return await _check(ctx, rest)
    if sub == "award":
        return await _award(ctx, rest)
    if sub == "list":
        return await _recent(ctx)
    if word.lstrip("#").isdigit() and len(word.lstrip("#")) <= 9:
        action, tail = first_word(rest)
        if not action:
            return await _details(ctx, int(word.lstrip("#")))
        return await _change(ctx, int(word.lstrip("#")), action, tail)
    raise UsageError(f"不认识的子命令「{word}」。")


_EDIT_WORDS = ("修改", "更正", "edit")
_DELETE_WORDS = ("撤销", "删除", "delete", "undo")
_CONFIRM_WORDS = ("确认", "confirm")
_REASON_KEYS = ("原因", "理由", "reason")


def parse_changes(text: str, single: tuple[str, ...] = ()) -> tuple[dict[str, str], str]:
    """``金额=2万 名称=新 名称 原因=录入错误`` → ({金额: 2万, 名称: 新 名称}, 录入错误). A value runs to the next
    ``字段=``; after a one-word field (``single``: 金额, 年份…) further words are the reason, as are words
    before any field."""
    changes: dict[str, str] = {}
    reason: list[str] = []
    current: str | None = None
    for token in text.split():
        folded = fold(token)
        if "=" in folded:
            key, _, value = folded.partition("=")
            key = key.strip()
            value = token.split("=", 1)[1] if "=" in token else token.split("＝", 1)[1]
            if key in _REASON_KEYS:
                current = "原因"
                reason.append(value)
                continue
            current = key
            changes[key] = value
            continue
        if current == "原因" or current is None or current in single:
            reason.append(token)
            current = "原因" if current in single else current
        else:
            changes[current] = f"{changes[current]} {token}".strip()
    return changes, " ".join(reason).strip()


async def _change(ctx: Context, achievement_id: int, action: str, args: str) -> str:
    service = service_of(ctx)
    if action in _CONFIRM_WORDS:
        achievement, mine = await service.confirm(achievement_id, caller=ctx.caller)
        studios = await service.studio_names()
        if achievement.state == "confirmed":
            return f"已确认{achievement_label(achievement)}（{studio_list(mine, studios)}），成果已计入统计。"
        waiting = studio_list(achievement.pending_studios or [], studios)
        return f"已确认{studio_list(mine, studios)}的部分，还需{waiting}确认后才计入统计。"
    _need(ctx, Role.STUDIO_LEAD, action)
    if action in _DELETE_WORDS:
        _, reason = parse_changes(args)
        achievement, awards = await service.delete(achievement_id, caller=ctx.caller, reason=reason)
        extra = f"，其上的奖励 {'、'.join(f'#{a.id}' for a in awards)} 一并撤销" if awards else ""
        return (
            f"已撤销{achievement_label(achievement)}{extra}。原因：{reason}。不再计入统计和报表，记录留档。"
        )
    if action in _EDIT_WORDS:
        changes, reason = parse_changes(args, single=("类型", "年份"))
        achievement, what = await service.edit(achievement_id, changes, caller=ctx.caller, reason=reason)
        return f"已修改{achievement_label(achievement)}：{what}。原因：{reason}。发送 /成果 {achievement_id} 查看修改记录。"
    raise UsageError(
        f"不认识的操作「{action}」。可用：/成果 {achievement_id} 修改 字段=值 原因=…；"
        f"/成果 {achievement_id} 撤销 原因；/成果 {achievement_id} 确认。"
    )


def _need(ctx: Context, role: Role, sub: str) -> None:
    if not ctx.caller.at_least(role):
        raise UserError(
            f"抱歉，/{ctx.command_word} {sub} 需要「{role.label}」及以上权限，您当前是「{ctx.caller.role.label}」。"
        )


async def _add(ctx: Context, args: str) -> str:
    _need(ctx, Role.STUDIO_LEAD, "登记")
    service = service_of(ctx)
    studios = await service.studio_names()
    request = parse_add(args, studios)
    studio_ids = request.studios or tuple(ctx.caller.studios)
    if not studio_ids:
        raise UsageError("请写上完成成果的工作室编号，例如 T1。")
    year = request.year or ctx.runtime.local_now().year
    if not FIRST_YEAR <= year <= ctx.runtime.local_now().year + 1:
        raise UsageError(f"年份应在 {FIRST_YEAR} 到明年之间。")
    description = ""
    if request.topic_id is not None:
        detail = await service.topics.detail(request.topic_id)
        if detail is None:
            raise UserError(f"没有编号为 T-{request.topic_id} 的课题。")
        topic = detail.topic
        team = {
            topic.studio_id,
            *(m.studio_id for m in detail.members),
            *(s.studio_id for s in detail.supports),
        }
        if not ctx.caller.at_least(Role.ADMIN) and not team & set(studio_ids):
            raise UserError(
                f"成果只能关联到完成工作室参与的课题：{topic_label(topic)} 的攻关团队里没有"
                f"{studio_list(studio_ids, studios)}。"
            )
        pending = service.needs_confirmation(
            ctx.caller, studio_ids, studios, team=team, topic_owner=topic.studio_id
        )
        description = topic.conclusion
    else:
        pending = service.needs_confirmation(ctx.caller, studio_ids, studios)
    existing = await service.achievements.find(type=request.type.value, title=request.title, year=year)
    if existing is not None:
        raise UserError(f"已登记过：{achievement_label(existing)}。发送 /成果 {existing.id} 查看。")
    achievement = await service.achievements.add(
        Achievement(
            type=request.type.value,
            title=request.title,
            description=description,
            studios=list(studio_ids),
            year=year,
            topic_id=request.topic_id,
            registered_by=ctx.caller.user_id,
            created_at=ctx.runtime.clock.now(),
            state="pending" if pending else "confirmed",
            pending_studios=pending or None,
        )
    )
    assert achievement.id is not None
    if request.topic_id is not None:
        await service.topics.link_achievement(request.topic_id, achievement.id)
    lines = [
        f"已登记{achievement_label(achievement)}",
        f"完成工作室：{studio_list(achievement.studios, studios)}",
    ]
    if pending:
        await service.ask_confirmation(achievement, pending, studios)
        lines.append(
            f"待确认：涉及{studio_list(pending, studios)}，需其负责人或所在联盟负责人发送 /成果 {achievement.id} 确认，"
            "确认前不计入统计和报表（已通知对方）。"
        )
    if request.topic_id is not None:
        lines.append(f"来源课题：#T-{request.topic_id}")
    matches = await service.similar(
        f"{achievement.title}\n{achievement.description}",
        title=achievement.title,
        limit=3,
        exclude_achievement=achievement.id,
        exclude_topic=request.topic_id,
    )
    if matches:
        lines.append("查新初筛——最相似的已有成果和课题：")
        lines.extend(describe(matches))
    else:
        lines.append("查新初筛：未发现相似的已有成果或课题。")
    return "\n".join(lines)


async def _search(ctx: Context, words: str) -> str:
    if not words.strip():
        raise UsageError("请写上要查询的关键词。")
    service = service_of(ctx)
    matches = await service.similar(words, limit=10, minimum=0.05, kinds=("achievement",))
    if not matches:
        return f"成果库中没有找到与「{words}」相关的成果。"
    lines = [f"与「{words}」相关的成果（{len(matches)} 项）："]
    lines.extend(describe(matches))
    lines.append("发送 /成果 编号 查看详情。")
    return "\n".join(lines)


async def _check(ctx: Context, text: str) -> str:
    if not text.strip():
        raise UsageError("请写上成果名称或简介，例如 /成果 查新 盾构管片拼装错台控制方法。")
    matches = await service_of(ctx).similar(text, limit=5)
    lines = ["查新初筛（首创鉴定预审，仅供参考，正式鉴定以查新报告为准）："]
    if not matches:
        lines.append("成果库和课题中未发现相似内容。")
        return "\n".join(lines)
    best = matches[0].score
    if best >= STRONG:
        lines.append("结论：与已有成果或课题高度相似，首创性存疑，请先对比。")
    elif best >= NEAR_DUPLICATE:
        lines.append("结论：有相近的成果或课题，建议对比差异后再申报。")
    else:
        lines.append("结论：未发现高度相似的已有成果或课题。")
    lines.append("最相似的：")
    lines.extend(describe(matches))
    return "\n".join(lines)


async def _recent(ctx: Context) -> str:
    service = service_of(ctx)
    achievements = await service.achievements.all()
    if not achievements:
        return "成果库还是空的。工作室负责人可发送 /成果 登记 类型 名称 工作室 年份 登记成果。"
    lines = [f"创新成果库共 {len(achievements)} 项，最近登记的："]
    lines.extend(f"· {achievement_label(a)}" for a in achievements[:10])
    lines.append("发送 /成果 查询 关键词 查找，/成果 编号 查看详情。")
    return "\n".join(lines)


async def _details(ctx: Context, achievement_id: int) -> str:
    service = service_of(ctx)
    achievement = await service.achievements.get(achievement_id)
    if achievement is None:
        raise UserError(f"没有编号为 {achievement_id} 的成果。发送 /成果 查询 关键词 查找。")
    studios = await service.studio_names()
    lines = [
        achievement_label(achievement),
        f"完成工作室：{studio_list(achievement.studios, studios)}",
    ]
    if achievement.description:
        lines.append(f"简介：{achievement.description}")
    if achievement.topic_id is not None:
        topic = await service.topics.get(achievement.topic_id)
        if topic is not None:
            lines.append(f"来源课题：{topic_label(topic)}")
    if achievement.state == "pending":
        lines.append(
            f"状态：待{studio_list(achievement.pending_studios or [], studios)}确认，确认前不计入统计"
        )
    elif achievement.state == "withdrawn":
        lines.append("状态：已撤销，不计入统计")
    awards = await service.achievements.awards_of(achievement_id, withdrawn=True)
    for award in awards:
        gone = "（已撤销）" if award.state == "withdrawn" else ""
        lines.append(f"奖励：{award.year}年 {award.name} {award.amount:,} 元（奖励 #{award.id}）{gone}")
    lines.extend(await achievement_chain_lines(ctx.runtime, achievement))  # applications, benefit, patents
    history = await service.history(achievement_id, [a.id for a in awards if a.id is not None])
    if history:
        lines.append("修改记录：")
        lines.extend(f"· {line}" for line in history)
    return "\n".join(lines)


# -- awards ----------------------------------------------------------------------------------------


@router.command(
    "award",
    "奖励",
    summary="记录对成果或工作室的奖励（金额、年度）",
    usage=AWARD_USAGE,
    role=Role.ALLIANCE_LEAD,
)
async def handle_award(ctx: Context) -> str:
    """Record an award on an achievement (a number) or a studio (its id)."""
    return await _award(ctx, ctx.args)


async def _award(ctx: Context, args: str) -> str:
    _need(ctx, Role.ALLIANCE_LEAD, "奖励")
    action, tail = first_word(args)
    if action in _EDIT_WORDS or action in _DELETE_WORDS:
        return await _change_award(ctx, action, tail)
    tokens = args.split()
    if len(tokens) < 2:
        raise UserError(f"请写明奖励对象和金额。\n用法：{AWARD_USAGE}")
    target, amount_word, *rest = tokens
    try:
        amount = parse_amount(amount_word)
    except ValueError as exc:
        raise UserError(f"{exc}。\n用法：{AWARD_USAGE}") from None
    year = ctx.runtime.local_now().year
    if rest and parse_year(rest[0]) is not None:
        year = parse_year(rest.pop(0)) or year
    override = ""
    for index, word in enumerate(rest):
        if fold(word) in _OVERRIDE_WORDS:  # 特批 理由: an admin lets an award past the 奖励 budget
            override = " ".join(rest[index + 1 :]).strip() or "管理员特批"
            rest = rest[:index]
            break
    name = " ".join(rest)[:100]
    service = service_of(ctx)
    studios = await service.studio_names()
    achievement: Achievement | None = None
    studio: Studio | None = None
    number = fold(target).lstrip("#")
    if number.isdigit() and len(number) <= 9:
        achievement = await service.achievements.get(int(number))
        if achievement is None:
            raise UserError(f"没有编号为 {number} 的成果。")
        if achievement.state != "confirmed":
            state = "已撤销" if achievement.state == "withdrawn" else "尚待确认"
            raise UserError(f"{achievement_label(achievement)} {state}，不能记录奖励。")
        alliances = {studios[s].alliance_id for s in achievement.studios if s in studios}
        name = name or "成果奖励"
    else:
        studio = find_studio(target, studios)
        if studio is None:
            raise UserError(f"没有编号为 {target} 的工作室或成果。成果写编号（数字），工作室写编号如 T1。")
        alliances = {studio.alliance_id}
        name = name or "工作室奖励"
    if not ctx.caller.at_least(Role.ADMIN) and not alliances & set(ctx.caller.alliances):
        raise UserError("您只能为本联盟的成果或工作室记录奖励。")
    credited = achievement.studios if achievement else [studio.id] if studio else []
    funds = ctx.runtime.feature(FundService)
    try:  # an award is 奖励 spending in each alliance's ledger: its budget holds here too
        flags = await funds.check_award(
            ctx.caller,
            year=year,
            shares=await shares_of(ctx.runtime.store, amount, credited),
            override=override,
        )
    except Refusal as exc:
        raise UserError(str(exc).replace("未登记。", "未记录奖励。", 1)) from None
    award = await service.achievements.add_award(
        Award(
            achievement_id=achievement.id if achievement else None,
            studio_id=studio.id if studio else None,
            name=name,
            amount=amount,
            year=year,
            note=f"特批：{override}" if flags else "",
            created_by=ctx.caller.user_id,
            created_at=ctx.runtime.clock.now(),
        )
    )
    if flags:
        assert award.id is not None
        await funds.audit.record(
            entity="award",
            entity_id=award.id,
            action="create",
            actor=ctx.caller.user_id,
            reason=override,
            after={"amount": amount, "year": year, "name": name, "budget": flags},
            at=ctx.runtime.clock.now(),
        )
    what = (
        achievement_label(achievement) if achievement else f"{studio.name}（{studio.id}）" if studio else ""
    )
    return "\n".join([f"已记录奖励 #{award.id}：{year}年「{name}」{amount:,} 元 → {what}", *flags])


async def _change_award(ctx: Context, action: str, args: str) -> str:
    number, rest = first_word(args)
    number = number.lstrip("#")
    if not number.isdigit() or len(number) > 9:
        raise UserError(f"请写奖励编号，例如 /奖励 {action} 3 …（编号见 /奖励列表 或 /成果 编号）。")
    service = service_of(ctx)
    if action in _DELETE_WORDS:
        _, reason = parse_changes(rest)
        award = await service.delete_award(int(number), caller=ctx.caller, reason=reason)
        return (
            f"已撤销奖励 #{award.id}（{award.year}年「{award.name}」{award.amount:,} 元）。原因：{reason}。"
        )
    changes, reason = parse_changes(rest, single=("金额", "年份"))
    flags = await _award_edit_budget(ctx, int(number), changes, reason)
    award, what = await service.edit_award(int(number), changes, caller=ctx.caller, reason=reason)
    if flags:
        what = "；".join([what, *flags])
    return f"已修改奖励 #{award.id}：{what}。原因：{reason}。"


async def _award_edit_budget(
    ctx: Context, award_id: int, changes: dict[str, str], reason: str
) -> list[str]:
    """A changed amount or year of an award is checked against the 奖励 budget as a new award would be (its old
    share leaves the ledger first); ``特批`` in the reason is an admin's override."""
    service = service_of(ctx)
    award = await service.achievements.get_award(award_id)
    if award is None or award.state != ACTIVE or not ({"金额", "年份"} & set(changes)):
        return []  # the service gives the refusal of an unknown or withdrawn award
    try:
        amount = parse_amount(changes["金额"]) if "金额" in changes else award.amount
        year = parse_year(changes.get("年份", "")) or award.year
    except ValueError:
        return []  # the service says what is wrong with the value
    if award.achievement_id is not None:
        achievement = await service.achievements.get(award.achievement_id)
        credited = achievement.studios if achievement else []
    else:
        credited = [award.studio_id] if award.studio_id else []
    try:
        return await ctx.runtime.feature(FundService).check_award(
            ctx.caller,
            year=year,
            shares=await shares_of(ctx.runtime.store, amount, credited),
            replacing=award_id,
            override=reason if "特批" in reason else "",
        )
    except Refusal as exc:
        raise UserError(str(exc).replace("未登记。", "未修改奖励。", 1)) from None


@router.command(
    "awards", "奖励列表", summary="查看某年的奖励与激励", usage="/奖励列表 [年份]，例如 /奖励列表 2026"
)
async def handle_awards(ctx: Context) -> str:
    """A year's awards with the total paid."""
    word = ctx.args.strip()
    year = parse_year(word) if word else ctx.runtime.local_now().year
    if year is None:
        raise UsageError(f"年份「{word}」看不懂，请写四位年份，例如 2026。")
    service = service_of(ctx)
    awards = await service.achievements.awards(year=year)
    if not awards:
        return f"{year}年还没有记录奖励。"
    studios = await service.studio_names()
    total = sum(a.amount for a in awards)
    lines = [f"{year}年奖励 {len(awards)} 项，合计 {total:,} 元："]
    for award in awards:
        if award.achievement_id is not None:
            achievement = await service.achievements.get(award.achievement_id)
            what = achievement_label(achievement) if achievement else f"成果 #{award.achievement_id}"
        else:
            what = studio_list([award.studio_id or ""], studios)
        lines.append(f"· #{award.id} {award.name} {award.amount:,} 元 — {what}")
    return "\n".join(lines)


async def setup(bot: BotApp) -> None:
    """Register the achievements commands and the achievements service."""
    bot.runtime.add_feature(AchievementService(bot.runtime))
    bot.add_router(router)
