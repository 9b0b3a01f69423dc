"""Evaluation rounds (评选): star-studio ratings, excellent achievements, excellent alliance members.

An admin (or an alliance lead, for their alliance) opens a round with criteria and weights, a panel (评鉴团)
and two deadlines; studio leads (and alliance leads) nominate; panel members score every nominee per
criterion, never one of their own studio (回避); a job reminds those who have not acted a day before each
deadline and closes rounds whose scoring deadline passed. At the close each nominee's panel totals are
combined (the mean, dropping the highest and lowest when at least five scored), ranked, the results are
announced to the alliance groups, stars are updated with their history and awards recorded within the
charter's ranges. Every step runs in the causing message's (or the job's) transaction and is keyed by it."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.core.dispatcher import Caller, Forbidden, Role, UserError, fold
from bot.core.runtime import Runtime
from bot.services.achievements.service import achievement_label
from bot.services.studios import display_names, roster_names
from bot.store.achievements import CONFIRMED, Achievement, AchievementRepo, Award
from bot.store.audit import AuditRepo
from bot.store.engine import unit_of_work
from bot.store.evaluations import (
    CLOSED,
    OPEN,
    ROUND_ORIGIN,
    EvaluationRepo,
    EvaluationRound,
    Nominee,
    Score,
    StarChange,
)
from bot.store.studios import Studio

log = logging.getLogger(__name__)

REMIND_BEFORE = timedelta(hours=24)  # reminders go out this long before each deadline
TRIM_FROM = 5  # with at least this many scores the highest and lowest are dropped
ACHIEVEMENT_RANGE = (5_000, 20_000)  # the charter: an excellent achievement earns 5,000–20,000 yuan
ACHIEVEMENT_DEFAULT = 10_000
FIVE_STAR_AMOUNT = 30_000  # the charter: a five-star studio earns 30,000 yuan
MAX_SCORE = 100


class Kind(StrEnum):
    """The kinds of round the charter names."""

    STARS = "星级工作室评定"
    ACHIEVEMENT = "优秀创新成果评选"
    MEMBER = "优秀联盟成员"

    @classmethod
    def parse(cls, word: str) -> Kind:
        """A kind from its name or a short form (星级, 成果, 成员…)."""
        key = word.strip()
        for kind in cls:
            if key == kind.value:
                return kind
        for alias, kind in _KIND_ALIASES.items():
            if key == alias:
                return kind
        raise ValueError(word)

    @property
    def default_criteria(self) -> list[dict[str, Any]]:
        """Criteria and weights when the round names none."""
        return [{"name": n, "weight": w} for n, w in _DEFAULT_CRITERIA[self]]


_KIND_ALIASES = {
    "星级": Kind.STARS,
    "星级评定": Kind.STARS,
    "星级工作室": Kind.STARS,
    "成果": Kind.ACHIEVEMENT,
    "优秀成果": Kind.ACHIEVEMENT,
    "优秀创新成果": Kind.ACHIEVEMENT,
    "成员": Kind.MEMBER,
    "优秀成员": Kind.MEMBER,
    "联盟成员": Kind.MEMBER,
}
_DEFAULT_CRITERIA = {
    Kind.STARS: (("八有条件", 40), ("创新成果", 30), ("攻关成效", 30)),
    Kind.ACHIEVEMENT: (("创新性", 40), ("效益", 30), ("推广价值", 30)),
    Kind.MEMBER: (("参与度", 50), ("贡献", 50)),
}
KIND_NAMES = "星级（星级工作室评定）、成果（优秀创新成果评选）、成员（优秀联盟成员）"


_LIST = re.compile(r"[,，、;；]+")


async def panel_members(store: Any, text: str) -> list[str]:
    """Panel members from a list of names or WeCom user ids (``陈掘进,zhanglali、…``), as user ids."""
    names = await roster_names(store)
    by_name = {name: user for user, name in names.items()}
    people = []
    for part in _LIST.split(text):
        part = part.strip()
        if part:
            people.append(by_name.get(part, part))
    return people


def parse_criteria(text: str) -> list[dict[str, Any]]:
    """Criteria with weights from ``创新性:40,效益:30,推广价值:30``; a Chinese ``UserError`` when malformed."""
    criteria = []
    for part in _LIST.split(fold(text)):
        if not part:
            continue
        name, _, weight = part.replace("：", ":").partition(":")
        try:
            value = float(weight.rstrip("%")) if weight else 1.0
        except ValueError:
            raise UserError(f"标准「{part}」的权重看不懂，请写 名称:权重，例如 创新性:40。") from None
        if value <= 0 or not name.strip():
            raise UserError(f"标准「{part}」不对：要有名称，权重大于 0。")
        if len(name.strip()) > 20:
            raise UserError(f"标准名称「{name.strip()[:20]}…」太长，请不超过 20 个字。")
        criteria.append({"name": name.strip(), "weight": value})
    if len(criteria) > 10 or len({c["name"] for c in criteria}) != len(criteria):
        raise UserError("评分标准最多 10 项，且名称不能重复。")
    if not criteria:
        raise UserError("请写明评分标准，例如 标准=创新性:40,效益:30,推广价值:30。")
    return criteria


def round_label(evaluation: EvaluationRound) -> str:
    """``评选 #3 优秀创新成果评选``."""
    return f"评选 #{evaluation.id} {evaluation.kind}"


