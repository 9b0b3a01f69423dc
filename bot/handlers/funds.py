"""The funding ledger in chat: ``/funds`` (``/经费``) — the year's summary, income, spending, budgets, the
entries, edits and their history. The rules (earmarking, budgets, awards counted once) are the funds service's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.cron import CronTrigger

from bot.core.dispatcher import Context, Role, Router, UsageError, UserError, first_word, fold
from bot.core.middleware import dedupe_key
from bot.core.runtime import Runtime
from bot.services.funds import (
    INCOME_SOURCES,
    SPENDING_CATEGORIES,
    FundService,
    Refusal,
    entry_label,
    ledger_text,
    now_date,
    parse_day,
    parse_yuan,
)
from bot.services.reports_funds import ReportDelivery
from bot.store.funds import EntryKind, FundRepo

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("经费与人才")

USAGE = (
    "/经费 [联盟] [年份] 查看收支；"
    f"/经费 收入 来源 金额 [日期] [@联盟] [备注]（来源：{'、'.join(INCOME_SOURCES)}）；"
    f"/经费 支出 类别 金额 [日期] [@联盟] [活动N|课题T-N|奖励N] [备注]（类别：{'、'.join(SPENDING_CATEGORIES)}）；"
    "/经费 预算 类别 金额 [年份] [@联盟]；/经费 明细 [联盟] [年份]；/经费 修改 N 金额|日期|备注 新值 [理由]；"
    "/经费 撤销 N [理由]；/经费 记录 N。管理员可在末尾加「特批 理由」越过范围或预算。"
    "例如 /经费 收入 公司补助 10万 2026-03-01 年度补助；/经费 支出 学习培训 8000 3月15日 活动12 盾构培训班"
)
_SUBCOMMANDS = {
    "收入": "income",
    "income": "income",
    "支出": "spending",
    "spend": "spending",
    "预算": "budget",
    "budget": "budget",
    "明细": "entries",
    "list": "entries",
    "撤销": "void",
    "作废": "void",
    "void": "void",
    "修改": "edit",
    "edit": "edit",
    "记录": "history",
    "history": "history",
}
_YEAR = re.compile(r"^((?:19|20)\d\d)年?$")
_ACTIVITY = re.compile(r"^活动#?(\d{1,9})$")
_TOPIC = re.compile(r"^(?:课题)?#?T-?(\d{1,9})$", re.IGNORECASE)
_AWARD = re.compile(r"^奖励#(\d{1,9})$|^奖励(\d{1,9})$")
_OVERRIDE = ("特批", "强制")


def service_of(ctx: Context) -> FundService:
    """The funds service."""
    return ctx.runtime.feature(FundService)


def _year(word: str) -> int | None:
    match = _YEAR.match(fold(word))
    return int(match.group(1)) if match else None


@dataclass(slots=True)
class EntryWords:
    """The parts of ``/经费 收入|支出 …``."""

    category: str
    amount: int | None = None
    on: date | None = None
    alliance: str | None = None
    activity_id: int | None = None
    topic_id: int | None = None
    award_id: int | None = None
    note: str = ""
    override: str = ""


def parse_entry(args: str, *, today: date) -> EntryWords:
    """``类别 金额 [日期] [@联盟] [活动N] [课题T-N] [奖励N] [备注…] [特批 理由…]``; raises ``UsageError``."""
    tokens = args.split()
    if not tokens:
        raise UsageError("请写明来源或类别和金额。")
    words = EntryWords(category=fold(tokens[0]))
    notes: list[str] = []
    rest = tokens[1:]
    for index, token in enumerate(rest):
        folded = fold(token)
        if folded in _OVERRIDE:
            words.override = " ".join(rest[index + 1 :]).strip() or "管理员特批"
            break
        if folded.startswith("@") and len(folded) > 1:
            words.alliance = folded[1:]
            continue
        if match := _ACTIVITY.match(folded):
            words.activity_id = int(match.group(1))
            continue
        if match := _TOPIC.match(folded):
            words.topic_id = int(match.group(1))
            continue
        if match := _AWARD.match(folded):
            words.award_id = int(match.group(1) or match.group(2))
            continue
        if words.on is None:
            try:
                day = parse_day(folded, today=today)
            except ValueError as exc:
                raise UsageError(f"{exc}。") from None
            if day is not None:
                words.on = day
                continue
        if words.amount is None and not notes and folded[:1].isdigit():
            try:
                words.amount = parse_yuan(folded)
            except ValueError as exc:
                raise UsageError(f"{exc}。") from None
            continue
        notes.append(token)
    words.note = " ".join(notes)
    return words


@router.command(
    "funds",
    "经费",
    summary="联盟经费台账：收支汇总、收入、支出、预算（专款专用）",
    usage=USAGE,
    role=Role.ALLIANCE_LEAD,
)
async def handle_funds(ctx: Context) -> str:
    """``/经费`` with a sub-command, or the summary of an alliance's year."""
    word, rest = first_word(ctx.args)
    sub = _SUBCOMMANDS.get(word.lower()) if word else None
    try:
        if sub == "income":
            return await _record(ctx, EntryKind.INCOME, rest)
        if sub == "spending":
            return await _record(ctx, EntryKind.SPENDING, rest)
        if sub == "budget":
            return await _budget(ctx, rest)
        if sub == "entries":
            return await _entries(ctx, rest)
        if sub == "void":
            return await _void(ctx, rest)
        if sub == "edit":
            return await _edit(ctx, rest)
        if sub == "history":
            return await _history(ctx, rest)
        return await _summary(ctx, ctx.args)
    except Refusal as exc:
        raise UserError(str(exc)) from None


