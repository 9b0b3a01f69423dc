"""The web console's remaining actions over real HTTP, on SQLite and PostgreSQL: editing, withdrawing and
confirming achievements and awards (the chat's services, role checks and audit trail), a problem's photos,
an activity's attendance (marked from the page, exported), and the report's cache never showing stale figures."""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import BOT_KEY, BotApp
from bot.channels.web import add_routes
from bot.core.clock import ManualClock
from bot.settings import Settings
from bot.store.media import MediaFiles, PhotoRepo, ProblemPhoto
from tests.conftest import ADMIN
from tests.harness import Chat
from tests.test_console import log_problem, sign_in

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test bot's settings with a data directory of its own (where photos are kept)."""
    return Settings(database_url=database_url, admins=[ADMIN], data_dir=str(tmp_path / "data"))


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[Client]:
    app = web.Application()
    app[BOT_KEY] = bot
    add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def number_in(reply: str, prefix: str) -> int:
    match = re.search(prefix + r"\s*#?(\d+)", reply)
    assert match, reply
    return int(match.group(1))


async def register(chat: Chat, user: str, text: str) -> int:
    return number_in(await chat.say(user, f"/成果 登记 {text}"), "成果")


# -- achievements ----------------------------------------------------------------------------------


async def test_an_achievement_is_edited_and_withdrawn_with_reasons_seen_in_chat(
    chat: Chat, client: Client
) -> None:
    number = await register(chat, ADMIN, "工法 盾构管片拼装质量控制工法 T1 2026")
    csrf = await sign_in(chat, client, "chenjuejin")  # T1's lead
    listing = await (await client.get("/console/achievements")).text()
    assert f'href="/console/achievements/{number}"' in listing and "已确认" in listing
    detail = await (await client.get(f"/console/achievements/{number}")).text()
    assert 'id="achievement-save"' in detail and 'id="achievement-delete"' in detail
    form = {
        "csrf": csrf,
        "type": "工法",
        "title": "盾构管片拼装错台控制工法",
        "year": "2026",
        "studios": "T1",
    }
    no_reason = await client.post(f"/console/achievements/{number}/edit", data=form)
    assert no_reason.status == 400 and "请写明修改原因" in await no_reason.text()
    no_csrf = await client.post(
        f"/console/achievements/{number}/edit", data={**form, "csrf": "", "reason": "名称有误"}
    )
    assert no_csrf.status == 403 and "CSRF" in await no_csrf.text()
    unchanged = await client.post(
        f"/console/achievements/{number}/edit",
        data={**form, "title": "盾构管片拼装质量控制工法", "reason": "无"},
    )
    assert unchanged.status == 400 and "没有修改任何内容" in await unchanged.text()
    bad_year = await client.post(
        f"/console/achievements/{number}/edit", data={**form, "year": "3000", "reason": "年份"}
    )
    assert bad_year.status == 400 and "年份「3000」不对" in await bad_year.text()
    saved = await client.post(f"/console/achievements/{number}/edit", data={**form, "reason": "名称有误"})
    text = await saved.text()
    assert (
        saved.status == 200
        and "已修改成果" in text
        and "名称 盾构管片拼装质量控制工法→盾构管片拼装错台控制工法" in text
    )
    shown = await chat.say("asker1", f"/成果 {number}")
    assert "盾构管片拼装错台控制工法" in shown and "原因：名称有误" in shown

    withdrawn = await client.post(
        f"/console/achievements/{number}/delete", data={"csrf": csrf, "reason": "重复登记"}
    )
    assert withdrawn.status == 200 and "已撤销成果" in await withdrawn.text()
    assert "状态：已撤销" in await chat.say("asker1", f"/成果 {number}")
    assert f"/console/achievements/{number}" not in await (await client.get("/console/achievements")).text()
    assert (
        f"/console/achievements/{number}"
        in await (await client.get("/console/achievements?state=withdrawn")).text()
    )
    again = await client.post(f"/console/achievements/{number}/delete", data={"csrf": csrf, "reason": "x"})
    assert again.status == 400 and "已经撤销过了" in await again.text()

    await sign_in(chat, client, ADMIN)
    audit = await (await client.get("/console/audit?entity=achievement")).text()
    assert "网页后台" in audit and "名称有误" in audit and "重复登记" in audit


