"""The funding ledger (经费台账): where an alliance's money came from and where it went, per year.

Income is recorded by source (公司补助, 牵头单位工会补助, 本单位行政资助, 专项支持), spending by category (会议组织,
研讨交流, 学习培训, 专项攻关, 奖励). The money is earmarked (专款专用): spending outside those categories, or past the
category's budget for the year, is refused with the reason unless an admin overrides it (giving a reason, kept on
the entry and in the audit trail).

Awards (``/奖励``) are money the alliance pays too. ``AWARD_LEDGER_RULE``: each award appears in an alliance's
ledger once, as 奖励 spending of that alliance's share (the reports' ``split_award`` rule) — either as the entry it
was linked to (``/经费 支出 奖励 … 奖励#N``: the entry takes the share as its amount) or, unlinked, as a line
derived from the awards table. So ledger, ``/统计``, charts and workbook count one award the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.core.dispatcher import Caller, Role
from bot.core.runtime import Runtime
from bot.services.achievements.amounts import parse_amount
from bot.store import Store
from bot.store.achievements import AchievementRepo
from bot.store.audit import AuditRepo
from bot.store.funds import DuplicateAwardLink, EntryKind, FundEntry, FundRepo
from bot.store.studios import Alliance, Studio

INCOME_SOURCES = ("公司补助", "牵头单位工会补助", "本单位行政资助", "专项支持")
SPENDING_CATEGORIES = ("会议组织", "研讨交流", "学习培训", "专项攻关", "奖励")
AWARD_CATEGORY = "奖励"
OTHER = "其他"  # where an admin's override puts spending outside the categories
MAX_AMOUNT = 100_000_000  # yuan per entry
AWARD_LEDGER_RULE = (
    "奖励支出口径：每项奖励在经费台账中只计一次——计入各联盟的金额为该奖励按获奖工作室平均分摊后属于该联盟的份额"
    "（与奖励统计同一口径）；已关联到台账支出的奖励以该支出计，未关联的由奖励登记自动列入。"
)
_SOURCE_ALIASES = {
    "公司": "公司补助",
    "公司拨款": "公司补助",
    "工会": "牵头单位工会补助",
    "工会补助": "牵头单位工会补助",
    "牵头单位工会": "牵头单位工会补助",
    "行政": "本单位行政资助",
    "行政资助": "本单位行政资助",
    "本单位行政": "本单位行政资助",
    "专项": "专项支持",
    "专项经费": "专项支持",
}
_CATEGORY_ALIASES = {
    "会议": "会议组织",
    "研讨": "研讨交流",
    "交流": "研讨交流",
    "培训": "学习培训",
    "学习": "学习培训",
    "攻关": "专项攻关",
    "奖金": "奖励",
    "激励": "奖励",
}
_DATE_FULL = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_DATE_SHORT = re.compile(r"^(\d{1,2})[-/.月](\d{1,2})日?$")


class Refusal(Exception):
    """A rule said no; the message (Chinese) says why."""


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def parse_yuan(word: str) -> int:
    """``20000``, ``2万``, ``1.5万元`` → yuan (one ledger entry, at most ``MAX_AMOUNT``); raises ``ValueError``
    with the reason in Chinese."""
    return parse_amount(word, most=MAX_AMOUNT, what="单笔金额")


def parse_day(word: str, *, today: date) -> date | None:
    """``2026-03-05``, ``2026/3/5``, ``2026年3月5日``, ``3月5日`` (this year), ``今天``, ``昨天`` → a date; None when
    the word is not a date at all; raises ``ValueError`` for an impossible one (2月30日)."""
    folded = _fold(word)
    if folded in ("今天", "今日"):
        return today
    if folded == "昨天":
        return date.fromordinal(today.toordinal() - 1)
    match = _DATE_FULL.match(folded)
    year, month, day = (
        (int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if match
        else (today.year, *map(int, m.groups()))
        if (m := _DATE_SHORT.match(folded))
        else (0, 0, 0)
    )
    if not year:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"日期「{word}」不存在") from None


def income_source(word: str) -> str | None:
    """An income source from its name or a short form; None when unknown."""
    folded = _fold(word)
    return folded if folded in INCOME_SOURCES else _SOURCE_ALIASES.get(folded)


def spending_category(word: str) -> str | None:
    """A spending category from its name or a short form; None when it is not an allowed category."""
    folded = _fold(word)
    return folded if folded in SPENDING_CATEGORIES else _CATEGORY_ALIASES.get(folded)


def entry_label(entry: FundEntry) -> str:
    """``支出 #3 学习培训 12,000 元（2026-03-05）``."""
    return f"{EntryKind(entry.kind).label} #{entry.id} {entry.category} {entry.amount:,} 元（{entry.on.isoformat()}）"


