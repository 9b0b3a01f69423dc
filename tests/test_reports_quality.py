"""First-response time and the askers' satisfaction per studio (``bot.services.reports_quality``), on SQLite and
PostgreSQL with a moving clock: problems logged, claimed, transferred, answered and rated through the chat; the
same figures in ``/统计``, in the workbook (read back with openpyxl) and on the console's report page; problems
nobody rated and studios nobody asked show 「暂无」."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from bot.app import BOT_KEY, BotApp
from bot.channels.web import add_routes
from bot.core.clock import ManualClock
from bot.services.problems import ProblemService
from bot.services.reports import collect, write_workbook
from bot.services.reports_quality import SHEET, claimed_studio, first_responses
from bot.store.feedback import FeedbackRepo, ProblemFeedback
from tests.conftest import ADMIN
from tests.harness import Chat

Client = TestClient[web.Request, web.Application]
LINK = re.compile(r"(https?://\S+/console/login\?token=\S+)")

T1_LEAD = "chenjuejin"  # 盾构掘进控制劳模创新工作室 (T1), 隧道联盟
T2_LEAD = "shibaopo"  # 钻爆法隧道工匠工作室 (T2)
T3_LEAD = "fangshuiqing"  # 隧道防排水与衬砌质量工作室 (T3)
P1_LEAD = "wuchengli"  # 接触网施工技能大师工作室 (P1), 四电联盟
GROUP = "隧道联盟群"
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"
SEGMENT = "盾构管片拼装后错台超标，管片破损严重，怎么控制？"
CUTTER = "盾构刀盘结泥饼，掘进扭矩升高，怎么处理？"
BLASTING = "钻爆法隧道光面爆破超挖严重，周边眼装药怎么调整？"
CATENARY = "接触网吊弦安装后导高偏差超标，拉出值也不对，怎么处理？"
T1_NAME, T2_NAME, T3_NAME = "盾构掘进控制劳模创新工作室", "钻爆法隧道工匠工作室", "隧道防排水与衬砌质量工作室"


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[Client]:
    app = web.Application()
    app[BOT_KEY] = bot
    add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def logged(chat: Chat, text: str, asker: str) -> int:
    reply = await chat.say(asker, f"/提问 {text}", group=GROUP)
    assert reply.startswith("已登记技术问题 #"), reply
    return int(reply.split("#", 1)[1].split("。", 1)[0])


async def asked(bot: BotApp, number: int) -> list[str]:
    return [r.studio_id for r in await bot.runtime.feature(ProblemService).repo.requests_of(number)]


async def seed(bot: BotApp, chat: Chat, clock: ManualClock) -> dict[str, int]:
    """Five problems of 2026 (the clock starts on 24 November, 10:00 in Shanghai); returns how many requests
    each studio got. The expected figures:

    - #1 T1 claims after 2 h, answers; the asker confirms (/解决): 满意 for T1.
    - #2 T1 claims after 4 h, answers; the asker says 还没解决 (/未解决): 不满意 for T1. T1: median 3.0 h, 50%.
    - #3 transferred to T3 by the alliance lead 5 h after logging, T3 claims 0.5 h after the transfer (its
      response counts from the transfer), answers; the asker's 👍 is withdrawn, a colleague's 👍 does not count:
      unrated. T3: 0.5 h, 「暂无」.
    - #4 T2 claims after 6 h, answers; 👎 then 👍 from the asker: the latest counts, 满意. T2: 6.0 h, 100%.
    - #5 P1 (四电) claims after 1 h and answers; nobody rates it.
    Every other studio asked never claimed: asked, no response. Studios nobody asked: 「暂无」 throughout.
    """
    start = clock.now()
    feedback = FeedbackRepo(bot.store.sessions)

    async def rate(number: int, user: str, rating: int, key: str) -> None:
        assert await feedback.record(
            ProblemFeedback(problem_id=number, user_id=user, rating=rating, event_key=key, created_at=clock.now())
        )

    one = await logged(chat, SHIELD, "asker1")
    two = await logged(chat, SEGMENT, "asker2")
    three = await logged(chat, CUTTER, "asker3")
    four = await logged(chat, BLASTING, "asker4")
    five = await logged(chat, CATENARY, "asker5")
    assert "T1" in await asked(bot, one) and "T1" in await asked(bot, two)
    assert "T2" in await asked(bot, four) and "P1" in await asked(bot, five)
    assert "T3" not in await asked(bot, three)

    clock.set(start + timedelta(hours=1))
    assert "已认领" in await chat.say(P1_LEAD, f"/认领 {five}")
    assert "已答复" in await chat.say(P1_LEAD, f"/答复 {five} 复测导高后调整吊弦长度")
    clock.set(start + timedelta(hours=2))
    assert "已认领" in await chat.say(T1_LEAD, f"/认领 {one}")
    assert "已答复" in await chat.say(T1_LEAD, f"/答复 {one} 降低推进速度，检查土压传感器")
    assert "已标记为解决" in await chat.say("asker1", f"/解决 {one}")
    clock.set(start + timedelta(hours=4))
    assert "已认领" in await chat.say(T1_LEAD, f"/认领 {two}")
    assert "已答复" in await chat.say(T1_LEAD, f"/答复 {two} 调整千斤顶行程差")
    assert "已记录您的反馈" in await chat.say("asker2", f"/未解决 {two} 错台还在")
    clock.set(start + timedelta(hours=5))
    assert "T3" in await chat.say("mushandong", f"/转派 {three} T3")
    clock.set(start + timedelta(hours=5, minutes=30))
    assert "已认领" in await chat.say(T3_LEAD, f"/认领 {three}")
    assert "已答复" in await chat.say(T3_LEAD, f"/答复 {three} 加强端头加固")
    await rate(three, "asker3", 1, "t:3a")
    await rate(three, "colleague", 1, "t:3b")  # not the asker: not counted
    await rate(three, "asker3", 0, "t:3c")  # withdrawn: unrated
    clock.set(start + timedelta(hours=6))
    assert "已认领" in await chat.say(T2_LEAD, f"/认领 {four}")
    assert "已答复" in await chat.say(T2_LEAD, f"/答复 {four} 减少周边眼装药量")
    await rate(four, "asker4", -1, "t:4a")
    await rate(four, "asker4", 1, "t:4b")  # changed their mind: the latest counts
    requests: dict[str, int] = {}
    for number in (one, two, three, four, five):
        for studio_id in await asked(bot, number):
            requests[studio_id] = requests.get(studio_id, 0) + 1
    return requests


def sheets_of(path: Path) -> dict[str, list[list[Any]]]:
    book = load_workbook(path, read_only=True)
    try:
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}
    finally:
        book.close()


async def sign_in(chat: Chat, client: Client, user: str) -> None:
    reply = await chat.say(user, "/后台")
    match = LINK.search(reply)
    assert match, reply
    parts = urlsplit(match.group(1))
    response = await client.get(f"{parts.path}?{parts.query}", allow_redirects=False)
    assert response.status == 302


def cells(html: str, row_id: str) -> list[str]:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html)
    assert match, row_id
    return re.findall(r"<td>([^<]*)</td>", match.group(1))


def summary_cell(html: str, label: str) -> str:
    match = re.search(rf"<td>{label}</td><td>([^<]*)</td>", html)
    assert match, label
    return match.group(1)


async def test_stats_workbook_and_console_agree_per_studio(
    bot: BotApp, chat: Chat, clock: ManualClock, client: Client, tmp_path: Path
) -> None:
    requests = await seed(bot, chat, clock)
    total_requests = sum(requests.values())

    # /统计: one line for the service, the best and worst rated studios
    text = await chat.say("someone", "/统计")
    service = [line for line in text.splitlines() if line.startswith("服务：")]
    assert service == ["服务：满意率 66.7%（已评价 3 个），首次响应中位 2.0 小时（5 次）。"], text
    assert f"满意率最高 {T2_NAME} 100.0%，最低 {T1_NAME} 50.0%。" in text
    tunnel = await chat.say("someone", "/stats 2026 隧道")
    assert "服务：满意率 66.7%（已评价 3 个），首次响应中位 3.0 小时（4 次）。" in tunnel
    power = await chat.say("someone", "/统计 2026 四电")
    assert "服务：满意率 暂无（无人评价），首次响应中位 1.0 小时（1 次）。" in power
    assert "满意率最高" not in power
    assert "服务：满意率 暂无（无人评价），首次响应中位 暂无。" in await chat.say("someone", "/统计 2025")

    # the workbook: the per-studio sheet with its totals, and the summary rows
    report = await collect(bot.store, year=2026, tz=bot.settings.tz, now=clock.now())
    sheets = sheets_of(write_workbook(report, tmp_path / "report.xlsx"))
    rows = sheets[SHEET]
    assert rows[0] == [
        "工作室编号",
        "工作室",
        "联盟",
        "被请求",
        "已响应",
        "首次响应中位（小时）",
        "满意",
        "不满意",
        "已评价",
        "满意率",
    ]
    by_id = {r[0]: r for r in rows[1:] if len(r) > 3 and r[3] is not None}  # not the footnotes
    assert by_id["T1"][1:] == [T1_NAME, "隧道联盟", requests["T1"], 2, 2.0 + 1.0, 1, 1, 2, 0.5]
    assert by_id["T2"][3:] == [requests["T2"], 1, 6.0, 1, 0, 1, 1.0]
    assert by_id["T3"][3:] == [requests["T3"], 1, 0.5, 0, 0, 0, "暂无"]
    assert by_id["P1"][3:] == [requests["P1"], 1, 1.0, 0, 0, 0, "暂无"]
    never = [sid for sid in by_id if sid != "合计" and sid not in requests]
    assert never, "every studio was asked: the seed must leave one out"
    for studio_id in never:
        assert by_id[studio_id][3:] == [0, 0, "暂无", 0, 0, 0, "暂无"]
    assert by_id["合计"][3:] == [total_requests, 5, 2.0, 2, 1, 3, 2 / 3]
    assert any("首次响应口径" in str(r[0]) for r in rows if r)
    summary = {r[0]: r[1] for r in sheets["汇总"][1:] if r and r[0]}
    assert summary["首次响应用时中位数"] == 2.0
    assert (summary["满意评价"], summary["不满意评价"], summary["满意率"]) == (2, 1, 2 / 3)

    # the console's report page: the same rows and per-studio figures
    await sign_in(chat, client, ADMIN)
    response = await client.get("/console/report?year=2026")
    assert response.status == 200
    html = await response.text()
    assert summary_cell(html, "满意率") == "66.7%"
    assert summary_cell(html, "首次响应用时中位数") == "2.0"
    assert cells(html, "studio-T1")[-3:] == ["3.0", "2", "50.0%"]
    assert cells(html, "studio-T2")[-3:] == ["6.0", "1", "100.0%"]
    assert cells(html, "studio-T3")[-3:] == ["0.5", "0", "暂无"]
    assert cells(html, f"studio-{never[0]}")[-3:] == ["暂无", "0", "暂无"]

    # a new rating shows on the page at once (the page's cached report is keyed by the ratings too)
    await chat.say("asker5", "/解决 5")
    html = await (await client.get("/console/report?year=2026")).text()
    assert summary_cell(html, "满意率") == "75.0%"
    assert cells(html, "studio-P1")[-3:] == ["1.0", "1", "100.0%"]
    assert "满意率 75.0%（已评价 4 个）" in await chat.say("someone", "/统计")


async def test_an_empty_year_shows_none_yet_everywhere(
    bot: BotApp, chat: Chat, client: Client, tmp_path: Path
) -> None:
    text = await chat.say("someone", "/统计")
    assert "服务：满意率 暂无（无人评价），首次响应中位 暂无。" in text
    report = await collect(bot.store, year=2026, tz=bot.settings.tz, now=bot.clock.now())
    rows = sheets_of(write_workbook(report, tmp_path / "empty.xlsx"))[SHEET]
    total = next(r for r in rows if r and r[0] == "合计")
    assert total[3:] == [0, 0, "暂无", 0, 0, 0, "暂无"]
    await sign_in(chat, client, ADMIN)
    html = await (await client.get("/console/report?year=2026")).text()
    assert summary_cell(html, "满意率") == "暂无" and summary_cell(html, "首次响应用时中位数") == "暂无"


def test_first_response_is_the_first_claim_by_that_studio_after_it_was_asked() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    hours = first_responses(
        [(1, "T1", t0), (1, "T2", t0 + timedelta(hours=3)), (2, "T1", t0)],
        [
            (1, t0 + timedelta(hours=1), "盾构掘进控制劳模创新工作室（T1）"),  # before T2 was asked
            (1, t0 + timedelta(hours=5), "钻爆法隧道工匠工作室（T2）"),
            (1, t0 + timedelta(hours=9), "盾构掘进控制劳模创新工作室（T1）"),  # a later claim: not the first
        ],
    )
    assert hours == {(1, "T1"): 1.0, (1, "T2"): 2.0, (2, "T1"): None}
    assert claimed_studio("某工作室（B1）") == "B1" and claimed_studio("B1") is None
