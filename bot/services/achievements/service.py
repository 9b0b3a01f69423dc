"""The achievements feature's logic: the novelty lookups over achievements and topics."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.core.dispatcher import Caller, Role, UserError, fold
from bot.core.runtime import Runtime
from bot.services.achievements.amounts import parse_amount
from bot.services.achievements.novelty import Document, Match, rank
from bot.services.topics import topic_label
from bot.store.achievements import (
    ACTIVE,
    CONFIRMED,
    PENDING,
    TYPE_NAMES,
    WITHDRAWN,
    Achievement,
    AchievementRepo,
    AchievementType,
    Award,
)
from bot.store.audit import AuditRepo, changed_fields
from bot.store.studios import Studio
from bot.store.topics import TopicRepo


def achievement_label(achievement: Achievement) -> str:
    """``成果 #5 发明专利「…」（2025）``."""
    return f"成果 #{achievement.id} {achievement.type}「{achievement.title}」（{achievement.year}）"


# -- edit, withdraw and confirm, with the audit trail ----------------------------------------------

ACHIEVEMENT_FIELDS = {
    "类型": "type",
    "名称": "title",
    "年份": "year",
    "简介": "description",
    "工作室": "studios",
}
AWARD_FIELDS = {"金额": "amount", "年份": "year", "名称": "name", "奖项": "name", "备注": "note"}
FIELD_LABELS = {
    "type": "类型",
    "title": "名称",
    "year": "年份",
    "description": "简介",
    "studios": "工作室",
    "amount": "金额",
    "name": "名称",
    "note": "备注",
    "state": "状态",
    "pending_studios": "待确认工作室",
}
STATE_LABELS = {CONFIRMED: "已确认", PENDING: "待确认", WITHDRAWN: "已撤销", ACTIVE: "有效"}
MAX_REASON = 500


def studio_alliances(studio_ids: Iterable[str], studios: dict[str, Studio]) -> set[str]:
    """The alliances of the studios (unknown ids left out)."""
    return {studios[s].alliance_id for s in studio_ids if s in studios}


def may_change_achievement(caller: Caller, achievement: Achievement, studios: dict[str, Studio]) -> bool:
    """An admin; an alliance lead of one of its studios' alliances; the lead of one of its studios."""
    if caller.at_least(Role.ADMIN):
        return True
    if set(caller.alliances) & studio_alliances(achievement.studios, studios):
        return True
    return bool(set(caller.studios) & set(achievement.studios))


def may_confirm_for(caller: Caller, studio_id: str, studios: dict[str, Studio]) -> bool:
    """Whether the caller may confirm a credit for one studio: its lead, an alliance lead of it, an admin."""
    if caller.at_least(Role.ADMIN) or studio_id in caller.studios:
        return True
    studio = studios.get(studio_id)
    return studio is not None and studio.alliance_id in caller.alliances