async def _scope(ctx: Context, args: str) -> tuple[str | None, int]:
    year = ctx.runtime.local_now().year
    alliance_word = None
    for word in args.split():
        if _year(word) is not None:
            year = _year(word) or year
        elif alliance_word is None:
            alliance_word = fold(word).lstrip("@")
        else:
            raise UsageError(f"「{word}」既不是年份也不是联盟。")
    return alliance_word, year


async def _summary(ctx: Context, args: str) -> str:
    service = service_of(ctx)
    alliance_word, year = await _scope(ctx, args)
    if alliance_word is None and ctx.caller.at_least(Role.ADMIN) and len(ctx.caller.alliances) != 1:
        alliances = await ctx.runtime.store.alliances.all()
        ledgers = await service.ledgers(alliances, year)
        lines = [f"【{year}年各联盟经费】"]
        for ledger in ledgers.values():
            lines.append(
                f"· {ledger.alliance.name}：收入 {ledger.income:,} 元，支出 {ledger.spending:,} 元，结余 {ledger.balance:,} 元"
            )
        lines.append("发送 /经费 联盟 年份 查看一个联盟的明细。")
        return "\n".join(lines)
    alliance = await service.alliance_for(ctx.caller, alliance_word)
    return ledger_text(await service.ledger(alliance, year))


async def _record(ctx: Context, kind: EntryKind, args: str) -> str:
    service = service_of(ctx)
    today = now_date(ctx.runtime)
    words = parse_entry(args, today=today)
    alliance = await service.alliance_for(ctx.caller, words.alliance)
    recorded = await service.record(
        ctx.caller,
        alliance=alliance,
        kind=kind,
        category_word=words.category,
        amount=words.amount,
        on=words.on or today,
        note=words.note,
        activity_id=words.activity_id,
        topic_id=words.topic_id,
        award_id=words.award_id,
        override=words.override,
        message_key=dedupe_key(ctx.event),
    )
    entry, ledger = recorded.entry, recorded.ledger
    lines = [f"已登记{alliance.name}{entry_label(entry)}" + (f"：{entry.note}" if entry.note else "")]
    links = []
    if entry.activity_id is not None:
        links.append(f"活动 #{entry.activity_id}")
    if entry.topic_id is not None:
        links.append(f"课题 #T-{entry.topic_id}")
    if entry.award_id is not None:
        links.append(f"奖励 #{entry.award_id}（按本联盟分摊份额计）")
    if links:
        lines.append("关联：" + "、".join(links))
    if recorded.warning:
        lines.append(recorded.warning)
    if kind is EntryKind.SPENDING:
        spent = ledger.spending_by_category().get(entry.category, 0)
        budget = ledger.budgets.get(entry.category)
        lines.append(
            f"{ledger.year}年「{entry.category}」已支出 {spent:,} 元"
            + (f" / 预算 {budget:,} 元" if budget is not None else "")
            + f"；结余 {ledger.balance:,} 元。"
        )
    else:
        lines.append(f"{ledger.year}年收入合计 {ledger.income:,} 元，结余 {ledger.balance:,} 元。")
    return "\n".join(lines)


