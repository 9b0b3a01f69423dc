"""The benefit chain (创意变项目、项目变成果、成果变效益): topic → achievements → where they were applied and the
direct economic benefit, with patents and 推广 status.

Who records: the lead of a credited studio, the lead of a credited studio's alliance, an admin. Every change is
written to the audit trail. ``BENEFIT_SHARE_RULE``: a benefit counts in the year of its application, and an
achievement credited to several studios has its benefit split among them like an award (equal shares, the odd
yuan to the first), each share to the studio's alliance — the same rule everywhere the figures appear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from bot.core.dispatcher import Caller, Role
from bot.core.runtime import Runtime
from bot.services.funds import Refusal
from bot.store.achievements import Achievement, AchievementRepo
from bot.store.audit import AuditRepo
from bot.store.benefits import Application, BenefitRepo, Protection

PROMOTION = ("未推广", "推广中", "已推广")
_PROMOTION_ALIASES = {
    "推广": "推广中",
    "在推广": "推广中",
    "已推": "已推广",
    "推广完成": "已推广",
    "无": "未推广",
}
BENEFIT_SHARE_RULE = (
    "效益口径：直接经济效益计入应用当年；多个工作室共同完成的成果，效益按署名工作室平均分摊，每份计入该工作室"
    "所属联盟（与奖励同一口径）。"
)


def promotion_of(word: str) -> str | None:
    """A 推广 status from a word; None when unknown."""
    word = word.strip()
    return word if word in PROMOTION else _PROMOTION_ALIASES.get(word)


def wan(yuan: int) -> str:
    """``1,200,000 元（120 万元）`` for large sums, ``8,000 元`` otherwise."""
    if yuan >= 10_000:
        return f"{yuan:,} 元（{yuan / 10_000:g} 万元）"
    return f"{yuan:,} 元"


@dataclass(slots=True, frozen=True)
class AchievementChain:
    """One achievement's applications, benefit and protection."""

    achievement: Achievement
    applications: list[Application]
    protection: Protection | None

    @property
    def benefit(self) -> int:
        """Direct economic benefit in yuan, all years."""
        return sum(a.benefit for a in self.applications)


class BenefitService:
    """Recording applications, patents and 推广 status; reading the chain."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.benefits = BenefitRepo(runtime.store.sessions)
        self.achievements = AchievementRepo(runtime.store.sessions)
        self.audit = AuditRepo(runtime.store.sessions)

    async def _achievement(self, caller: Caller, achievement_id: int) -> Achievement:
        achievement = await self.achievements.get(achievement_id)
        if achievement is None:
            raise Refusal(f"没有编号为 {achievement_id} 的成果。")
        if caller.at_least(Role.ADMIN) or set(achievement.studios) & set(caller.studios):
            return achievement
        studios = {s.id: s for s in await self.runtime.store.studios.all()}
        alliances = {studios[s].alliance_id for s in achievement.studios if s in studios}
        if caller.at_least(Role.ALLIANCE_LEAD) and alliances & set(caller.alliances):
            return achievement
        raise Refusal("只有完成工作室的负责人、所属联盟负责人或管理员可以登记成果的应用和效益。")

    async def add_application(
        self,
        caller: Caller,
        achievement_id: int,
        *,
        project: str,
        unit: str,
        on: date,
        benefit: int,
        note: str = "",
        message_key: str | None = None,
    ) -> Application:
        """Record where an achievement was applied and what it earned; audited."""
        await self._achievement(caller, achievement_id)
        if not project:
            raise Refusal("请写上应用的项目名称。")
        application = await self.benefits.add(
            Application(
                achievement_id=achievement_id,
                project=project[:200],
                unit=unit[:200],
                applied_on=on,
                benefit=benefit,
                note=note,
                recorded_by=caller.user_id,
                message_key=message_key,
                created_at=self.runtime.clock.now(),
            )
        )
        assert application.id is not None
        await self.audit.record(
            entity="achievement_application",
            entity_id=application.id,
            action="create",
            actor=caller.user_id,
            after={
                "achievement_id": achievement_id,
                "project": application.project,
                "unit": application.unit,
                "date": on.isoformat(),
                "benefit": benefit,
            },
            at=self.runtime.clock.now(),
        )
        return application

    async def _protect(
        self, caller: Caller, achievement_id: int, *, patents: list[str] | None, promotion: str | None
    ) -> Protection:
        await self._achievement(caller, achievement_id)
        current = await self.benefits.protection(achievement_id)
        before = {"patents": list(current.patents), "promotion": current.promotion} if current else {}
        row = current or Protection(achievement_id=achievement_id)
        if patents is not None:
            row.patents = list(dict.fromkeys([*row.patents, *patents]))
        if promotion is not None:
            row.promotion = promotion
        row.updated_by, row.updated_at = caller.user_id, self.runtime.clock.now()
        saved = await self.benefits.save_protection(row)
        await self.audit.record(
            entity="achievement_protection",
            entity_id=achievement_id,
            action="create" if current is None else "edit",
            actor=caller.user_id,
            before=before,
            after={"patents": list(saved.patents), "promotion": saved.promotion},
            at=self.runtime.clock.now(),
        )
        return saved

    async def add_patents(self, caller: Caller, achievement_id: int, numbers: list[str]) -> Protection:
        """Add patent numbers to an achievement."""
        if not numbers:
            raise Refusal("请写上专利号，例如 ZL202610123456.7。")
        return await self._protect(caller, achievement_id, patents=numbers, promotion=None)

    async def set_promotion(self, caller: Caller, achievement_id: int, word: str) -> Protection:
        """Set an achievement's 推广 status."""
        status = promotion_of(word)
        if status is None:
            raise Refusal(f"推广状态应为 {'、'.join(PROMOTION)} 之一，不是「{word}」。")
        return await self._protect(caller, achievement_id, patents=None, promotion=status)

    async def chain(self, achievement: Achievement) -> AchievementChain:
        """One achievement's chain."""
        assert achievement.id is not None
        return AchievementChain(
            achievement,
            await self.benefits.applications([achievement.id]),
            await self.benefits.protection(achievement.id),
        )

    async def topic_achievements(self, topic_id: int, linked: int | None = None) -> list[Achievement]:
        """The achievements a topic produced (registered with its number, or the one linked at conclusion)."""
        found = [a for a in await self.achievements.all() if a.topic_id == topic_id or a.id == linked]
        return sorted(found, key=lambda a: a.id or 0)


