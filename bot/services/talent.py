"""Talent development: who attended the alliance's activities (so a training counts people trained, not only
sessions), mentorships (名师带徒) and the titles and honours people earn.

- Check-in (签到) is open from ``CHECKIN_EARLY`` before an activity's start to its end (or ``CHECKIN_OPEN`` after
  its start when it has no end); the organiser, the lead of its alliance or an admin may mark people present
  afterwards (补记). A person counts once per activity.
- People trained (``TRAINING_TYPES``): the presences at trainings and lectures held in the year (人次), and the
  distinct people among them (人).
- Titles are recorded by alliance leads (for studios of their alliance) and admins, each with its date and
  evidence; ``TITLES`` names the ones the report counts, by grade (技能等级, 工匠, 劳模先进).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.dispatcher import Caller, Role
from bot.core.runtime import Runtime
from bot.services.funds import Refusal
from bot.store import Store
from bot.store.activities import Activity, ActivityRepo
from bot.store.studios import Studio
from bot.store.talent import Honour, Mentorship, TalentRepo

CHECKIN_EARLY = timedelta(minutes=30)
CHECKIN_OPEN = timedelta(hours=4)
TRAINING_TYPES = ("培训", "讲座")
SKILL, CRAFTSMAN, MODEL = "技能等级", "工匠", "劳模先进"
GRADES = (SKILL, CRAFTSMAN, MODEL)
# canonical title -> grade, in the order the report lists them
TITLES: dict[str, str] = {
    "技师": SKILL,
    "高级技师": SKILL,
    "特级技师": SKILL,
    "首席技师": SKILL,
    "企业工匠": CRAFTSMAN,
    "市级工匠": CRAFTSMAN,
    "省级工匠": CRAFTSMAN,
    "国家级工匠": CRAFTSMAN,
    "企业劳动模范": MODEL,
    "省部级劳动模范": MODEL,
    "全国劳动模范": MODEL,
    "五一劳动奖章": MODEL,
    "先进工作者": MODEL,
}
_TITLE_ALIASES = {
    "局级工匠": "企业工匠",
    "公司工匠": "企业工匠",
    "集团工匠": "企业工匠",
    "市工匠": "市级工匠",
    "省工匠": "省级工匠",
    "大国工匠": "国家级工匠",
    "全国工匠": "国家级工匠",
    "企业劳模": "企业劳动模范",
    "局级劳模": "企业劳动模范",
    "集团劳模": "企业劳动模范",
    "省级劳模": "省部级劳动模范",
    "省部级劳模": "省部级劳动模范",
    "省级劳动模范": "省部级劳动模范",
    "全国劳模": "全国劳动模范",
    "劳动奖章": "五一劳动奖章",
    "全国五一劳动奖章": "五一劳动奖章",
    "先进个人": "先进工作者",
}
TITLE_NAMES = "、".join(TITLES)
_ACCOUNT = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def title_of(word: str) -> str | None:
    """The canonical title for a word (``省级劳模`` → 省部级劳动模范); None when the report does not know it."""
    folded = unicodedata.normalize("NFKC", word).strip()
    return folded if folded in TITLES else _TITLE_ALIASES.get(folded)


@dataclass(slots=True, frozen=True)
class CheckIn:
    """What a check-in did."""

    activity: Activity
    new: bool
    present: int


@dataclass(slots=True)
class TalentFigures:
    """Trainings and people trained, mentorships and titles for a scope and year (chat and report alike)."""

    trainings: int = 0  # training activities held
    trained: int = 0  # presences at them (人次)
    people: int = 0  # distinct people among them
    mentorships: int = 0  # started in the year
    mentorships_done: int = 0  # with an outcome recorded in the year
    mentorships_active: int = 0  # running at the end of the year (or now)
    titles: dict[str, int] = field(default_factory=dict)  # canonical title -> people earning it in the year
    per_training: list[tuple[Activity, int]] = field(default_factory=list)

    def by_grade(self) -> dict[str, int]:
        """Titles earned per grade."""
        totals = dict.fromkeys(GRADES, 0)
        for title, count in self.titles.items():
            totals[TITLES.get(title, MODEL)] += count
        return totals


def mark_refusal(caller: Caller, activity: Activity) -> str | None:
    """Why ``caller`` may not mark people present at ``activity`` (None: they may): its organiser, the lead of
    its alliance or an admin may."""
    allowed = caller.at_least(Role.ADMIN) or caller.user_id == activity.organizer
    allowed = allowed or (caller.at_least(Role.ALLIANCE_LEAD) and activity.alliance_id in caller.alliances)
    return None if allowed else "只有活动的组织者、所属联盟负责人或管理员可以补记签到。"


class TalentService:
    """Check-in and attendance, mentorships and honours, with who may record what."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.talent = TalentRepo(runtime.store.sessions)
        self.activities = ActivityRepo(runtime.store.sessions)

    async def _activity(self, activity_id: int) -> Activity:
        activity = await self.activities.get(activity_id)
        if activity is None:
            raise Refusal(f"没有编号为 {activity_id} 的活动。发送 /活动列表 查看近期活动。")
        if activity.cancelled:
            raise Refusal(f"活动 #{activity_id}「{activity.title}」已取消，不能签到。")
        return activity

    def window(self, activity: Activity) -> tuple[datetime, datetime]:
        """When check-in is open."""
        return activity.start - CHECKIN_EARLY, activity.ends_at or activity.start + CHECKIN_OPEN

    async def check_in(self, caller: Caller, activity_id: int) -> CheckIn:
        """The caller checks in, within the activity's window."""
        activity = await self._activity(activity_id)
        opens, closes = self.window(activity)
        now = self.runtime.clock.now()
        tz = self.runtime.settings.tz
        if now < opens:
            raise Refusal(
                f"活动 #{activity_id}「{activity.title}」的签到 {opens.astimezone(tz):%m月%d日 %H:%M} 开始"
                "（开始前半小时）。"
            )
        if now > closes:
            raise Refusal(
                f"活动 #{activity_id}「{activity.title}」的签到已于 {closes.astimezone(tz):%m月%d日 %H:%M} 结束。"
                "如确实参加了，请联系组织者补记。"
            )
        new = await self.talent.attend(activity_id, caller.user_id, by=caller.user_id, at=now)
        return CheckIn(activity, new, await self.talent.present(activity_id))

    async def mark(
        self, caller: Caller, activity_id: int, people: list[str]
    ) -> tuple[Activity, list[str], int]:
        """The organiser (or the alliance's lead, an admin) marks people present once the activity started;
        returns the activity, those newly marked and how many are present now."""
        activity = await self._activity(activity_id)
        refusal = mark_refusal(caller, activity)
        if refusal:
            raise Refusal(refusal)
        now = self.runtime.clock.now()
        if now < activity.start:
            raise Refusal(f"活动 #{activity_id} 还没有开始，开始后才能补记签到。")
        added = [p for p in people if await self.talent.attend(activity_id, p, by=caller.user_id, at=now)]
        return activity, added, await self.talent.present(activity_id)

    async def resolve_people(self, words: list[str], *, unique: bool = True) -> list[str]:
        """People as written: a roster name becomes its account, an account stays, another name is kept."""
        from bot.services.studios import roster_names

        by_name = {name: user_id for user_id, name in (await roster_names(self.runtime.store)).items()}
        found = []
        for word in words:
            folded = unicodedata.normalize("NFKC", word).strip().lstrip("@")
            if folded:
                found.append(by_name.get(folded, folded)[:64])
        return list(dict.fromkeys(found)) if unique else found

    # -- mentorships and honours -------------------------------------------------------------------

    @staticmethod
    def may_record(caller: Caller, studio: Studio | None) -> bool:
        """Alliance leads record for their alliances' studios, admins for any."""
        if caller.at_least(Role.ADMIN):
            return True
        return (
            caller.at_least(Role.ALLIANCE_LEAD)
            and studio is not None
            and studio.alliance_id in caller.alliances
        )

    async def studio(self, caller: Caller, word: str | None) -> Studio:
        """The studio named, or the caller's one studio."""
        store = self.runtime.store
        if word:
            studio = await store.studios.find(word)
            if studio is None:
                raise Refusal(f"没有找到工作室「{word}」。")
            return studio
        if len(caller.studios) == 1:
            studio = await store.studios.get(caller.studios[0])
            assert studio is not None
            return studio
        raise Refusal("请写明工作室，例如 @T1。")

    async def add_mentorship(
        self,
        caller: Caller,
        *,
        master: str,
        apprentice: str,
        studio: Studio,
        started_on: date,
        goal: str,
        message_key: str | None,
    ) -> Mentorship:
        """Record a mentorship; the studio's lead, its alliance's lead or an admin may."""
        if not (self.may_record(caller, studio) or studio.id in caller.studios):
            raise Refusal(f"只有{studio.name}的负责人、所属联盟负责人或管理员可以登记名师带徒。")
        if master == apprentice:
            raise Refusal("师傅和徒弟不能是同一个人。")
        return await self.talent.add_mentorship(
            Mentorship(
                master=master[:64],
                apprentice=apprentice[:64],
                studio_id=studio.id,
                started_on=started_on,
                goal=goal,
                recorded_by=caller.user_id,
                message_key=message_key,
                created_at=self.runtime.clock.now(),
            )
        )

    async def conclude_mentorship(
        self, caller: Caller, mentorship_id: int, outcome: str, on: date
    ) -> Mentorship:
        """Record a mentorship's outcome (出师)."""
        mentorship = await self.talent.mentorship(mentorship_id)
        if mentorship is None:
            raise Refusal(f"没有编号为 {mentorship_id} 的师徒记录。")
        studio = await self.runtime.store.studios.get(mentorship.studio_id)
        if not (self.may_record(caller, studio) or mentorship.studio_id in caller.studios):
            raise Refusal("只有该工作室的负责人、所属联盟负责人或管理员可以登记出师。")
        if not outcome:
            raise Refusal("请写上带徒成果，例如 /人才 出师 3 取得高级技师资格。")
        mentorship.outcome, mentorship.ended_on = outcome, on
        return await self.talent.save_mentorship(mentorship)

    async def add_honour(
        self,
        caller: Caller,
        *,
        person: str,
        title_word: str,
        on: date,
        studio: Studio | None,
        alliance_id: str | None,
        evidence: str,
        message_key: str | None,
    ) -> Honour:
        """Record a title or honour (alliance leads for their studios, admins for any), with its evidence."""
        title = title_of(title_word)
        if title is None:
            raise Refusal(f"不认识的称号「{title_word}」。可登记：{TITLE_NAMES}。")
        alliance_id = studio.alliance_id if studio is not None else alliance_id
        if not caller.at_least(Role.ADMIN):
            if not caller.at_least(Role.ALLIANCE_LEAD):
                raise Refusal("称号和荣誉由联盟负责人或管理员登记。")
            if alliance_id is None and len(caller.alliances) == 1:
                alliance_id = caller.alliances[0]
            if alliance_id not in caller.alliances:
                raise Refusal("只能为本联盟工作室的人员登记称号。")
        if alliance_id is None:
            raise Refusal("请用 @工作室 指明此人所在的工作室，例如 @T1。")
        if not evidence:
            raise Refusal("请写上证明材料（证书编号、发文文号等），例如 …… 证书 GJ2026-0153。")
        return await self.talent.add_honour(
            Honour(
                person=person[:64],
                title=title,
                grade=TITLES[title],
                on=on,
                evidence=evidence,
                studio_id=studio.id if studio else None,
                alliance_id=alliance_id,
                recorded_by=caller.user_id,
                message_key=message_key,
                created_at=self.runtime.clock.now(),
            )
        )

    # -- figures -----------------------------------------------------------------------------------

    async def figures(
        self, *, year: int, alliance_id: str | None = None, studio_id: str | None = None
    ) -> TalentFigures:
        """The year's talent figures (see ``talent_figures``)."""
        return await talent_figures(
            self.runtime.store,
            year=year,
            tz=self.runtime.settings.tz,
            now=self.runtime.clock.now(),
            alliance_id=alliance_id,
            studio_id=studio_id,
        )