def describe_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``金额 20000→2000；名称 …→…`` for the audit lines."""
    parts = []
    for key, (old, new) in changed_fields(before, after).items():
        label = FIELD_LABELS.get(key, key)
        if key == "state":
            old, new = STATE_LABELS.get(str(old), old), STATE_LABELS.get(str(new), new)
        if isinstance(old, list):
            old = "、".join(map(str, old)) or "—"
        if isinstance(new, list):
            new = "、".join(map(str, new)) or "—"
        parts.append(
            f"{label} {old if old not in (None, '') else '—'}→{new if new not in (None, '') else '—'}"
        )
    return "；".join(parts)


class AchievementChanges:
    """Edits, withdrawals and confirmations of achievements and awards, each with an audit entry; the role
    checks live here so the chat commands and the web console share them."""

    runtime: Runtime
    achievements: AchievementRepo
    audit: AuditRepo

    async def studio_names(self) -> dict[str, Studio]:
        """Every studio by id."""
        return {s.id: s for s in await self.runtime.store.studios.all()}

    async def _achievement(self, achievement_id: int) -> Achievement:
        achievement = await self.achievements.get(achievement_id)
        if achievement is None:
            raise UserError(f"没有编号为 {achievement_id} 的成果。")
        return achievement

    async def _award(self, award_id: int) -> Award:
        award = await self.achievements.get_award(award_id)
        if award is None:
            raise UserError(f"没有编号为 {award_id} 的奖励。发送 /奖励列表 查看。")
        return award

    def _reason(self, reason: str) -> str:
        reason = reason.strip()
        if not reason:
            raise UserError("请写明修改原因，例如 原因=金额录入错误。修改记录会留档。")
        return reason[:MAX_REASON]

    async def edit(
        self,
        achievement_id: int,
        changes: dict[str, str],
        *,
        caller: Caller,
        reason: str,
        source: str = "chat",
    ) -> tuple[Achievement, str]:
        """Change an achievement's fields (Chinese field names → text); returns it and the change's text."""
        reason = self._reason(reason)
        achievement = await self._achievement(achievement_id)
        studios = await self.studio_names()
        if not may_change_achievement(caller, achievement, studios):
            raise UserError("只有成果所属工作室的负责人、其联盟负责人或管理员可以修改这项成果。")
        if achievement.state == WITHDRAWN:
            raise UserError(f"{achievement_label(achievement)} 已撤销，不能再修改。")
        values: dict[str, Any] = {}
        for word, text in changes.items():
            key = ACHIEVEMENT_FIELDS.get(word)
            if key is None:
                raise UserError(f"不能修改「{word}」。可改的字段：{'、'.join(ACHIEVEMENT_FIELDS)}。")
            values[key] = self._achievement_value(key, text, studios)
        if not values:
            raise UserError("请写明要改的字段，例如 名称=新名称 或 年份=2025。")
        if "studios" in values and not caller.at_least(Role.ADMIN):
            reach = [s for s in values["studios"] if not may_confirm_for(caller, s, studios)]
            if reach:
                raise UserError(
                    f"您不能把成果记到{'、'.join(reach)}名下：请由其负责人或联盟负责人修改，或由管理员修改。"
                )
        before = {k: getattr(achievement, k) for k in values}
        after = dict(values)
        if not changed_fields(before, after):
            raise UserError("新值和原来的一样，没有修改。")
        await self.achievements.update(achievement, values)
        await self.audit.record(
            entity="achievement",
            entity_id=achievement_id,
            action="edit",
            actor=caller.user_id,
            source=source,
            reason=reason,
            before=before,
            after=after,
            at=self.runtime.clock.now(),
        )
        return achievement, describe_change(before, after)

    def _achievement_value(self, key: str, text: str, studios: dict[str, Studio]) -> Any:
        text = text.strip()
        if not text:
            raise UserError(f"「{FIELD_LABELS[key]}」的新值是空的。")
        if key == "type":
            try:
                return AchievementType.parse(text).value
            except ValueError:
                raise UserError(f"不认识的成果类型「{text}」，可用：{TYPE_NAMES}。") from None
        if key == "year":
            return self._year(text)
        if key == "studios":
            ids = []
            for part in re.split(r"[、,，;；\s]+", fold(text)):
                if not part:
                    continue
                match = next(
                    (s for s in studios.values() if s.id.lower() == part.lower() or s.name == part), None
                )
                if match is None:
                    raise UserError(f"没有编号为 {part} 的工作室。")
                ids.append(match.id)
            return list(dict.fromkeys(ids))
        if key == "title" and len(text) > 300:
            raise UserError("成果名称请不超过 300 字。")
        return text

    def _year(self, text: str) -> int:
        folded = fold(text).removesuffix("年")
        now = self.runtime.local_now().year
        if not folded.isdigit() or not 1980 <= int(folded) <= now + 1:
            raise UserError(f"年份「{text}」不对，请写 1980 到明年之间的四位年份。")
        return int(folded)

    async def delete(
        self, achievement_id: int, *, caller: Caller, reason: str, source: str = "chat"
    ) -> tuple[Achievement, list[Award]]:
        """Withdraw (撤销) an achievement and the awards on it; it stays on record, counted nowhere."""
        reason = self._reason(reason)
        achievement = await self._achievement(achievement_id)
        studios = await self.studio_names()
        if not may_change_achievement(caller, achievement, studios):
            raise UserError("只有成果所属工作室的负责人、其联盟负责人或管理员可以撤销这项成果。")
        if achievement.state == WITHDRAWN:
            raise UserError(f"{achievement_label(achievement)} 已经撤销过了。")
        now = self.runtime.clock.now()
        before = {"state": achievement.state}
        await self.achievements.update(achievement, {"state": WITHDRAWN})
        await self.audit.record(
            entity="achievement",
            entity_id=achievement_id,
            action="delete",
            actor=caller.user_id,
            source=source,
            reason=reason,
            before=before,
            after={"state": WITHDRAWN},
            at=now,
        )
        awards = await self.achievements.awards_of(achievement_id)
        for award in awards:
            await self.achievements.update(award, {"state": WITHDRAWN})
            await self.audit.record(
                entity="award",
                entity_id=award.id or 0,
                action="delete",
                actor=caller.user_id,
                source=source,
                reason=f"随成果 #{achievement_id} 撤销：{reason}",
                before={"state": ACTIVE},
                after={"state": WITHDRAWN},
                at=now,
            )
        return achievement, awards

    async def _award_alliances(self, award: Award, studios: dict[str, Studio]) -> set[str]:
        if award.achievement_id is not None:
            achievement = await self.achievements.get(award.achievement_id)
            return studio_alliances(achievement.studios if achievement else [], studios)
        return studio_alliances([award.studio_id or ""], studios)

    async def _check_award(self, award: Award, caller: Caller, studios: dict[str, Studio]) -> None:
        if caller.at_least(Role.ADMIN):
            return
        if not caller.at_least(Role.ALLIANCE_LEAD) or not set(caller.alliances) & await self._award_alliances(
            award, studios
        ):
            raise UserError("只有本联盟的联盟负责人或管理员可以修改、撤销这项奖励。")

    async def may_change_award(self, award: Award, caller: Caller) -> bool:
        """Whether ``caller`` may edit or withdraw ``award`` (the check ``edit_award`` and ``delete_award`` make)."""
        try:
            await self._check_award(award, caller, await self.studio_names())
        except UserError:
            return False
        return True

    async def edit_award(
        self, award_id: int, changes: dict[str, str], *, caller: Caller, reason: str, source: str = "chat"
    ) -> tuple[Award, str]:
        """Change an award's amount, year, name or note; returns it and the change's text."""
        reason = self._reason(reason)
        award = await self._award(award_id)
        studios = await self.studio_names()
        await self._check_award(award, caller, studios)
        if award.state == WITHDRAWN:
            raise UserError(f"奖励 #{award_id} 已撤销，不能再修改。")
        values: dict[str, Any] = {}
        for word, text in changes.items():
            key = AWARD_FIELDS.get(word)
            if key is None:
                raise UserError(f"不能修改「{word}」。可改的字段：金额、年份、名称、备注。")
            if key == "amount":
                try:
                    values[key] = parse_amount(text)
                except ValueError as exc:
                    raise UserError(f"{exc}。") from None
            elif key == "year":
                values[key] = self._year(text)
            else:
                values[key] = text.strip()[:100]
        if not values:
            raise UserError("请写明要改的字段，例如 金额=20000。")
        before = {k: getattr(award, k) for k in values}
        if not changed_fields(before, values):
            raise UserError("新值和原来的一样，没有修改。")
        await self.achievements.update(award, values)
        await self.audit.record(
            entity="award",
            entity_id=award_id,
            action="edit",
            actor=caller.user_id,
            source=source,
            reason=reason,
            before=before,
            after=dict(values),
            at=self.runtime.clock.now(),
        )
        return award, describe_change(before, values)

    async def delete_award(
        self, award_id: int, *, caller: Caller, reason: str, source: str = "chat"
    ) -> Award:
        """Withdraw (撤销) an award: kept on record, counted nowhere."""
        reason = self._reason(reason)
        award = await self._award(award_id)
        studios = await self.studio_names()
        await self._check_award(award, caller, studios)
        if award.state == WITHDRAWN:
            raise UserError(f"奖励 #{award_id} 已经撤销过了。")
        await self.achievements.update(award, {"state": WITHDRAWN})
        await self.audit.record(
            entity="award",
            entity_id=award_id,
            action="delete",
            actor=caller.user_id,
            source=source,
            reason=reason,
            before={"state": ACTIVE},
            after={"state": WITHDRAWN},
            at=self.runtime.clock.now(),
        )
        return award

    def needs_confirmation(
        self,
        caller: Caller,
        studio_ids: Iterable[str],
        studios: dict[str, Studio],
        *,
        team: set[str] | None = None,
        topic_owner: str | None = None,
    ) -> list[str]:
        """The studios whose lead (or alliance lead) must confirm before an achievement the caller registers is
        counted: those credited that the caller does not answer for, and the topic's own studio when the caller
        is not on its team. A lead on a topic's team credits the team's studios; an admin credits anyone."""
        if caller.at_least(Role.ADMIN):
            return []
        ids = list(dict.fromkeys(studio_ids))
        if team is not None and set(ids) <= team and team & set(caller.studios):
            return []
        outside = [s for s in ids if not may_confirm_for(caller, s, studios)]
        if (
            topic_owner is not None
            and not (team or set()) & set(caller.studios)
            and not may_confirm_for(caller, topic_owner, studios)
            and topic_owner not in outside
        ):
            outside.append(topic_owner)
        return outside

    async def ask_confirmation(
        self, achievement: Achievement, pending: list[str], studios: dict[str, Studio]
    ) -> None:
        """Ask the leads of the studios still to confirm (one message per studio, keyed)."""
        for studio_id in pending:
            studio = studios.get(studio_id)
            if studio is None:
                continue
            await self.runtime.outbox.notify_user(
                studio.lead_userid,
                f"【成果待确认】{achievement_label(achievement)} 登记在{studio.name}名下（登记人 "
                f"{achievement.registered_by}）。属实请发送 /成果 {achievement.id} 确认；有误请联系登记人或联盟负责人。",
                dedupe_key=f"achievement:{achievement.id}:confirm:{studio_id}",
            )

    async def confirm(
        self, achievement_id: int, *, caller: Caller, source: str = "chat"
    ) -> tuple[Achievement, list[str]]:
        """Confirm a pending credit for the studios the caller answers for; returns it and who confirmed.
        When no studio is left to confirm, the achievement is counted."""
        achievement = await self._achievement(achievement_id)
        if achievement.state != PENDING:
            raise UserError(
                f"{achievement_label(achievement)} 不需要确认（{STATE_LABELS.get(achievement.state, achievement.state)}）。"
            )
        studios = await self.studio_names()
        waiting = list(achievement.pending_studios or [])
        mine = [s for s in waiting if may_confirm_for(caller, s, studios)]
        if not mine:
            names = "、".join(studios[s].name if s in studios else s for s in waiting)
            raise UserError(f"需要由{names}的负责人或其联盟负责人确认，您不在其中。")
        left = [s for s in waiting if s not in mine]
        values: dict[str, Any] = {"pending_studios": left or None}
        if not left:
            values["state"] = CONFIRMED
        before = {"state": achievement.state, "pending_studios": waiting}
        await self.achievements.update(achievement, values)
        await self.audit.record(
            entity="achievement",
            entity_id=achievement_id,
            action="confirm",
            actor=caller.user_id,
            source=source,
            reason=f"确认 {'、'.join(mine)}",
            before=before,
            after={"state": achievement.state, "pending_studios": left},
            at=self.runtime.clock.now(),
        )
        return achievement, mine


class AchievementService(AchievementChanges):
    """The achievements database and its awards, and the novelty check over achievements and topics."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.achievements = AchievementRepo(runtime.store.sessions)
        self.topics = TopicRepo(runtime.store.sessions)
        self.audit = AuditRepo(runtime.store.sessions)

    async def corpus(
        self, *, exclude_achievement: int | None = None, exclude_topic: int | None = None
    ) -> list[Document]:
        """Achievements and topics (lapsed ones too: an idea tried before is worth knowing) as documents."""
        documents = [
            Document("achievement", a.id, achievement_label(a), a.title, a.description)
            for a in await self.achievements.all()
            if a.id is not None and a.id != exclude_achievement
        ]
        documents.extend(
            Document(
                "topic",
                t.id,
                f"课题 {topic_label(t)}（{t.state.label}）",
                t.title,
                f"{t.description}\n{t.conclusion}".strip(),
            )
            for t in await self.topics.all()
            if t.id is not None and t.id != exclude_topic
        )
        return documents

    async def similar(
        self,
        text: str,
        *,
        title: str | None = None,
        limit: int = 5,
        minimum: float | None = None,
        exclude_achievement: int | None = None,
        exclude_topic: int | None = None,
        kinds: tuple[str, ...] = ("achievement", "topic"),
    ) -> list[Match]:
        """The achievements and/or topics most similar to ``text``."""
        documents = [
            d
            for d in await self.corpus(exclude_achievement=exclude_achievement, exclude_topic=exclude_topic)
            if d.kind in kinds
        ]
        if minimum is None:
            return rank(text, documents, title=title, limit=limit)
        return rank(text, documents, title=title, limit=limit, minimum=minimum)

    async def history(self, achievement_id: int, award_ids: list[int]) -> list[str]:
        """The audit trail of an achievement and its awards, oldest first, one line per change."""
        from bot.services.studios import display_names

        entries = await self.audit.history("achievement", achievement_id)
        for award_id in award_ids:
            entries.extend(await self.audit.history("award", award_id))
        entries.sort(key=lambda e: (e.at, e.id or 0))
        names = await display_names(self.runtime.store, list(dict.fromkeys(e.actor for e in entries)))
        actions = {"edit": "修改", "delete": "撤销", "confirm": "确认", "create": "登记"}
        lines = []
        for entry in entries:
            when = entry.at.astimezone(self.runtime.settings.tz).strftime("%Y-%m-%d %H:%M")
            what = "成果" if entry.entity == "achievement" else f"奖励 #{entry.entity_id}"
            change = describe_change(entry.before, entry.after)
            reason = f"，原因：{entry.reason}" if entry.reason else ""
            lines.append(
                f"{when} {names.get(entry.actor, entry.actor)} {actions.get(entry.action, entry.action)}{what}"
                f"{'：' + change if change else ''}{reason}"
            )
        return lines
