"""Scheduled work on problems with an injected clock: escalation after ``BOT_CLAIM_HOURS``, the per-studio daily
cap, and the 09:00 digest of problems open for more than a day."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.clock import ManualClock
from bot.core.messages import Target, TargetKind
from bot.services.problems import DIGEST_JOB, ESCALATION_JOB, TODO_JOB, ProblemService
from tests.conftest import SHANGHAI
from tests.harness import Chat

ASKER = "foreman1"
GROUP = "隧道联盟群"
TUNNEL_LEAD = "mushandong"
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"
LEADS = {
    "B1": "zhanglali",
    "B2": "xuanbining",
    "B3": "zhouzhuanti",
    "T1": "chenjuejin",
    "T2": "shibaopo",
    "T3": "fangshuiqing",
    "U1": "hejikeng",
    "U2": "luopugui",
    "U3": "dangjianhua",
    "P1": "wuchengli",
    "P2": "xingliansuo",
    "P3": "miaobiandian",
}


def group_texts(chat: Chat, name: str) -> list[str]:
    return [d.text for d in chat.sender.deliveries if d.target == Target(TargetKind.CONSOLE, name)]


async def ranked(chat: Chat, text: str, limit: int = 5) -> list[str]:
    index = await chat.bot.runtime.feature(ProblemService).index()
    return [m.id for m in index.rank(text, limit=limit)]


async def fire(chat: Chat, name: str) -> str | None:
    result = await chat.bot.jobs.fire(name, chat.bot.clock.now())
    await chat.delivered()
    return result


async def test_unclaimed_problem_goes_to_the_next_studio_and_the_lead_is_told(
    chat: Chat, clock: ManualClock
) -> None:
    order = await ranked(chat, SHIELD, limit=8)
    await chat.say(ASKER, SHIELD, group=GROUP)
    service = chat.bot.runtime.feature(ProblemService)
    first = [r.studio_id for r in await service.repo.requests_of(1)]
    # only the studios with real evidence were asked at first, best first; escalation goes on down the ranking
    assert first == order[: len(first)] and 1 <= len(first) <= 3
    fourth, fifth = order[len(first)], order[len(first) + 1]
    assert not chat.to_user(LEADS[fourth])
    clock.advance(hours=23, minutes=50)
    assert await fire(chat, ESCALATION_JOB) == "escalated 0"
    clock.advance(minutes=20)  # 24 h 10 min after logging
    assert await fire(chat, ESCALATION_JOB) == "escalated 1, no studio left 0"
    (ask,) = chat.to_user(LEADS[fourth])
    assert "【技术问题 #1 请求协助】（前序工作室超时未认领，转请贵工作室）" in ask and "/认领 1" in ask
    (told,) = chat.to_user(TUNNEL_LEAD)
    assert "【问题升级】#1「" in told and "超过 24 小时仍无工作室认领" in told
    # ten minutes later nothing new: the clock restarted with the new studio
    clock.advance(minutes=10)
    assert await fire(chat, ESCALATION_JOB) == "escalated 0"
    clock.advance(hours=24)
    assert await fire(chat, ESCALATION_JOB) == "escalated 1, no studio left 0"
    assert len(chat.to_user(LEADS[fifth])) == 1
    history = await chat.say("someone", "/problem 1")
    assert history.count("升级转派") == 2 and "转请" in history
    # once claimed, no more escalation
    await chat.say(LEADS[fifth], "/认领 1")
    clock.advance(hours=48)
    assert await fire(chat, ESCALATION_JOB) == "escalated 0"
    requests = await service.repo.requests_of(1)
    assert [(r.studio_id, r.outcome) for r in requests] == [
        *((sid, "expired") for sid in first),
        (fourth, "expired"),
        (fifth, "claimed"),
    ]


async def test_claim_hours_setting_is_used(chat: Chat, clock: ManualClock) -> None:
    chat.bot.runtime.settings = chat.bot.settings.model_copy(update={"claim_hours": 2})
    await chat.say(ASKER, SHIELD, group=GROUP)
    clock.advance(hours=1, minutes=55)
    assert await fire(chat, ESCALATION_JOB) == "escalated 0"
    clock.advance(minutes=10)
    assert await fire(chat, ESCALATION_JOB) == "escalated 1, no studio left 0"
    assert "超过 2 小时" in chat.to_user(TUNNEL_LEAD)[0]


async def test_daily_cap_skips_a_busy_studio_until_the_next_day(chat: Chat, clock: ManualClock) -> None:
    assert chat.bot.settings.studio_daily_cap == 5
    order = await ranked(chat, SHIELD)
    top = order[0]
    name = next(s.name for s in await chat.bot.store.studios.all() if s.id == top)
    for n in range(5):
        reply = await chat.say(ASKER, f"/提问 {SHIELD}", group=GROUP)
        assert f"#{n + 1}。" in reply and reply.splitlines()[1].startswith(f"已私信推荐：{name}（")
    assert len(chat.to_user(LEADS[top])) == 5
    sixth = await chat.say(ASKER, f"/提问 {SHIELD}", group=GROUP)
    asked_part = sixth.splitlines()[1].split(f"（{name}今日受理")[0]
    assert f"{name}（" not in asked_part, sixth
    assert "今日受理已达上限，已顺延" in sixth
    assert len(chat.to_user(LEADS[top])) == 5
    # the next studios with real evidence move up; with none left the alliance lead coordinates at once
    index = await chat.bot.runtime.feature(ProblemService).index()
    others = [m.id for m in index.rank(SHIELD, limit=3, exclude={top}) if m.confident]
    asked = [r.studio_id for r in await chat.bot.runtime.feature(ProblemService).repo.requests_of(6)]
    assert asked == others
    if not others:
        assert "已转给联盟负责人协调" in sixth and chat.to_user(TUNNEL_LEAD)
    # the next local day (midnight in Shanghai) the studio is asked again
    clock.set(datetime(2026, 11, 25, 0, 5, tzinfo=SHANGHAI))
    seventh = await chat.say(ASKER, f"/提问 {SHIELD}", group=GROUP)
    assert seventh.splitlines()[1].startswith(f"已私信推荐：{name}（") and "上限" not in seventh
    assert len(chat.to_user(LEADS[top])) == 6


async def test_escalation_respects_the_daily_cap(chat: Chat, clock: ManualClock) -> None:
    chat.bot.runtime.settings = chat.bot.settings.model_copy(update={"claim_hours": 2})
    order = await ranked(chat, SHIELD, limit=8)
    for _ in range(5):
        await chat.say(ASKER, f"/提问 {SHIELD}", group=GROUP)
    service = chat.bot.runtime.feature(ProblemService)
    asked = [[r.studio_id for r in await service.repo.requests_of(n)] for n in range(1, 6)]
    first = asked[0]
    assert asked == [first] * 5 and first == order[: len(first)]  # the first-asked reached the cap of 5 with #5
    k = len(first)
    clock.advance(hours=2, minutes=10)
    assert await fire(chat, ESCALATION_JOB) == "escalated 5, no studio left 0"
    newest = [(await service.repo.requests_of(n))[-1].studio_id for n in range(1, 6)]
    # the next-ranked studio takes all five and is then at the cap; the capped first-asked are skipped
    assert newest == [order[k]] * 5
    start = datetime(2026, 11, 24, tzinfo=SHANGHAI)
    counts = await service.repo.asked_counts(start, start + timedelta(days=1))
    assert counts[order[k]] == 5 and counts[order[0]] == 5
    assert await service.repo.asked_on(clock.now()) == counts  # the per-day counts the cap reads agree
    assert await service.repo.asked_on(clock.now() + timedelta(days=1)) == {}
    assert len(chat.to_user(LEADS[order[k]])) == 5
    # two hours later the capped studios are all skipped: #1 goes to the one after
    clock.advance(hours=2, minutes=10)
    assert await fire(chat, ESCALATION_JOB) == "escalated 5, no studio left 0"
    assert (await service.repo.requests_of(1))[-1].studio_id == order[k + 1]


async def test_morning_digest_lists_problems_open_for_more_than_a_day(chat: Chat, clock: ManualClock) -> None:
    await chat.say(ASKER, SHIELD, group=GROUP)  # #1, Tuesday 10:00
    await chat.say(ASKER, "/提问 二次衬砌背后有空洞，怎么检测和处理？", group=GROUP)  # #2, solved below
    await chat.say("fangshuiqing", "/答复 2 雷达检测后注浆回填")
    await chat.say(ASKER, "/解决 2")
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI))  # 23 h later: not yet a day old
    assert await fire(chat, DIGEST_JOB) == "queued 0 digest messages"
    clock.advance(minutes=5)
    await chat.say(ASKER, "/提问 仰拱施工缝渗水怎么办？", group=GROUP)  # #3, too new for tomorrow's digest
    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI))
    assert await fire(chat, DIGEST_JOB) == "queued 1 digest messages"
    (digest,) = group_texts(chat, GROUP)
    assert digest.startswith("【隧道联盟未解决问题晨报】11月26日，超过一天仍未解决 1 个：")
    assert "#1「" in digest and "待认领，已 1 天" in digest and "#2「" not in digest and "#3「" not in digest
    assert "/认领 编号" in digest
    assert not group_texts(chat, "桥梁联盟群")  # an alliance without old open problems gets nothing
    # the same morning again (a second process): nothing new
    assert (
        await chat.bot.runtime.feature(ProblemService).morning_digest(clock.now())
        == "queued 0 digest messages"
    )
    clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI))
    assert await fire(chat, DIGEST_JOB) == "queued 1 digest messages"
    assert "超过一天仍未解决 2 个" in group_texts(chat, GROUP)[-1]


async def test_jobs_are_registered_at_their_times(chat: Chat) -> None:
    specs = chat.bot.jobs.specs
    assert ESCALATION_JOB in specs and DIGEST_JOB in specs
    start = datetime(2026, 11, 24, 10, 1, tzinfo=SHANGHAI)
    digest = specs[DIGEST_JOB].trigger.get_next_fire_time(None, start)
    assert digest == datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
    escalation = specs[ESCALATION_JOB].trigger.get_next_fire_time(None, start)
    assert escalation - start <= timedelta(minutes=10)


async def test_each_studio_lead_gets_a_morning_to_do_only_when_there_is_one(chat: Chat, clock: ManualClock) -> None:
    first = await chat.say(ASKER, SHIELD, group=GROUP)  # #1: T1 is asked
    assert "#1" in first
    await chat.say(ASKER, "/提问 钻爆法隧道光面爆破超挖严重，周边眼怎么布置？", group=GROUP)  # #2
    assert "已认领" in await chat.say("shibaopo", "/认领 2")  # T2 took it, no answer yet
    clock.set(datetime(2026, 11, 25, 8, 30, tzinfo=SHANGHAI))
    assert await fire(chat, TODO_JOB) != "queued 0 to-do messages"
    t1 = [t for t in chat.to_user("chenjuejin") if t.startswith("【今日待办】")]
    assert len(t1) == 1 and "1 个问题待认领" in t1[0] and "#1「" in t1[0] and "#2「" not in t1[0], t1
    t2 = [t for t in chat.to_user("shibaopo") if t.startswith("【今日待办】")]
    assert len(t2) == 1 and "1 个问题待答复" in t2[0] and "#2「" in t2[0], t2
    assert not [t for t in chat.to_user("xuanbining") if t.startswith("【今日待办】")]  # a bridge lead: nothing to do
    # the same morning again (a second process): nothing new; answered and claimed work drops out the next day
    assert await chat.bot.runtime.feature(ProblemService).lead_todo(clock.now()) == "queued 0 to-do messages"
    await chat.say("shibaopo", "/答复 2 周边眼间距减到45cm，装药不耦合")
    clock.set(datetime(2026, 11, 26, 8, 30, tzinfo=SHANGHAI))
    await fire(chat, TODO_JOB)
    assert len([t for t in chat.to_user("shibaopo") if t.startswith("【今日待办】")]) == 1