def entry_record(entry: FundEntry) -> dict[str, Any]:
    """The fields the audit trail keeps of an entry."""
    return {
        "alliance": entry.alliance_id,
        "year": entry.year,
        "kind": entry.kind,
        "category": entry.category,
        "amount": entry.amount,
        "date": entry.on.isoformat(),
        "note": entry.note,
        "activity_id": entry.activity_id,
        "topic_id": entry.topic_id,
        "award_id": entry.award_id,
        "override": entry.override,
        "voided": entry.voided,
    }


@dataclass(slots=True, frozen=True)
class LedgerLine:
    """One line of a ledger as shown: an entry, or an award derived from the awards table (``entry_id`` None)."""

    kind: EntryKind
    category: str
    amount: int
    on: date | None
    note: str
    entry_id: int | None = None
    award_id: int | None = None
    override: str = ""
    recorded_by: str = ""


@dataclass(slots=True)
class Ledger:
    """An alliance's year: its lines, budgets, and the sums the summary, the report and the checks share."""

    alliance: Alliance
    year: int
    lines: list[LedgerLine] = field(default_factory=list)
    budgets: dict[str, int] = field(default_factory=dict)

    def income_by_source(self) -> dict[str, int]:
        """Income per source (every source listed, others after)."""
        totals = dict.fromkeys(INCOME_SOURCES, 0)
        for line in self.lines:
            if line.kind is EntryKind.INCOME:
                totals[line.category] = totals.get(line.category, 0) + line.amount
        return totals

    def spending_by_category(self) -> dict[str, int]:
        """Spending per category (every category listed, an override's 其他 after)."""
        totals = dict.fromkeys(SPENDING_CATEGORIES, 0)
        for line in self.lines:
            if line.kind is EntryKind.SPENDING:
                totals[line.category] = totals.get(line.category, 0) + line.amount
        return totals

    @property
    def income(self) -> int:
        """Income of the year."""
        return sum(self.income_by_source().values())

    @property
    def spending(self) -> int:
        """Spending of the year."""
        return sum(self.spending_by_category().values())

    @property
    def balance(self) -> int:
        """Income less spending."""
        return self.income - self.spending


@dataclass(slots=True, frozen=True)
class Recorded:
    """What recording an entry did."""

    entry: FundEntry
    ledger: Ledger
    warning: str = ""