def combine(totals: list[float]) -> float | None:
    """The panel's combined score: the mean, without the highest and lowest once ``TRIM_FROM`` scored."""
    if not totals:
        return None
    ordered = sorted(totals)
    if len(ordered) >= TRIM_FROM:
        ordered = ordered[1:-1]
    return round(sum(ordered) / len(ordered), 2)


def weighted(criteria: list[dict[str, Any]], scores: dict[str, float]) -> float:
    """One panel member's weighted total of a nominee."""
    weight = sum(float(c["weight"]) for c in criteria) or 1.0
    return round(sum(float(c["weight"]) * scores[c["name"]] for c in criteria) / weight, 2)


def check_amount(kind: Kind, amount: int | None, override: bool) -> None:
    """Refuse a prize outside the charter's range unless an admin overrides."""
    if amount is None or override:
        return
    if kind is Kind.ACHIEVEMENT and not ACHIEVEMENT_RANGE[0] <= amount <= ACHIEVEMENT_RANGE[1]:
        raise UserError(
            f"章程规定优秀成果奖励 {ACHIEVEMENT_RANGE[0]:,}–{ACHIEVEMENT_RANGE[1]:,} 元，{amount:,} 元超出范围；"
            "确需如此，请管理员在命令末尾加「超范围」。"
        )
    if kind is Kind.STARS and amount != FIVE_STAR_AMOUNT:
        raise UserError(
            f"章程规定五星级工作室奖励 {FIVE_STAR_AMOUNT:,} 元，{amount:,} 元不符；确需如此，请管理员加「超范围」。"
        )


@dataclass(slots=True, frozen=True)
class Standing:
    """A nominee at the close (or so far): its combined score and how many scored it."""

    nominee: Nominee
    score: float | None
    scored: int


@dataclass(slots=True, frozen=True)
class ScoreOutcome:
    """What a panel member's scoring did."""

    nominee: Nominee
    total: float
    replaced: bool