async def _budget(ctx: Context, args: str) -> str:
    tokens = args.split()
    if len(tokens) < 2:
        raise UsageError("请写明类别和金额，例如 /经费 预算 学习培训 5万。")
    category, amount_word, *rest = tokens
    try:
        amount = parse_yuan(amount_word)
    except ValueError as exc:
        raise UsageError(f"{exc}。") from None
    year = ctx.runtime.local_now().year
    alliance_word = None
    for word in rest:
        if _year(word) is not None:
            year = _year(word) or year
        elif fold(word).startswith("@"):
            alliance_word = fold(word)[1:]
        else:
            raise UsageError(f"「{word}」看不懂：预算后面只能写年份和 @联盟。")
    service = service_of(ctx)
    alliance = await service.alliance_for(ctx.caller, alliance_word)
    name, before, after = await service.set_budget(
        ctx.caller, alliance=alliance, year=year, category_word=category, amount=amount
    )
    ledger = await service.ledger(alliance, year)
    spent = ledger.spending_by_category().get(name, 0)
    change = "设为" if before is None else f"由 {before:,} 元改为"
    return f"{alliance.name}{year}年「{name}」预算{change} {after:,} 元；已支出 {spent:,} 元。"


async def _entries(ctx: Context, args: str) -> str:
    service = service_of(ctx)
    alliance_word, year = await _scope(ctx, args)
    alliance = await service.alliance_for(ctx.caller, alliance_word)
    ledger = await service.ledger(alliance, year)
    if not ledger.lines:
        return f"{alliance.name}{year}年还没有经费记录。"
    lines = [f"{alliance.name}{year}年经费明细（{len(ledger.lines)} 笔）："]
    for line in sorted(ledger.lines, key=lambda item: (item.on or date(year, 12, 31), item.entry_id or 0)):
        number = f"#{line.entry_id}" if line.entry_id is not None else f"奖励#{line.award_id}"
        day = line.on.isoformat() if line.on else "—"
        extra = f"（特批：{line.override}）" if line.override else ""
        lines.append(
            f"· {number} {day} {line.kind.label} {line.category} {line.amount:,} 元 {line.note}{extra}".rstrip()
        )
    return "\n".join(lines)


def _entry_number(word: str) -> int:
    number = fold(word).lstrip("#")
    if not (number.isdigit() and len(number) <= 9):
        raise UsageError("请写经费记录的编号，例如 /经费 撤销 3。")
    return int(number)


async def _void(ctx: Context, args: str) -> str:
    word, reason = first_word(args)
    if not word:
        raise UsageError("请写经费记录的编号。")
    entry = await service_of(ctx).void(ctx.caller, _entry_number(word), reason=reason)
    return (
        f"已撤销{entry_label(entry)}"
        + (f"，理由：{reason}" if reason else "")
        + "。修改记录可用 /经费 记录 编号 查看。"
    )