class FundService:
    """The funding ledger's rules: who may record, earmarking and budgets, edits with their audit trail."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.funds = FundRepo(runtime.store.sessions)
        self.achievements = AchievementRepo(runtime.store.sessions)
        self.audit = AuditRepo(runtime.store.sessions)

    # -- who ---------------------------------------------------------------------------------------

    @staticmethod
    def may_keep(caller: Caller, alliance_id: str) -> bool:
        """Alliance leads keep their alliances' ledgers, admins every one."""
        return caller.at_least(Role.ADMIN) or (
            caller.at_least(Role.ALLIANCE_LEAD) and alliance_id in caller.alliances
        )

    async def alliance_for(self, caller: Caller, word: str | None) -> Alliance:
        """The alliance named (id or name), or the caller's one alliance; refused when ambiguous or not theirs."""
        store = self.runtime.store
        if word:
            alliance = await store.alliances.find(word)
            if alliance is None:
                names = "、".join(a.name for a in await store.alliances.all())
                raise Refusal(f"没有找到联盟「{word}」。现有联盟：{names}。")
        elif len(caller.alliances) == 1:
            alliance = await store.alliances.get(caller.alliances[0])
            assert alliance is not None
        else:
            raise Refusal("请写明联盟，例如 @隧道。")
        if not self.may_keep(caller, alliance.id):
            raise Refusal(f"经费台账只有{alliance.name}的联盟负责人和管理员可以查看和登记。")
        return alliance

    # -- reading -----------------------------------------------------------------------------------

    async def ledger(self, alliance: Alliance, year: int) -> Ledger:
        """An alliance's ledger for a year: its entries, its unlinked awards' shares, its budgets."""
        return (await self.ledgers([alliance], year))[alliance.id]

    async def ledgers(self, alliances: Sequence[Alliance], year: int) -> dict[str, Ledger]:
        """The ledgers of several alliances."""
        return await build_ledgers(self.runtime.store, alliances, year)

    # -- writing -----------------------------------------------------------------------------------

    def _check_spending(
        self, ledger: Ledger, category: str, amount: int, *, override: str, caller_is_admin: bool
    ) -> str:
        """Refuse spending past its budget (unless an admin overrides); returns a warning to show, if any."""
        budget = ledger.budgets.get(category)
        if budget is None:
            return f"提示：{ledger.year}年「{category}」尚未设预算（/经费 预算 {category} 金额）。"
        spent = ledger.spending_by_category().get(category, 0)
        if spent + amount <= budget:
            return ""
        reason = (
            f"超出预算：{ledger.alliance.name}{ledger.year}年「{category}」预算 {budget:,} 元，已支出 {spent:,} 元，"
            f"本笔 {amount:,} 元后将达 {spent + amount:,} 元（超 {spent + amount - budget:,} 元）。"
        )
        if override and caller_is_admin:
            return f"管理员特批：{reason}"
        raise Refusal(
            f"未登记。{reason}专款专用，请先调整预算（/经费 预算 {category} 金额），或由管理员特批"
            "（在命令末尾加「特批 理由」）。"
        )

    async def record(
        self,
        caller: Caller,
        *,
        alliance: Alliance,
        kind: EntryKind,
        category_word: str,
        amount: int | None,
        on: date,
        note: str = "",
        activity_id: int | None = None,
        topic_id: int | None = None,
        award_id: int | None = None,
        override: str = "",
        message_key: str | None = None,
        source: str = "chat",
    ) -> Recorded:
        """Record one entry after the rules: source/category known, spending within its budget, an award
        linked once (its amount is the alliance's share), links that exist. Audited."""
        if not self.may_keep(caller, alliance.id):
            raise Refusal(f"只有{alliance.name}的联盟负责人和管理员可以登记经费。")
        if message_key is not None:
            done = await self.funds.by_message(message_key)
            if done is not None:
                return Recorded(done, await self.ledger(alliance, done.year))
        is_admin = caller.at_least(Role.ADMIN)
        if override and not is_admin:
            raise Refusal("只有管理员可以特批超范围或超预算的支出。")
        if kind is EntryKind.INCOME:
            category = income_source(category_word)
            if category is None:
                raise Refusal(f"不认识的经费来源「{category_word}」。来源：{'、'.join(INCOME_SOURCES)}。")
        else:
            found = spending_category(category_word)
            if found is None:
                if not (override and is_admin):
                    raise Refusal(
                        f"未登记。「{category_word}」不在经费允许的支出范围内（专款专用，只能用于"
                        f"{'、'.join(SPENDING_CATEGORIES)}）。确需列支的，请管理员特批（命令末尾加「特批 理由」）。"
                    )
                found = OTHER
                note = f"{category_word} {note}".strip()
            category = found
        if award_id is not None:
            if kind is not EntryKind.SPENDING or category != AWARD_CATEGORY:
                raise Refusal("关联奖励的只能是「奖励」类支出。")
            amount = await self._award_share(award_id, alliance)
            linked = await self.funds.by_award(award_id, alliance.id)
            if linked is not None:
                raise Refusal(
                    f"奖励 #{award_id} 已计入经费台账（{entry_label(linked)}），同一项奖励不重复登记。"
                )
        if amount is None:
            raise Refusal("请写明金额，例如 2万。")
        await self._check_links(activity_id=activity_id, topic_id=topic_id)
        ledger = await self.ledger(alliance, on.year)
        warning = ""
        # a linked award's share was already in the ledger as a derived line, checked against the budget when
        # the award was recorded (``check_award``): linking it moves no money
        if kind is EntryKind.SPENDING and award_id is None:
            if category == OTHER:
                warning = f"管理员特批：超出允许的支出范围（{override}）。"
            else:
                warning = self._check_spending(
                    ledger, category, amount, override=override, caller_is_admin=is_admin
                )
        entry = FundEntry(
            alliance_id=alliance.id,
            year=on.year,
            kind=kind.value,
            category=category,
            amount=amount,
            on=on,
            note=note[:500],
            recorded_by=caller.user_id,
            activity_id=activity_id,
            topic_id=topic_id,
            award_id=award_id,
            override=override if warning.startswith("管理员特批") else "",
            source=source,
            message_key=message_key,
            created_at=self.runtime.clock.now(),
        )
        try:
            entry = await self.funds.add(entry)
        except DuplicateAwardLink:
            raise Refusal(f"奖励 #{award_id} 已计入经费台账，同一项奖励不重复登记。") from None
        assert entry.id is not None
        await self.audit.record(
            entity="fund_entry",
            entity_id=entry.id,
            action="create",
            actor=caller.user_id,
            source=source,
            reason=entry.override,
            after=entry_record(entry),
            at=self.runtime.clock.now(),
        )
        return Recorded(entry, await self.ledger(alliance, on.year), warning)

    async def _award_share(self, award_id: int, alliance: Alliance) -> int:
        award = next((a for a in await self.achievements.awards() if a.id == award_id), None)
        if award is None:
            raise Refusal(f"没有编号为 {award_id} 的奖励（/奖励列表 查看）。")
        studios = {s.id: s for s in await self.runtime.store.studios.all()}
        for found_id, _name, shares in await award_shares(self.runtime.store, award.year, studios):
            if found_id == award_id:
                share = shares.get(alliance.id, 0)
                if not share:
                    raise Refusal(f"奖励 #{award_id} 没有{alliance.name}的份额，不能计入本联盟台账。")
                return share
        raise AssertionError("award of its own year not found")

    async def _check_links(self, *, activity_id: int | None, topic_id: int | None) -> None:
        if activity_id is not None:
            from bot.store.activities import ActivityRepo

            if await ActivityRepo(self.runtime.store.sessions).get(activity_id) is None:
                raise Refusal(f"没有编号为 {activity_id} 的活动。")
        if topic_id is not None:
            from bot.store.topics import TopicRepo

            if await TopicRepo(self.runtime.store.sessions).get(topic_id) is None:
                raise Refusal(f"没有编号为 T-{topic_id} 的课题。")

    async def check_award(
        self,
        caller: Caller | None,
        *,
        year: int,
        shares: dict[str, int],
        override: str = "",
        replacing: int | None = None,
    ) -> list[str]:
        """An award about to be recorded elsewhere (``/奖励``, an evaluation round) is 奖励 spending of each
        alliance's share (``AWARD_LEDGER_RULE``): past that alliance's 奖励 budget for the year it is refused
        with the reason, as ``/经费 支出 奖励`` would be, unless an admin overrides. ``caller`` None (a round
        closed by its job) flags instead of refusing. ``replacing`` is an award whose amount changes: its old
        share leaves the ledger first. Returns the flags and overrides to show and audit."""
        if override and caller is not None and not caller.at_least(Role.ADMIN):
            raise Refusal("只有管理员可以特批超预算的奖励。")
        alliances = {a.id: a for a in await self.runtime.store.alliances.all()}
        found = [alliances[a] for a, yuan in shares.items() if a in alliances and yuan]
        ledgers = await self.ledgers(found, year)
        flags = []
        for alliance in found:
            ledger = ledgers[alliance.id]
            if AWARD_CATEGORY not in ledger.budgets:
                continue
            if replacing is not None:
                ledger.lines = [line for line in ledger.lines if line.award_id != replacing]
            try:
                flag = self._check_spending(
                    ledger,
                    AWARD_CATEGORY,
                    shares[alliance.id],
                    override=override or ("评选结果" if caller is None else ""),
                    caller_is_admin=caller is None or caller.at_least(Role.ADMIN),
                )
            except Refusal as exc:
                raise Refusal(
                    str(exc).replace("（在命令末尾加「特批 理由」）", "（在 /奖励 命令末尾加「特批 理由」）")
                ) from None
            if flag:
                flags.append(flag.replace("管理员特批：", "超预算提醒：") if caller is None else flag)
        return flags

    async def set_budget(
        self, caller: Caller, *, alliance: Alliance, year: int, category_word: str, amount: int
    ) -> tuple[str, int | None, int]:
        """Set a category's budget for the year (an alliance lead or admin); audited. Returns the category and
        the amounts before (None: new) and after."""
        if not self.may_keep(caller, alliance.id):
            raise Refusal(f"只有{alliance.name}的联盟负责人和管理员可以设预算。")
        category = spending_category(category_word)
        if category is None:
            raise Refusal(
                f"「{category_word}」不是经费的支出类别，预算只能按 {'、'.join(SPENDING_CATEGORIES)} 设置。"
            )
        budget, before = await self.funds.set_budget(
            alliance_id=alliance.id,
            year=year,
            category=category,
            amount=amount,
            by=caller.user_id,
            at=self.runtime.clock.now(),
        )
        await self.audit.record(
            entity="fund_budget",
            entity_id=f"{alliance.id}:{year}:{category}",
            action="create" if before is None else "edit",
            actor=caller.user_id,
            before={} if before is None else {"amount": before},
            after={"amount": amount},
            at=self.runtime.clock.now(),
        )
        return category, before, budget.amount

    async def _own_entry(self, caller: Caller, entry_id: int) -> FundEntry:
        entry = await self.funds.get(entry_id)
        if entry is None or entry.voided:
            raise Refusal(f"没有编号为 #{entry_id} 的经费记录（或已撤销）。")
        if not self.may_keep(caller, entry.alliance_id):
            raise Refusal("只能修改本联盟的经费记录。")
        return entry

    async def void(self, caller: Caller, entry_id: int, *, reason: str) -> FundEntry:
        """Void an entry (it stays, marked, in the audit trail); its award link is released."""
        entry = await self._own_entry(caller, entry_id)
        before = entry_record(entry)
        entry.voided = True
        entry.award_id = None
        entry = await self.funds.save(entry)
        await self.audit.record(
            entity="fund_entry",
            entity_id=entry_id,
            action="delete",
            actor=caller.user_id,
            reason=reason,
            before=before,
            after=entry_record(entry),
            at=self.runtime.clock.now(),
        )
        return entry

    async def edit(
        self,
        caller: Caller,
        entry_id: int,
        *,
        amount: int | None = None,
        on: date | None = None,
        note: str | None = None,
        reason: str = "",
    ) -> FundEntry:
        """Change an entry's amount, date or note; a spending change is checked against its budget again."""
        entry = await self._own_entry(caller, entry_id)
        before = entry_record(entry)
        if amount is not None and entry.award_id is not None:
            raise Refusal("关联奖励的支出金额随奖励登记，不能单独修改。")
        if on is not None and on.year != entry.year:
            raise Refusal("日期不能改到另一年；请撤销后在新的年度重新登记。")
        if (
            amount is not None
            and entry.kind == EntryKind.SPENDING.value
            and entry.category in SPENDING_CATEGORIES
        ):
            alliance = await self.runtime.store.alliances.get(entry.alliance_id)
            assert alliance is not None
            ledger = await self.ledger(alliance, entry.year)
            ledger.lines = [line for line in ledger.lines if line.entry_id != entry.id]
            self._check_spending(
                ledger, entry.category, amount, override=reason, caller_is_admin=caller.at_least(Role.ADMIN)
            )
        if amount is not None:
            entry.amount = amount
        if on is not None:
            entry.on = on
        if note is not None:
            entry.note = note[:500]
        entry = await self.funds.save(entry)
        await self.audit.record(
            entity="fund_entry",
            entity_id=entry_id,
            action="edit",
            actor=caller.user_id,
            reason=reason,
            before=before,
            after=entry_record(entry),
            at=self.runtime.clock.now(),
        )
        return entry

    async def history(self, caller: Caller, entry_id: int) -> list[Any]:
        """An entry's audit trail."""
        entry = await self.funds.get(entry_id)
        if entry is None:
            raise Refusal(f"没有编号为 #{entry_id} 的经费记录。")
        if not self.may_keep(caller, entry.alliance_id):
            raise Refusal("只能查看本联盟的经费记录。")
        return await self.audit.history("fund_entry", entry_id)