async def talent_figures(
    store: Store,
    *,
    year: int,
    tz: ZoneInfo,
    now: datetime,
    alliance_id: str | None = None,
    studio_id: str | None = None,
) -> TalentFigures:
    """The year's talent figures for everything, one alliance (its own and joint trainings) or one studio
    (its mentorships and titles; trainings belong to alliances)."""
    activities, talent = ActivityRepo(store.sessions), TalentRepo(store.sessions)
    start, end = datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
    studios = {s.id: s for s in await store.studios.all()}
    result = TalentFigures()
    if studio_id is None:
        trainings = [
            a
            for a in await activities.for_calendar(start)
            if a.start < end
            and a.start <= now
            and not a.cancelled
            and a.type in TRAINING_TYPES
            and (alliance_id is None or a.alliance_id in (alliance_id, None))
        ]
        ids = [a.id for a in trainings if a.id is not None]
        presences = await talent.attendance(ids) if ids else []
        counts = Counter(p.activity_id for p in presences)
        result.trainings = len(trainings)
        result.trained = len(presences)
        result.people = len({p.person for p in presences})
        result.per_training = [(a, counts.get(a.id or 0, 0)) for a in trainings]

    def in_scope(studio: str | None, alliance: str | None = None) -> bool:
        if studio_id is not None:
            return studio == studio_id
        if alliance_id is None:
            return True
        owner = studios[studio].alliance_id if studio in studios else alliance
        return owner == alliance_id

    year_end = min(end.date() - timedelta(days=1), now.astimezone(tz).date())
    for mentorship in await talent.mentorships():
        if not in_scope(mentorship.studio_id):
            continue
        if mentorship.started_on.year == year:
            result.mentorships += 1
        if mentorship.ended_on is not None and mentorship.ended_on.year == year:
            result.mentorships_done += 1
        if mentorship.started_on <= year_end and (
            mentorship.ended_on is None or mentorship.ended_on > year_end
        ):
            result.mentorships_active += 1
    titles: Counter[str] = Counter()
    for honour in await talent.honours():
        if honour.on.year == year and in_scope(honour.studio_id, honour.alliance_id):
            titles[honour.title] += 1
    result.titles = {t: titles[t] for t in TITLES if titles[t]}
    return result


def figures_text(title: str, figures: TalentFigures, *, studio: bool = False) -> str:
    """The ``/人才`` summary."""
    lines = [f"【{title}人才培养】"]
    if not studio:
        lines.append(
            f"培训：举办 {figures.trainings} 次，参训 {figures.trained} 人次（{figures.people} 人）。"
        )
    lines.append(
        f"名师带徒：本年新结对 {figures.mentorships} 对，出师 {figures.mentorships_done} 对，"
        f"在带 {figures.mentorships_active} 对。"
    )
    if figures.titles:
        grades = figures.by_grade()
        lines.append("称号与荣誉：" + "；".join(f"{g} {n} 人" for g, n in grades.items() if n) + "。")
        lines.append("其中：" + "、".join(f"{t} {n} 人" for t, n in figures.titles.items()) + "。")
    else:
        lines.append("称号与荣誉：本年尚未登记。")
    return "\n".join(lines)