async def _edit(ctx: Context, args: str) -> str:
    tokens = args.split(maxsplit=2)
    if len(tokens) < 3:
        raise UsageError(
            "请写编号、要改的项（金额、日期或备注）和新值，例如 /经费 修改 3 金额 9000 发票更正。"
        )
    number, what, rest = _entry_number(tokens[0]), fold(tokens[1]), tokens[2]
    service = service_of(ctx)
    if what == "备注":
        entry = await service.edit(ctx.caller, number, note=rest)
    else:
        value, reason = first_word(rest)
        if what == "金额":
            try:
                amount = parse_yuan(value)
            except ValueError as exc:
                raise UsageError(f"{exc}。") from None
            entry = await service.edit(ctx.caller, number, amount=amount, reason=reason)
        elif what == "日期":
            try:
                day = parse_day(value, today=now_date(ctx.runtime))
            except ValueError as exc:
                raise UsageError(f"{exc}。") from None
            if day is None:
                raise UsageError(f"日期「{value}」看不懂，请写 2026-03-05 或 3月5日。")
            entry = await service.edit(ctx.caller, number, on=day, reason=reason)
        else:
            raise UsageError(f"只能修改金额、日期或备注，「{what}」不行。")
    return f"已修改：{entry_label(entry)}" + (f"：{entry.note}" if entry.note else "")


_ACTIONS = {"create": "登记", "edit": "修改", "delete": "撤销"}


async def _history(ctx: Context, args: str) -> str:
    word, _ = first_word(args)
    if not word:
        raise UsageError("请写经费记录的编号。")
    number = _entry_number(word)
    entries = await service_of(ctx).history(ctx.caller, number)
    lines = [f"经费记录 #{number} 的修改记录："]
    tz = ctx.runtime.settings.tz
    for entry in entries:
        when = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        changes = "；".join(
            f"{key} {entry.before.get(key)} → {entry.after.get(key)}"
            for key in entry.after
            if entry.before and entry.before.get(key) != entry.after.get(key)
        )
        detail = changes or f"{entry.after.get('category')} {entry.after.get('amount')} 元"
        reason = f"（理由：{entry.reason}）" if entry.reason else ""
        lines.append(f"· {when} {entry.actor} {_ACTIONS.get(entry.action, entry.action)}：{detail}{reason}")
    return "\n".join(lines)


REPORT_USAGE = (
    "/报表 [年份] [联盟]，例如 /报表 2026、/报表 2026 隧道：年度报表（XLSX 和图表）以企业微信文件发给您"
)


@router.command(
    "report",
    "报表",
    summary="年度报表：XLSX 工作簿和图表发到您的企业微信",
    usage=REPORT_USAGE,
    role=Role.ALLIANCE_LEAD,
)
async def handle_report(ctx: Context) -> str:
    """Build the year report and send it to the caller as WeCom files (the workbook and an overview chart)."""
    delivery = ctx.runtime.feature(ReportDelivery)
    alliance_word, year = await _scope(ctx, ctx.args)
    try:
        alliance_id = await delivery.scope_for(ctx.caller, alliance_word)
    except Refusal as exc:
        raise UserError(str(exc)) from None
    sent = await delivery.send(
        ctx.caller, year=year, alliance_id=alliance_id, message_key=dedupe_key(ctx.event)
    )
    return (
        f"{sent.summary}\n已生成报表，正在通过企业微信应用发给您：工作簿「{sent.workbook}」和图表「{sent.chart}」"
        "（请在与「工作室联盟助手」应用的会话中查收）。"
    )


async def setup(bot: BotApp) -> None:
    """Register ``/经费``, ``/报表``, the funds service and the report delivery."""
    bot.runtime.add_feature(FundService(bot.runtime))
    bot.runtime.add_feature(ReportDelivery(bot.runtime))
    bot.add_router(router)
    bot.jobs.add(
        "prune-report-files",
        CronTrigger(hour=3, minute=29, timezone=bot.settings.tz),
        prune_report_files,
        description="清理已发出的报表文件",
    )


async def prune_report_files(runtime: Runtime, now: datetime) -> str:
    """Drop the report files of ``/报表`` older than a week (sent, or given up on, long before)."""
    removed = await FundRepo(runtime.store.sessions).prune_files(now - timedelta(days=7))
    return f"removed {removed} report files"