async def test_achievement_changes_are_refused_where_chat_refuses_them(chat: Chat, client: Client) -> None:
    number = await register(chat, ADMIN, "工法 盾构管片拼装质量控制工法 T1 2026")
    data = {"title": "别的名称", "reason": "试试"}
    csrf = await sign_in(chat, client, "zhanglali")  # a bridge studio lead
    detail = await (await client.get(f"/console/achievements/{number}")).text()
    assert "achievement-save" not in detail and "achievement-delete" not in detail
    for action in ("edit", "delete"):
        response = await client.post(f"/console/achievements/{number}/{action}", data={"csrf": csrf, **data})
        assert response.status == 403, action
        assert "只有成果所属工作室的负责人" in await response.text()
    csrf = await sign_in(chat, client, "asker1")  # a member
    response = await client.post(f"/console/achievements/{number}/edit", data={"csrf": csrf, **data})
    assert response.status == 403 and "需要「工作室负责人」及以上权限" in await response.text()
    assert "盾构管片拼装质量控制工法" in await chat.say("asker1", f"/成果 {number}")  # unchanged
    assert (await client.get("/console/achievements/999999")).status == 404
    assert (await client.get("/console/achievements/abc")).status == 404


async def test_a_pending_achievement_is_confirmed_by_the_studio_it_names(chat: Chat, client: Client) -> None:
    number = await register(chat, "chenjuejin", "工法 桥隧过渡段沉降控制工法 T1 B1 2026")
    csrf = await sign_in(chat, client, "chenjuejin")  # registered it: may not confirm for B1
    listing = await (await client.get("/console/achievements")).text()
    assert "待确认" in listing and f'id="confirm-{number}"' not in listing
    refused = await client.post(f"/console/achievements/{number}/confirm", data={"csrf": csrf})
    assert refused.status == 403 and "您不在其中" in await refused.text()

    csrf = await sign_in(chat, client, "zhanglali")  # B1's lead
    listing = await (await client.get("/console/achievements")).text()
    assert f'id="confirm-{number}"' in listing
    detail = await (await client.get(f"/console/achievements/{number}")).text()
    assert "待确认" in detail and 'id="achievement-confirm"' in detail
    done = await client.post(f"/console/achievements/{number}/confirm", data={"csrf": csrf})
    assert done.status == 200 and "成果已计入统计" in await done.text()
    assert "状态：待" not in await chat.say("asker1", f"/成果 {number}")
    twice = await client.post(f"/console/achievements/{number}/confirm", data={"csrf": csrf})
    assert twice.status == 409 and "不需要确认" in await twice.text()


# -- awards ----------------------------------------------------------------------------------------


async def test_an_award_is_edited_and_withdrawn_by_its_alliance_lead(chat: Chat, client: Client) -> None:
    number = await register(chat, ADMIN, "工法 盾构管片拼装质量控制工法 T1 2026")
    award = number_in(await chat.say(ADMIN, f"/奖励 {number} 2万 2026 优秀成果奖"), "奖励")
    csrf = await sign_in(chat, client, "mushandong")  # the tunnel alliance's lead
    awards = await (await client.get("/console/awards")).text()
    assert f'href="/console/awards/{award}"' in awards
    detail = await (await client.get(f"/console/achievements/{number}")).text()
    assert f'href="/console/awards/{award}"' in detail
    page = await (await client.get(f"/console/awards/{award}")).text()
    assert 'id="award-save"' in page and "20,000" in page
    bad = await client.post(
        f"/console/awards/{award}/edit", data={"csrf": csrf, "amount": "很多", "reason": "录入错误"}
    )
    assert bad.status == 400
    saved = await client.post(
        f"/console/awards/{award}/edit", data={"csrf": csrf, "amount": "1.5万", "reason": "金额录入错误"}
    )
    text = await saved.text()
    assert saved.status == 200 and f"已修改奖励 #{award}：金额 20000→15000" in text
    shown = await chat.say("asker1", f"/成果 {number}")
    assert "15,000 元" in shown and "原因：金额录入错误" in shown

    withdrawn = await client.post(
        f"/console/awards/{award}/delete", data={"csrf": csrf, "reason": "重复发放"}
    )
    assert withdrawn.status == 200 and f"已撤销奖励 #{award}" in await withdrawn.text()
    assert "（已撤销）" in await chat.say("asker1", f"/成果 {number}")
    assert 'id="award-save"' not in await (await client.get(f"/console/awards/{award}")).text()
    assert (await client.get("/console/awards/999999")).status == 404