def chain_lines(chain: AchievementChain) -> list[str]:
    """The chain under an achievement's details (``/成果 N``); nothing while none of it is recorded."""
    if not chain.applications and chain.protection is None:
        return []
    lines = []
    for application in chain.applications:
        where = "、".join(p for p in (application.project, application.unit) if p)
        lines.append(
            f"应用：{application.applied_on.isoformat()} {where}，直接经济效益 {wan(application.benefit)}"
        )
    if chain.applications:
        lines.append(f"直接经济效益合计：{wan(chain.benefit)}（{len(chain.applications)} 处应用）")
    if chain.protection is not None and chain.protection.patents:
        lines.append(f"专利号：{'、'.join(chain.protection.patents)}")
    lines.append(f"推广：{chain.protection.promotion if chain.protection else '未推广'}")
    return lines


async def achievement_chain_lines(runtime: Runtime, achievement: Achievement) -> list[str]:
    """What ``/成果 N`` adds: applications, benefit, patents, 推广 (the achievements handler's one call)."""
    return chain_lines(await runtime.feature(BenefitService).chain(achievement))


async def topic_chain_lines(runtime: Runtime, topic_id: int, linked: int | None) -> list[str]:
    """What ``/课题 N`` adds: topic → its achievements → their benefit (the topics handler's one call)."""
    service = runtime.feature(BenefitService)
    achievements = await service.topic_achievements(topic_id, linked)
    if not achievements:
        return []
    lines = ["成果与效益（课题 → 成果 → 效益）："]
    total = 0
    for achievement in achievements:
        chain = await service.chain(achievement)
        total += chain.benefit
        places = f"，应用 {len(chain.applications)} 处" if chain.applications else "，尚未登记应用"
        lines.append(
            f"  → 成果 #{achievement.id} {achievement.type}「{achievement.title}」{places}，效益 {wan(chain.benefit)}"
        )
    lines.append(f"  直接经济效益合计：{wan(total)}")
    return lines


def split_benefit(amount: int, studio_alliances: Iterable[str]) -> dict[str, int]:
    """Yuan per alliance by ``BENEFIT_SHARE_RULE`` (the awards' ``split_award``)."""
    from bot.services.reports import split_award

    return split_award(amount, list(studio_alliances))