async def build_ledgers(store: Store, alliances: Sequence[Alliance], year: int) -> dict[str, Ledger]:
    """The ledgers of several alliances for a year: entries, their unlinked awards' shares, budgets (the chat's
    summary and the year report read the same)."""
    funds = FundRepo(store.sessions)
    result = {a.id: Ledger(a, year) for a in alliances}
    for entry in await funds.entries(year=year):
        ledger = result.get(entry.alliance_id)
        if ledger is not None:
            ledger.lines.append(
                LedgerLine(
                    EntryKind(entry.kind),
                    entry.category,
                    entry.amount,
                    entry.on,
                    entry.note,
                    entry_id=entry.id,
                    award_id=entry.award_id,
                    override=entry.override,
                    recorded_by=entry.recorded_by,
                )
            )
    linked = await funds.linked_awards()
    studios = {s.id: s for s in await store.studios.all()}
    for award_id, name, shares in await award_shares(store, year, studios):
        for alliance_id, yuan in shares.items():
            if alliance_id in result and yuan and (award_id, alliance_id) not in linked:
                result[alliance_id].lines.append(
                    LedgerLine(
                        EntryKind.SPENDING,
                        AWARD_CATEGORY,
                        yuan,
                        None,
                        f"奖励登记：{name}",
                        award_id=award_id,
                    )
                )
    for budget in await funds.budgets(year=year):
        if budget.alliance_id in result:
            result[budget.alliance_id].budgets[budget.category] = budget.amount
    return result