class EvaluationService:
    """Rounds from opening to results."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.repo = EvaluationRepo(runtime.store.sessions)
        self.achievements = AchievementRepo(runtime.store.sessions)
        self.audit = AuditRepo(runtime.store.sessions)

    async def studios(self) -> dict[str, Studio]:
        """Every studio by id."""
        return {s.id: s for s in await self.runtime.store.studios.all()}

    async def get(self, round_id: int) -> EvaluationRound:
        """A round, or a refusal naming the number."""
        evaluation = await self.repo.round(round_id)
        if evaluation is None:
            raise UserError(f"没有编号为 {round_id} 的评选。发送 /评选 查看全部。")
        return evaluation

    # -- opening ------------------------------------------------------------------------------------

    async def open(
        self,
        *,
        caller: Caller,
        kind: Kind,
        alliance_id: str | None,
        criteria: list[dict[str, Any]] | None,
        panel: list[str],
        nominate_until: datetime,
        score_until: datetime,
        quota: int | None = None,
        amount: int | None = None,
        override: bool = False,
        passing: int = 60,
        message_key: str | None = None,
    ) -> EvaluationRound:
        """Open a round (admins anywhere; an alliance lead for their alliance only) and announce it."""
        if not caller.at_least(Role.ADMIN):
            if not caller.at_least(Role.ALLIANCE_LEAD):
                raise Forbidden("只有管理员或联盟负责人可以发起评选。")
            if alliance_id is None or alliance_id not in caller.alliances:
                raise UserError("联盟负责人只能为本联盟发起评选，请写明联盟，例如 隧道。")
        if override and not caller.at_least(Role.ADMIN):
            raise Forbidden("只有管理员可以设置「超范围」金额。")
        check_amount(kind, amount, override)
        if not panel:
            raise UserError("请写明评鉴团成员，例如 评委=张三,李四,王五。")
        if len(panel) > 50 or any(len(p) > 64 for p in panel):
            raise UserError("评鉴团最多 50 人，每人写姓名或企业微信账号。")
        now = self.runtime.clock.now()
        if not now < nominate_until <= score_until:
            raise UserError("申报截止应在现在之后，评分截止不早于申报截止。")
        evaluation = await self.repo.add(
            EvaluationRound(
                kind=kind.value,
                alliance_id=alliance_id,
                criteria=criteria or kind.default_criteria,
                panel=list(dict.fromkeys(panel)),
                nominate_until=nominate_until,
                score_until=score_until,
                passing=passing,
                quota=quota,
                amount=amount,
                override=override,
                created_by=caller.user_id,
                created_at=now,
                message_key=message_key,
            )
        )
        assert evaluation.id is not None
        text = "\n".join(
            [
                f"【{round_label(evaluation)} 开始申报】",
                f"评分标准：{criteria_text(evaluation)}",
                f"申报截止：{self.when(evaluation.nominate_until)}；评分截止：{self.when(evaluation.score_until)}",
                f"工作室负责人发送 /评选 申报 {evaluation.id} {'成果编号' if kind is Kind.ACHIEVEMENT else '工作室编号'} 申报。",
            ]
        )
        for alliance in await self.alliances_in(evaluation):
            await self.runtime.outbox.announce(
                alliance, text, dedupe_key=f"evaluation:{evaluation.id}:opened"
            )
        for member in evaluation.panel:
            await self.runtime.outbox.notify_user(
                member,
                f"您是{round_label(evaluation)}的评鉴团成员。评分截止 {self.when(evaluation.score_until)}，"
                f"发送 /评选 {evaluation.id} 查看申报对象，/评选 评分 {evaluation.id} 申报号 分数… 评分。",
                dedupe_key=f"evaluation:{evaluation.id}:panel:{member}",
            )
        return evaluation

    def when(self, at: datetime) -> str:
        """A deadline as people read it."""
        local = at.astimezone(self.runtime.settings.tz)
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"

    async def alliances_in(self, evaluation: EvaluationRound) -> list[str]:
        """The alliances a round covers."""
        if evaluation.alliance_id is not None:
            return [evaluation.alliance_id]
        return [a.id for a in await self.runtime.store.alliances.all()]

    # -- nominating ---------------------------------------------------------------------------------

    async def nominate(
        self,
        round_id: int,
        subject: str,
        *,
        caller: Caller,
        target_stars: int | None = None,
        message_key: str | None = None,
    ) -> Nominee:
        """Put a studio (by id) or an achievement (by number) forward in a round."""
        evaluation = await self.get(round_id)
        if evaluation.state != OPEN:
            raise UserError(f"{round_label(evaluation)} 已结束。")
        if self.runtime.clock.now() >= evaluation.nominate_until:
            raise UserError(
                f"{round_label(evaluation)} 的申报已于 {self.when(evaluation.nominate_until)} 截止。"
            )
        studios = await self.studios()
        kind = Kind(evaluation.kind)
        achievement: Achievement | None = None
        word = subject.strip().lstrip("#")
        if kind is Kind.ACHIEVEMENT:
            if not word.isdigit() or len(word) > 9:
                raise UserError("优秀创新成果评选请申报成果编号，例如 /评选 申报 1 12（成果编号见 /成果）。")
            achievement = await self.achievements.get(int(word))
            if achievement is None or achievement.state != CONFIRMED:
                raise UserError(f"没有编号为 {word} 的有效成果（待确认或已撤销的成果不能申报）。")
            candidates = [s for s in achievement.studios if s in studios]
            studio_id = next((s for s in candidates if self._may_nominate(caller, studios[s])), None)
            if studio_id is None:
                raise Forbidden("只能申报本工作室（或本联盟工作室）的成果。")
            key = f"achievement:{achievement.id}"
        else:
            studio = studios.get(word) or next(
                (s for s in studios.values() if s.id.lower() == word.lower()), None
            )
            if studio is None:
                raise UserError(f"没有编号为 {word} 的工作室。")
            if not self._may_nominate(caller, studio):
                raise Forbidden("工作室负责人只能申报本工作室，联盟负责人可申报本联盟的工作室。")
            studio_id = studio.id
            key = f"studio:{studio.id}"
            if kind is Kind.STARS:
                target_stars = target_stars or min(studio.stars + 1, 5)
                if not 3 <= target_stars <= 5:
                    raise UserError("星级只能是三星、四星或五星。")
        if evaluation.alliance_id is not None and studios[studio_id].alliance_id != evaluation.alliance_id:
            raise Forbidden(f"{round_label(evaluation)} 只面向本联盟，{studios[studio_id].name}不在其中。")
        existing = [n for n in await self.repo.nominees(round_id) if n.subject == key]
        if existing and existing[0].message_key != message_key:
            raise UserError(f"已经申报过了（申报号 {existing[0].id}）。")
        nominee = await self.repo.add(
            Nominee(
                round_id=round_id,
                subject=key,
                studio_id=studio_id,
                achievement_id=achievement.id if achievement else None,
                target_stars=target_stars if kind is Kind.STARS else None,
                nominated_by=caller.user_id,
                created_at=self.runtime.clock.now(),
                message_key=message_key,
            )
        )
        await self._ask_panel(evaluation, nominee)
        return nominee

    async def _ask_panel(self, evaluation: EvaluationRound, nominee: Nominee) -> None:
        """Ask each panel member who need not abstain to score a new nominee: one message per member and
        nominee (keyed, so a retried nomination asks once), a card with a score list per criterion where the
        channel has cards and the round has at most ``SCORE_CARD_CRITERIA`` criteria."""
        assert evaluation.id is not None and nominee.id is not None
        names = [str(c["name"]) for c in evaluation.criteria]
        label = await self.nominee_label(nominee)
        text = "\n".join(
            [
                f"【{round_label(evaluation)} 待评分】{label}",
                f"评分标准：{criteria_text(evaluation)}；评分截止 {self.when(evaluation.score_until)}",
                f"评分：/评选 评分 {evaluation.id} {nominee.id} 分数…（依次为 {'、'.join(names)}，0–100）",
            ]
        )
        meta = (
            {"card": "score", "round": str(evaluation.id), "nominee": str(nominee.id), "criteria": "|".join(names)}
            if len(names) <= SCORE_CARD_CRITERIA and not any("|" in n for n in names)
            else None
        )
        for member in evaluation.panel:
            if await self.conflicted(member, nominee):
                continue  # 回避: not asked (and refused if they try)
            await self.runtime.outbox.notify_user(
                member,
                text,
                dedupe_key=f"evaluation:{evaluation.id}:nominee:{nominee.id}:panel:{member}",
                meta=meta,
            )

    @staticmethod
    def _may_nominate(caller: Caller, studio: Studio) -> bool:
        return (
            caller.at_least(Role.ADMIN)
            or studio.id in caller.studios
            or studio.alliance_id in caller.alliances
        )

    async def nominee_label(self, nominee: Nominee, studios: dict[str, Studio] | None = None) -> str:
        """``申报 2 盾构掘进控制劳模创新工作室（T1）→ 五星`` or the achievement's label."""
        studios = studios if studios is not None else await self.studios()
        if nominee.achievement_id is not None:
            achievement = await self.achievements.get(nominee.achievement_id)
            what = achievement_label(achievement) if achievement else f"成果 #{nominee.achievement_id}"
        else:
            studio = studios.get(nominee.studio_id)
            what = f"{studio.name}（{nominee.studio_id}）" if studio else nominee.studio_id
            if nominee.target_stars:
                what += f" 申报{STAR_WORDS[nominee.target_stars]}"
        return f"申报 {nominee.id} {what}"

    # -- the panel ----------------------------------------------------------------------------------

    async def own_studios(self, user_id: str) -> set[str]:
        """The studios a person belongs to: those they lead and the one they are a member of."""
        own = {s.id for s in await self.runtime.store.studios.led_by(user_id)}
        member = await self.runtime.store.members.get(user_id)
        if member is not None and member.studio_id:
            own.add(member.studio_id)
        return own

    async def nominee_studios(self, nominee: Nominee) -> set[str]:
        """The studios a nominee stands for: the studio, or every studio credited with the achievement."""
        if nominee.achievement_id is not None:
            achievement = await self.achievements.get(nominee.achievement_id)
            if achievement is not None:
                return {nominee.studio_id, *achievement.studios}
        return {nominee.studio_id}

    async def conflicted(self, user_id: str, nominee: Nominee) -> bool:
        """Whether a panel member must abstain from a nominee (回避: their own studio or its achievement)."""
        return bool(await self.own_studios(user_id) & await self.nominee_studios(nominee))

    async def score(
        self,
        round_id: int,
        nominee_id: int,
        values: list[str],
        *,
        caller: Caller,
        message_key: str | None = None,
    ) -> ScoreOutcome:
        """Record a panel member's scores of one nominee (positional in the criteria's order, or 名=分)."""
        evaluation = await self.get(round_id)
        if evaluation.state != OPEN:
            raise UserError(f"{round_label(evaluation)} 已结束，不能再评分。")
        if self.runtime.clock.now() >= evaluation.score_until:
            raise UserError(
                f"{round_label(evaluation)} 的评分已于 {self.when(evaluation.score_until)} 截止。"
            )
        if caller.user_id not in evaluation.panel:
            raise Forbidden(f"您不是{round_label(evaluation)}的评鉴团成员，不能评分。")
        nominee = await self.repo.nominee(nominee_id)
        if nominee is None or nominee.round_id != round_id:
            raise UserError(
                f"{round_label(evaluation)} 没有申报号 {nominee_id}。发送 /评选 {round_id} 查看。"
            )
        if await self.conflicted(caller.user_id, nominee):
            raise Forbidden(f"回避：{await self.nominee_label(nominee)} 涉及您所在的工作室，您不能为其评分。")
        scores = self._read_scores(evaluation.criteria, values)
        total = weighted(evaluation.criteria, scores)
        score, replaced = await self.repo.put_score(
            Score(
                round_id=round_id,
                nominee_id=nominee_id,
                panelist=caller.user_id,
                scores=scores,
                total=total,
                at=self.runtime.clock.now(),
                message_key=message_key,
            )
        )
        return ScoreOutcome(nominee, score.total, replaced)

    @staticmethod
    def _read_scores(criteria: list[dict[str, Any]], values: list[str]) -> dict[str, float]:
        names = [str(c["name"]) for c in criteria]
        usage = (
            f"请按「{'、'.join(names)}」的顺序写 {len(names)} 个 0–{MAX_SCORE} 的分数，或写 {names[0]}=90 …"
        )
        scores: dict[str, float] = {}
        named = [v for v in values if "=" in v]
        if named and len(named) != len(values):
            raise UserError(usage)
        pairs = [v.split("=", 1) for v in named] if named else list(zip(names, values, strict=False))
        if len(pairs) != len(names) or len(values) != len(names):
            raise UserError(usage)
        for name, text in pairs:
            if name not in names:
                raise UserError(f"没有「{name}」这一项标准。{usage}")
            try:
                value = float(text)
            except ValueError:
                raise UserError(f"分数「{text}」看不懂。{usage}") from None
            if not 0 <= value <= MAX_SCORE:
                raise UserError(f"分数应在 0 到 {MAX_SCORE} 之间，「{text}」不行。")
            scores[name] = value
        return scores

    async def standings(self, evaluation: EvaluationRound) -> list[Standing]:
        """Every nominee with its combined score so far, best first (unscored last)."""
        assert evaluation.id is not None
        scores = await self.repo.scores(evaluation.id)
        standings = []
        for nominee in await self.repo.nominees(evaluation.id):
            totals = [s.total for s in scores if s.nominee_id == nominee.id]
            standings.append(Standing(nominee, combine(totals), len(totals)))
        standings.sort(key=lambda s: (s.score is None, -(s.score or 0), s.nominee.id or 0))
        return standings

    async def pending_panel(self, evaluation: EvaluationRound) -> dict[str, list[Nominee]]:
        """Each panel member's nominees still to score (conflicts left out)."""
        assert evaluation.id is not None
        scored = {(s.panelist, s.nominee_id) for s in await self.repo.scores(evaluation.id)}
        nominees = await self.repo.nominees(evaluation.id)
        waiting: dict[str, list[Nominee]] = {}
        for member in evaluation.panel:
            for nominee in nominees:
                if (member, nominee.id) in scored or await self.conflicted(member, nominee):
                    continue
                waiting.setdefault(member, []).append(nominee)
        return waiting

    # -- the close ----------------------------------------------------------------------------------

    async def close(
        self, round_id: int, *, caller: Caller | None, source: str = "chat"
    ) -> list[Standing] | None:
        """Close a round once: combine, rank, record stars and awards, announce. None when it was already
        closed (by another message, process or the job)."""
        evaluation = await self.get(round_id)
        if caller is not None and not (
            caller.at_least(Role.ADMIN)
            or caller.user_id == evaluation.created_by
            or (evaluation.alliance_id is not None and evaluation.alliance_id in caller.alliances)
        ):
            raise Forbidden("只有发起人、本联盟负责人或管理员可以结束评选。")
        actor = caller.user_id if caller is not None else "job"
        now = self.runtime.clock.now()
        async with unit_of_work(self.runtime.store.engine):
            if not await self.repo.close(round_id, actor=actor, at=now):
                return None
            evaluation.state, evaluation.closed_by, evaluation.closed_at = CLOSED, actor, now
            standings = await self.standings(evaluation)
            await self._record_results(evaluation, standings, actor=actor, source=source, now=now)
        return standings

    async def _record_results(
        self,
        evaluation: EvaluationRound,
        standings: list[Standing],
        *,
        actor: str,
        source: str,
        now: datetime,
    ) -> None:
        assert evaluation.id is not None
        kind = Kind(evaluation.kind)
        studios = await self.studios()
        year = now.astimezone(self.runtime.settings.tz).year
        winners = 0
        lines = [f"【{round_label(evaluation)} 结果】"]
        changed: list[Any] = []
        for rank, standing in enumerate(standings, start=1):
            nominee = standing.nominee
            label = await self.nominee_label(nominee, studios)
            if standing.score is None:
                nominee.result = "unscored"
                changed.append(nominee)
                lines.append(f"· {label}：无人评分")
                continue
            nominee.score, nominee.rank = standing.score, rank
            wins = standing.score >= evaluation.passing and (
                evaluation.quota is None or winners < evaluation.quota
            )
            nominee.result = "winner" if wins else "not_selected"
            changed.append(nominee)
            mark = "✔ 入选" if wins else "未入选"
            lines.append(f"{rank}. {label}：{standing.score:g} 分（{standing.scored} 人评分）{mark}")
            if not wins:
                continue
            winners += 1
            if kind is Kind.STARS and nominee.target_stars:
                studio = studios.get(nominee.studio_id)
                if studio is not None and studio.stars != nominee.target_stars:
                    await self.set_stars(
                        studio, nominee.target_stars, actor=actor, round_id=evaluation.id, at=now
                    )
            amount = self._amount(kind, evaluation, nominee)
            if amount:
                flags = await self._award_budget_flags(nominee, amount, year)
                award = await self.achievements.add_award(
                    Award(
                        achievement_id=nominee.achievement_id,
                        studio_id=None if nominee.achievement_id is not None else nominee.studio_id,
                        name=f"{evaluation.kind}（评选 #{evaluation.id}）"[:100],
                        amount=amount,
                        year=year,
                        note=f"evaluation:{evaluation.id}",
                        created_by=actor,
                        created_at=now,
                    )
                )
                nominee.award_id = award.id
                await self.audit.record(
                    entity="award",
                    entity_id=award.id or 0,
                    action="create",
                    actor=actor,
                    source=source,
                    reason="；".join([f"{round_label(evaluation)} 入选", *flags]),
                    after={"amount": amount, "year": year, "name": award.name},
                    at=now,
                )
                lines[-1] += f"，奖励 {amount:,} 元" + ("（超出奖励预算，已记入审计日志）" if flags else "")
        if not standings:
            lines.append("本轮没有申报对象。")
        await self.repo.save(changed)
        await self.audit.record(
            entity="evaluation",
            entity_id=evaluation.id,
            action="close",
            actor=actor,
            source=source,
            after={"winners": winners, "nominees": len(standings)},
            at=now,
        )
        text = "\n".join(lines)
        for alliance in await self.alliances_in(evaluation):
            await self.runtime.outbox.announce(
                alliance, text, dedupe_key=f"evaluation:{evaluation.id}:results"
            )

    async def _award_budget_flags(self, nominee: Nominee, amount: int, year: int) -> list[str]:
        """A round's award is 奖励 spending like any other: past an alliance's 奖励 budget it is flagged (the
        panel has decided; the round is not refused), the flag kept in the award's audit entry."""
        from bot.services.funds import FundService, shares_of

        if nominee.achievement_id is not None:
            achievement = await self.achievements.get(nominee.achievement_id)
            credited = achievement.studios if achievement else []
        else:
            credited = [nominee.studio_id] if nominee.studio_id else []
        shares = await shares_of(self.runtime.store, amount, credited)
        return await self.runtime.feature(FundService).check_award(None, year=year, shares=shares)

    @staticmethod
    def _amount(kind: Kind, evaluation: EvaluationRound, nominee: Nominee) -> int | None:
        if kind is Kind.ACHIEVEMENT:
            return evaluation.amount or ACHIEVEMENT_DEFAULT
        if kind is Kind.STARS:
            return (evaluation.amount or FIVE_STAR_AMOUNT) if nominee.target_stars == 5 else None
        return evaluation.amount

    async def set_stars(
        self,
        studio: Studio,
        stars: int,
        *,
        actor: str,
        round_id: int | None,
        at: datetime,
        source: str = "job",
    ) -> None:
        """Change a studio's stars and record the change in the star history and the audit trail."""
        before = studio.stars
        studio.stars, studio.updated_at = stars, at  # updated_at: cached rosters notice the change
        await self.repo.save(
            [
                studio,
                StarChange(
                    studio_id=studio.id,
                    before=before,
                    after=stars,
                    round_id=round_id,
                    actor=actor,
                    at=at,
                    origin=ROUND_ORIGIN if round_id else "",
                ),
            ]
        )
        await self.audit.record(
            entity="studio",
            entity_id=studio.id,
            action="stars",
            actor=actor,
            source=source,
            reason=f"评选 #{round_id}" if round_id else "",
            before={"stars": before},
            after={"stars": stars},
            at=at,
        )

    # -- the job ------------------------------------------------------------------------------------

    async def sweep(self, now: datetime) -> str:
        """Remind who has not acted a day before each deadline; close rounds whose scoring deadline passed."""
        reminded = closed = 0
        for evaluation in await self.repo.rounds(state=OPEN):
            assert evaluation.id is not None
            if now >= evaluation.score_until:
                if await self.close(evaluation.id, caller=None, source="job") is not None:
                    closed += 1
                continue
            async with unit_of_work(self.runtime.store.engine):
                if evaluation.nominate_until - REMIND_BEFORE <= now < evaluation.nominate_until:
                    reminded += await self._remind_nominations(evaluation)
                if evaluation.score_until - REMIND_BEFORE <= now:
                    reminded += await self._remind_panel(evaluation)
        return f"reminded {reminded}, closed {closed}"

    async def _remind_nominations(self, evaluation: EvaluationRound) -> int:
        assert evaluation.id is not None
        nominated = {n.studio_id for n in await self.repo.nominees(evaluation.id)}
        sent = 0
        for alliance in await self.alliances_in(evaluation):
            for studio in await self.runtime.store.studios.all(alliance):
                if studio.id in nominated:
                    continue
                sent += await self.runtime.outbox.notify_user(
                    studio.lead_userid,
                    f"提醒：{round_label(evaluation)} 的申报将于 {self.when(evaluation.nominate_until)} 截止，"
                    f"{studio.name}尚未申报。发送 /评选 {evaluation.id} 查看详情。",
                    dedupe_key=f"evaluation:{evaluation.id}:remind-nominate:{studio.lead_userid}",
                )
        return sent

    async def _remind_panel(self, evaluation: EvaluationRound) -> int:
        sent = 0
        for member, nominees in (await self.pending_panel(evaluation)).items():
            numbers = "、".join(str(n.id) for n in nominees)
            sent += await self.runtime.outbox.notify_user(
                member,
                f"提醒：{round_label(evaluation)} 的评分将于 {self.when(evaluation.score_until)} 截止，"
                f"您还有申报号 {numbers} 未评分。发送 /评选 {evaluation.id} 查看。",
                dedupe_key=f"evaluation:{evaluation.id}:remind-score:{member}",
            )
        return sent

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        """Display names of people."""
        return await display_names(self.runtime.store, user_ids)


STAR_WORDS = {3: "三星", 4: "四星", 5: "五星"}
SCORE_CARD_CRITERIA = 3  # a WeCom multiple_interaction card holds at most three score lists


def criteria_text(evaluation: EvaluationRound) -> str:
    """``创新性 40%、效益 30%…``."""
    total = sum(float(c["weight"]) for c in evaluation.criteria) or 1.0
    return "、".join(f"{c['name']} {float(c['weight']) * 100 / total:g}%" for c in evaluation.criteria)


async def sweep_evaluations(runtime: Runtime, now: datetime) -> str:
    """The scheduled job: reminders before deadlines, rounds closed after theirs."""
    return await runtime.feature(EvaluationService).sweep(now)