async def test_award_changes_need_the_alliance_lead_of_the_award(chat: Chat, client: Client) -> None:
    number = await register(chat, ADMIN, "工法 盾构管片拼装质量控制工法 T1 2026")
    award = number_in(await chat.say(ADMIN, f"/奖励 {number} 2万 2026 优秀成果奖"), "奖励")
    data = {"amount": "1", "reason": "试试"}
    csrf = await sign_in(chat, client, "chenjuejin")  # T1's lead: a studio lead, not an alliance lead
    assert 'id="award-save"' not in await (await client.get(f"/console/awards/{award}")).text()
    response = await client.post(f"/console/awards/{award}/edit", data={"csrf": csrf, **data})
    assert response.status == 403 and "需要「联盟负责人」及以上权限" in await response.text()
    csrf = await sign_in(chat, client, "gaojiaqiao")  # the bridge alliance's lead
    for action in ("edit", "delete"):
        response = await client.post(f"/console/awards/{award}/{action}", data={"csrf": csrf, **data})
        assert response.status == 403, action
        assert "只有本联盟的联盟负责人或管理员" in await response.text()
    missing = await client.post(f"/console/awards/{award}/edit", data=data)
    assert missing.status == 403 and "CSRF" in await missing.text()
    assert "20,000 元" in await chat.say("asker1", f"/成果 {number}")


# -- a problem's photos ----------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(3000)


async def attach(
    bot: BotApp, problem_id: int, data: bytes, mime: str, key: str, *, store: bool = True
) -> int:
    files = MediaFiles(bot.settings.effective_data_dir / "media")
    digest = files.put(data, mime) if store else hashlib.sha256(data).hexdigest()
    repo = PhotoRepo(bot.store.sessions)
    assert await repo.attach(
        ProblemPhoto(
            problem_id=problem_id, sha256=digest, mime=mime, size=len(data), user_id="asker1", msg_key=key
        )
    )
    photo = next(p for p in await repo.of_problem(problem_id) if p.msg_key == key)
    assert photo.id is not None
    return photo.id


async def test_a_problems_photos_are_shown_and_served_only_from_the_store(
    chat: Chat, client: Client, bot: BotApp
) -> None:
    number = await log_problem(chat)
    other = await log_problem(chat)
    png = await attach(bot, number, PNG, "image/png", "wecom:m1#0")
    jpeg = await attach(bot, number, JPEG, "image/jpeg", "wecom:m1#1")
    gone = await attach(
        bot, number, b"\xff\xd8\xff" + os.urandom(100), "image/jpeg", "wecom:m2#0", store=False
    )
    photo_url = f"/console/problems/{number}/photos/{png}"
    assert (await client.get(photo_url, allow_redirects=False)).status == 302  # no session: sign in first
    await sign_in(chat, client, "asker1")
    page = await (await client.get(f"/console/problems/{number}")).text()
    assert "照片（3 张）" in page and f'src="{photo_url}"' in page
    assert "照片" not in await (await client.get(f"/console/problems/{other}")).text()
    served = await client.get(photo_url)
    assert served.status == 200 and served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff" and await served.read() == PNG
    served = await client.get(f"/console/problems/{number}/photos/{jpeg}")
    assert served.headers["Content-Type"] == "image/jpeg" and await served.read() == JPEG
    for path in (
        f"/console/problems/{number}/photos/{gone}",  # the row is there, its file is not
        f"/console/problems/{other}/photos/{png}",  # another problem's photo
        f"/console/problems/{number}/photos/999999",
        f"/console/problems/{number}/photos/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/console/problems/{number}/photos/{hashlib.sha256(PNG).hexdigest()}.png",
        "/console/problems/999999/photos/1",
    ):
        response = await client.get(path)
        assert response.status == 404, path
        assert "照片" in await response.text() or "没有这个问题" in await response.text(), path


# -- attendance ------------------------------------------------------------------------------------