async def award_shares(
    store: Store, year: int, studios: dict[str, Studio]
) -> list[tuple[int, str, dict[str, int]]]:
    """Each award of the year with its yuan per alliance by the reports' sharing rule."""
    achievements = AchievementRepo(store.sessions)
    from bot.services.reports import UNASSIGNED, split_award

    every = {a.id: a for a in await achievements.all()}
    shares = []
    for award in await achievements.awards(year=year):
        achievement = every.get(award.achievement_id) if award.achievement_id is not None else None
        if achievement is not None:
            credited: Iterable[str] = tuple(dict.fromkeys(achievement.studios))
        else:
            credited = (award.studio_id,) if award.studio_id else ()
        alliances = [studios[s].alliance_id if s in studios else UNASSIGNED for s in credited]
        assert award.id is not None
        shares.append((award.id, award.name or "奖励", split_award(award.amount, alliances)))
    return shares


async def shares_of(store: Store, amount: int, credited: Iterable[str]) -> dict[str, int]:
    """The yuan per alliance of an award of ``amount`` credited to these studios (``award_shares``' rule, for
    an award not stored yet)."""
    from bot.services.reports import UNASSIGNED, split_award

    studios = {s.id: s for s in await store.studios.all()}
    return split_award(
        amount, [studios[s].alliance_id if s in studios else UNASSIGNED for s in dict.fromkeys(credited)]
    )