async def test_attendance_is_shown_marked_from_the_page_and_exported(
    chat: Chat, client: Client, clock: ManualClock
) -> None:
    added = await chat.say(
        "mushandong", "/活动 添加 讲座 11月26日下午3点 盾构施工新技术 地点 郑州会议中心 名额 1"
    )
    number = number_in(added, "/报名")
    await chat.say("chenjuejin", f"/报名 {number}")
    await chat.say("shibaopo", f"/报名 {number}")  # the waiting list (one seat)
    csrf = await sign_in(chat, client, "mushandong")  # the organiser
    before = await (await client.get(f"/console/activities/{number}")).text()
    assert '签到 <strong id="present-count">0</strong> 人' in before and "mark-button" not in before
    early = await client.post(
        f"/console/activities/{number}/attendance", data={"csrf": csrf, "person": "chenjuejin"}
    )
    assert early.status == 400 and "还没有开始" in await early.text()

    clock.advance(days=2, hours=6)  # 11-26 16:00, an hour into the lecture
    assert (await chat.say("chenjuejin", f"/签到 {number}")).startswith("签到成功")
    csrf = await sign_in(chat, client, "mushandong")  # the idle session ended meanwhile
    page = await (await client.get(f"/console/activities/{number}")).text()
    assert "本人签到" in page and 'id="mark-shibaopo"' in page and 'id="mark-chenjuejin"' not in page
    no_csrf = await client.post(f"/console/activities/{number}/attendance", data={"person": "shibaopo"})
    assert no_csrf.status == 403
    nobody = await client.post(f"/console/activities/{number}/attendance", data={"csrf": csrf})
    assert nobody.status == 400 and "请勾选或填写" in await nobody.text()
    marked = await client.post(
        f"/console/activities/{number}/attendance",
        data={"csrf": csrf, "person": "shibaopo", "others": "外单位王工"},
    )
    text = await marked.text()
    assert marked.status == 200 and "补记 2 人：石爆破、外单位王工；共 3 人参加" in text
    assert "未报名" in text and text.count("补记 11-26 16:00") == 2
    assert "1 人已签到过" in await chat.say("mushandong", f"/签到 {number} 补记 石爆破")  # the same records

    from openpyxl import load_workbook

    export = await client.get(f"/console/activities/{number}/attendees.xlsx")
    sheet = load_workbook(io.BytesIO(await export.read())).active
    assert sheet is not None
    assert [c.value for c in sheet[2]][7:] == ["签到", "签到时间"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert [r[1:3] + r[7:] for r in rows] == [
        ["已报名", "陈掘进", "本人签到", "2026-11-26 16:00"],
        ["候补 1", "石爆破", "补记", "2026-11-26 16:00"],
        ["未报名", "外单位王工", "补记", "2026-11-26 16:00"],
    ]

    for user in ("zhanglali", "gaojiaqiao"):  # a studio lead; another alliance's lead (sees the list)
        csrf = await sign_in(chat, client, user)
        assert "mark-button" not in await (await client.get(f"/console/activities/{number}")).text()
        refused = await client.post(
            f"/console/activities/{number}/attendance", data={"csrf": csrf, "others": "李四"}
        )
        assert refused.status == 403, user
        assert "只有活动的组织者、所属联盟负责人或管理员" in await refused.text()


# -- the report: fast first render, never stale ---------------------------------------------------

TOTAL = re.compile(r"<td>奖励金额合计</td><td>([^<]*)</td>")
HELD = re.compile(r"<td>举办活动</td><td>([^<]*)</td>")


async def report_page(client: Client) -> str:
    response = await client.get("/console/report?year=2026")
    assert response.status == 200
    return await response.text()


def figure(pattern: re.Pattern[str], html: str) -> str:
    match = pattern.search(html)
    assert match, html
    return match.group(1).replace(",", "")


async def test_the_report_is_reused_until_its_data_changes_anywhere(
    chat: Chat, client: Client, bot: BotApp, clock: ManualClock
) -> None:
    await chat.say(ADMIN, "/奖励 T1 3万 2026 五星级工作室")
    await sign_in(chat, client, ADMIN)
    first = await report_page(client)
    assert figure(TOTAL, first) == "30000"
    # the page does not wait for the charts: they come from the fragment it names
    assert "data:image/png;base64," not in first and "图表生成中" in first
    url = re.search(r'data-src="([^"]+)"', first)
    assert url, first
    charts = await client.get(url.group(1).replace("&amp;", "&"))
    assert charts.status == 200 and (await charts.text()).count("data:image/png;base64,") >= 1
    again = await report_page(client)  # nothing changed: the same report, its charts drawn already
    assert "data:image/png;base64," in again and figure(TOTAL, again) == "30000"

    await chat.say(ADMIN, "/奖励 T2 1万 2026 优秀成果奖")  # a change from chat
    changed = await report_page(client)
    assert figure(TOTAL, changed) == "40000" and "data:image/png;base64," not in changed

    second = await BotApp.create(bot.settings, clock=bot.clock)  # another process on the same database
    try:
        await Chat(second).say(ADMIN, "/奖励 T3 5000 2026 优秀成果奖")
    finally:
        await second.close()
    assert figure(TOTAL, await report_page(client)) == "45000"

    await chat.say("mushandong", "/活动 添加 讲座 11月24日下午3点 盾构施工新技术 地点 郑州会议中心")
    assert figure(HELD, await report_page(client)) == "0"
    clock.advance(hours=5, minutes=30)  # the lecture has started: held, the same day, no data changed
    await sign_in(chat, client, ADMIN)
    assert figure(HELD, await report_page(client)) == "1"