def ledger_text(ledger: Ledger) -> str:
    """The summary ``/经费`` shows: income by source, spending by category against budgets, the balance."""
    lines = [f"【{ledger.alliance.name}{ledger.year}年经费】"]
    lines.append(f"收入合计 {ledger.income:,} 元：")
    lines.extend(f"· {source} {yuan:,} 元" for source, yuan in ledger.income_by_source().items() if yuan)
    lines.append(f"支出合计 {ledger.spending:,} 元：")
    for category, yuan in ledger.spending_by_category().items():
        budget = ledger.budgets.get(category)
        if not yuan and budget is None:
            continue
        if budget is None:
            lines.append(f"· {category} {yuan:,} 元（未设预算）")
        else:
            rate = f"，执行 {yuan / budget:.0%}" if budget else ""
            lines.append(f"· {category} {yuan:,} / 预算 {budget:,} 元{rate}")
    lines.append(f"结余 {ledger.balance:,} 元。")
    if any(line.kind is EntryKind.SPENDING and line.category == AWARD_CATEGORY for line in ledger.lines):
        lines.append(f"注：{AWARD_LEDGER_RULE}")
    return "\n".join(lines)


def now_date(runtime: Runtime) -> date:
    """Today in the bot's time zone."""
    moment: datetime = runtime.local_now()
    return moment.date()


# -- spreadsheet import ------------------------------------------------------------------------------

IMPORT_HEADER = ("联盟", "收支", "类别", "金额", "日期")
IMPORT_OPTIONAL = ("备注",)
_IMPORT_ALIASES = {"类型": "收支", "来源": "类别", "来源或类别": "类别", "金额(元)": "金额", "说明": "备注"}


@dataclass(slots=True)
class ImportResult:
    """What an import did: entries added (0 when any row was bad) and the bad rows (``第 N 行：…``); a preview
    (``apply=False``) keeps the checked entries with their row numbers; ``already`` when the same upload
    (``key``) was applied before."""

    added: int = 0
    errors: list[str] = field(default_factory=list)
    rows: list[tuple[int, FundEntry]] = field(default_factory=list)
    already: bool = False


async def import_file(
    runtime: Runtime,
    path: Any,
    *,
    actor: str,
    override: str = "",
    today: date | None = None,
    caller: Caller | None = None,
    apply: bool = True,
    key: str | None = None,
    source: str = "import",
) -> ImportResult:
    """Import ledger entries from ``.xlsx``/``.csv`` (header ``联盟, 收支, 类别, 金额, 日期[, 备注]``): every row
    is checked by the chat's rules (known source or category, budgets counting earlier rows of the file) and
    nothing is written unless all are good. ``override`` (an admin's) lets spending past a budget or outside
    the categories through, with that reason. ``caller`` (the command line: an admin named ``actor``) may only
    import into alliances they keep. ``apply=False`` checks without writing (the console's preview); ``key``
    makes applying an upload happen once (each row's entry is keyed ``key:row``). Raises ``ImportFileError``
    for an unreadable file."""
    from pathlib import Path

    from sqlalchemy.exc import IntegrityError

    from bot.services.achievements.spreadsheet import ImportFileError, _csv_table, _xlsx_table
    from bot.store.engine import unit_of_work

    path = Path(path)
    if not path.exists():
        raise ImportFileError(f"找不到文件 {path}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        table = _xlsx_table(path)
    elif suffix == ".csv":
        table = _csv_table(path)
    else:
        raise ImportFileError(f"不支持的文件类型「{path.suffix}」，请用 .xlsx 或 .csv。")
    expected = "、".join(IMPORT_HEADER) + "（备注可省略）"
    if not table:
        raise ImportFileError(f"文件是空的：第 1 行应为表头 {expected}。")
    header = [_IMPORT_ALIASES.get(h, h) for h in (_fold(str(v or "")).replace(" ", "") for v in table[0])]
    missing = [name for name in IMPORT_HEADER if name not in header]
    if missing:
        raise ImportFileError(f"第 1 行表头缺少：{'、'.join(missing)}。表头应为：{expected}。")
    columns = {name: header.index(name) for name in (*IMPORT_HEADER, *IMPORT_OPTIONAL) if name in header}
    caller = caller or Caller(actor, Role.ADMIN)
    if override and not caller.at_least(Role.ADMIN):
        raise Refusal("只有管理员可以特批超范围或超预算的支出。")
    service = runtime.feature(FundService)
    today = today or now_date(runtime)
    result = ImportResult()
    ledgers: dict[tuple[str, int], Ledger] = {}
    for number, values in enumerate(table[1:], start=2):
        if not any(v not in (None, "") and str(v).strip() for v in values):
            continue
        cells = {name: values[i] if i < len(values) else None for name, i in columns.items()}
        try:
            entry = await _import_row(service, cells, caller, ledgers, override=override, today=today)
        except (Refusal, ValueError) as exc:
            result.errors.append(f"第 {number} 行：{str(exc).removeprefix('未登记。').rstrip('。')}")
            continue
        entry.source = source
        entry.message_key = f"{key}:{number}"[:255] if key else None
        result.rows.append((number, entry))
    if result.errors or not apply or not result.rows:
        return result
    pending = [entry for _, entry in result.rows]
    first = pending[0].message_key
    if first is not None and await service.funds.by_message(first) is not None:
        result.already = True
        return result
    try:
        async with unit_of_work(runtime.store.engine):
            await service.funds.add_many(pending)
            for entry in pending:
                assert entry.id is not None
                await service.audit.record(
                    entity="fund_entry",
                    entity_id=entry.id,
                    action="create",
                    actor=actor,
                    source=source,
                    reason=entry.override,
                    after=entry_record(entry),
                    at=runtime.clock.now(),
                )
    except IntegrityError:
        if first is None or await service.funds.by_message(first) is None:
            raise
        result.already = True  # the same upload, applied by a concurrent request
        return result
    result.added = len(pending)
    return result


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date()
    return _fold(str(value))


async def _import_row(
    service: FundService,
    cells: dict[str, Any],
    caller: Caller,
    ledgers: dict[tuple[str, int], Ledger],
    *,
    override: str,
    today: date,
) -> FundEntry:
    word = _cell(cells.get("联盟"))
    alliance = await service.runtime.store.alliances.find(word) if word else None
    if alliance is None:
        raise Refusal(f"没有找到联盟「{word}」" if word else "没有写联盟")
    if not service.may_keep(caller, alliance.id):
        raise Refusal(f"只有{alliance.name}的联盟负责人和管理员可以登记该联盟的经费")
    kind_word = _cell(cells.get("收支"))
    kinds = {"收入": EntryKind.INCOME, "income": EntryKind.INCOME, "支出": EntryKind.SPENDING}
    kind = kinds.get(kind_word) or kinds.get(kind_word.lower())
    if kind is None:
        raise Refusal(f"收支应为「收入」或「支出」，不是「{kind_word}」")
    amount = parse_yuan(_cell(cells.get("金额")))
    day_word = _cell(cells.get("日期"))
    on = parse_day(day_word, today=today) if day_word else None
    if on is None:
        raise Refusal(f"日期「{day_word}」看不懂，请写 2026-03-05" if day_word else "没有写日期")
    category_word = _cell(cells.get("类别"))
    note = _cell(cells.get("备注"))[:500]
    key = (alliance.id, on.year)
    if key not in ledgers:
        ledgers[key] = await service.ledger(alliance, on.year)
    ledger = ledgers[key]
    reason = ""
    if kind is EntryKind.INCOME:
        category = income_source(category_word)
        if category is None:
            raise Refusal(f"不认识的经费来源「{category_word}」，来源：{'、'.join(INCOME_SOURCES)}")
    else:
        found = spending_category(category_word)
        if found is None:
            if not override:
                raise Refusal(
                    f"「{category_word}」不在经费允许的支出范围内（专款专用，只能用于{'、'.join(SPENDING_CATEGORIES)}）"
                )
            found, note, reason = OTHER, f"{category_word} {note}".strip(), override
        category = found
        if category != OTHER:
            warning = service._check_spending(
                ledger, category, amount, override=override, caller_is_admin=caller.at_least(Role.ADMIN)
            )
            reason = override if warning.startswith("管理员特批") else ""
    ledger.lines.append(LedgerLine(kind, category, amount, on, note))
    return FundEntry(
        alliance_id=alliance.id,
        year=on.year,
        kind=kind.value,
        category=category,
        amount=amount,
        on=on,
        note=note,
        recorded_by=caller.user_id,
        override=reason,
        source="import",
        created_at=service.runtime.clock.now(),
    )
