"""The web console over real HTTP: one-time sign-in links from ``/后台``, sessions, CSRF and role refusals, on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import BOT_KEY, BotApp
from bot.channels.calendar import add_routes as add_calendar_routes
from bot.channels.web import add_routes
from bot.core.clock import ManualClock
from bot.services.console import COOKIE, ConsoleService
from bot.store.evaluations import EvaluationRepo
from tests.conftest import ADMIN
from tests.harness import Chat

Client = TestClient[web.Request, web.Application]
LINK = re.compile(r"(https?://\S+/console/login\?token=\S+)")


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[Client]:
    app = web.Application()
    app[BOT_KEY] = bot
    add_routes(app)
    add_calendar_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def login_path(reply: str) -> str:
    match = LINK.search(reply)
    assert match, reply
    parts = urlsplit(match.group(1))
    return f"{parts.path}?{parts.query}"


async def sign_in(chat: Chat, client: Client, user: str) -> str:
    """Sign ``user`` in through a chat ``/后台`` link; returns the session's CSRF token."""
    reply = await chat.say(user, "/后台")
    response = await client.get(login_path(reply), allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/console/"
    page = await client.get("/console/")
    assert page.status == 200
    html = await page.text()
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def test_console_link_from_a_private_chat_signs_in_once(chat: Chat, client: Client) -> None:
    reply = await chat.say("mushandong", "/后台")
    assert "10 分钟内有效" in reply and "联盟负责人" in reply
    assert (
        reply.count("http://127.0.0.1:8080/console/login?token=") == 1
    )  # serve's address without BOT_PUBLIC_URL
    path = login_path(reply)
    response = await client.get(path, allow_redirects=False)
    assert response.status == 302
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert cookie["path"] == "/console"
    overview = await client.get("/console/")
    html = await overview.text()
    assert overview.status == 200 and "概览" in html and "穆山洞" in html
    # the same link a second time (another browser): refused, the session stays
    other = TestClient(TestServer(client.app))
    async with other:
        again = await other.get(path, allow_redirects=False)
        assert again.status == 403
        assert "已经用过" in await again.text()
    assert (await client.get("/console/")).status == 200


async def test_console_in_a_group_gives_no_link(chat: Chat) -> None:
    reply = await chat.say("mushandong", "/console", group="隧道联盟群")
    assert "私聊" in reply and "token=" not in reply


async def test_expired_and_forged_links_are_refused(chat: Chat, client: Client, clock: ManualClock) -> None:
    path = login_path(await chat.say("chenjuejin", "/后台"))
    clock.advance(minutes=10)
    expired = await client.get(path, allow_redirects=False)
    assert expired.status == 403 and "已过期" in await expired.text()
    assert "请在企业微信里向机器人发送 /后台 获取登录链接" in await expired.text()

    fresh = login_path(await chat.say("chenjuejin", "/后台"))
    body, signature = fresh.split("token=")[1].split(".")
    # another user's name in a link signed for chenjuejin
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["u"] = ADMIN
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for token in (f"{forged_body}.{signature}", "garbage", f"{body}.", "", "a.b.c", "%%%"):
        response = await client.get(f"/console/login?token={token}", allow_redirects=False)
        assert response.status == 403, token
        assert COOKIE not in response.cookies
    assert (await client.get("/console/", allow_redirects=False)).status == 302
    # the genuine link still works
    assert (await client.get(fresh, allow_redirects=False)).status == 302


async def test_pages_need_a_session_but_health_and_calendars_do_not(client: Client) -> None:
    for path in ("/console/", "/console/problems", "/console/studios", "/console/audit", "/console"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302, path
        assert response.headers["Location"] in ("/console/signin", "/console/"), path
    response = await client.get("/console/problems")  # followed
    assert response.url.path == "/console/signin"
    assert "请在企业微信里向机器人发送 /后台 获取登录链接" in await response.text()
    posted = await client.post("/console/problems/1/close", data={"csrf": "x"}, allow_redirects=False)
    assert posted.status == 302 and posted.headers["Location"] == "/console/signin"
    calendar = await client.get("/calendar.ics")
    assert calendar.status == 200
    forged = await client.get("/console/", cookies={COOKIE: "made-up"}, allow_redirects=False)
    assert forged.status == 302


async def test_state_changes_need_the_csrf_token(chat: Chat, client: Client) -> None:
    csrf = await sign_in(chat, client, ADMIN)
    overview = await (await client.get("/console/")).text()
    assert "定时任务" in overview and "问题升级" in overview and "发件箱" in overview
    missing = await client.post("/console/logout", data={}, allow_redirects=False)
    assert missing.status == 403 and "CSRF" in await missing.text()
    wrong = await client.post("/console/logout", data={"csrf": csrf + "x"}, allow_redirects=False)
    assert wrong.status == 403
    assert (await client.get("/console/")).status == 200  # still signed in
    ok = await client.post("/console/logout", data={"csrf": csrf}, allow_redirects=False)
    assert ok.status == 302 and ok.headers["Location"] == "/console/signin"
    assert (await client.get("/console/", allow_redirects=False)).status == 302


async def test_idle_sessions_end(chat: Chat, client: Client, clock: ManualClock, bot: BotApp) -> None:
    await sign_in(chat, client, "chenjuejin")
    clock.advance(minutes=59)
    assert (await client.get("/console/", allow_redirects=False)).status == 200  # and the idle clock restarts
    clock.advance(minutes=59)
    assert (await client.get("/console/", allow_redirects=False)).status == 200
    clock.advance(minutes=61)
    assert (await client.get("/console/", allow_redirects=False)).status == 302
    assert bot.settings.console_idle_minutes == 60


async def test_sessions_and_used_links_are_shared_between_processes(
    chat: Chat, client: Client, bot: BotApp
) -> None:
    """A second bot process on the same database accepts the session and refuses the used link."""
    reply = await chat.say("chenjuejin", "/后台")
    path = login_path(reply)
    assert (await client.get(path, allow_redirects=False)).status == 302
    second = await BotApp.create(bot.settings, clock=bot.clock)
    try:
        app = web.Application()
        app[BOT_KEY] = second
        add_routes(app)
        async with TestClient(TestServer(app)) as other:
            assert (await other.get(path, allow_redirects=False)).status == 403
            cookie = next(c for c in client.session.cookie_jar if c.key == COOKIE).value
            page = await other.get("/console/", cookies={COOKIE: cookie}, allow_redirects=False)
            assert page.status == 200
            # a link made by the second process opens a session on the first (one signing key)
            link = await second.runtime.feature(ConsoleService).link("mushandong")
    finally:
        await second.close()
    fresh = TestClient(TestServer(client.app))
    async with fresh:
        assert (await fresh.get(login_path(link), allow_redirects=False)).status == 302


async def test_role_refusal_is_a_chinese_403(chat: Chat, client: Client) -> None:
    await sign_in(chat, client, "zhanglali")  # a studio lead
    response = await client.get("/console/audit", allow_redirects=False)
    assert response.status == 403
    text = await response.text()
    assert "管理员" in text and "工作室负责人" in text
    overview = await (await client.get("/console/")).text()
    assert "/console/audit" not in overview and "/console/report" in overview  # audit: not in the navigation
    assert "定时任务" not in overview and "发件箱" not in overview  # /定时任务 and /发件箱 are for admins
    download = await client.get("/console/report.xlsx?year=2026")
    assert download.status == 403 and "联盟负责人" in await download.text()


async def test_public_https_url_makes_secure_cookies(bot: BotApp) -> None:
    settings = bot.settings.model_copy(update={"public_url": "https://bot.example.com/"})
    service = ConsoleService(bot.runtime)
    service.runtime = type(bot.runtime)(
        settings=settings, store=bot.store, clock=bot.clock, outbox=bot.runtime.outbox
    )
    link = await service.link("u1")
    assert link.startswith("https://bot.example.com/console/login?token=")
    assert service.secure_cookies
    assert timedelta(minutes=60) == service.idle


async def log_problem(chat: Chat) -> int:
    reply = await chat.say("asker1", "/提问 盾构始发时土压波动大，怎么调掘进参数？", group="隧道联盟群")
    match = re.search(r"#(\d+)", reply)
    assert match, reply
    return int(match.group(1))


async def test_problem_board_and_actions_use_the_chat_rules(chat: Chat, client: Client) -> None:
    number = await log_problem(chat)
    csrf = await sign_in(chat, client, "mushandong")  # the tunnel alliance's lead
    board = await (await client.get("/console/problems?status=active")).text()
    assert f"/console/problems/{number}" in board and "盾构始发" in board
    filtered = await (await client.get("/console/problems?status=solved")).text()
    assert f"/console/problems/{number}" not in filtered
    detail = await (await client.get(f"/console/problems/{number}")).text()
    assert "登记问题" in detail and "转派" in detail and "关闭问题" in detail

    moved = await client.post(f"/console/problems/{number}/transfer", data={"csrf": csrf, "studio": "T3"})
    assert moved.status == 200 and "已把问题" in await moved.text()
    assert "转派" in await chat.say("asker1", f"/问题 {number}")
    assert any("由 mushandong 转派" in t for t in chat.to_user("fangshuiqing"))

    closed = await client.post(f"/console/problems/{number}/close", data={"csrf": csrf, "reason": "重复提问"})
    assert "已关闭" in await closed.text()
    assert "已关闭" in await chat.say("asker1", f"/问题 {number}")
    again = await client.post(f"/console/problems/{number}/close", data={"csrf": csrf})
    assert again.status == 409
    reopened = await client.post(f"/console/problems/{number}/reopen", data={"csrf": csrf})
    assert "已重新打开" in await reopened.text()


async def test_problem_actions_are_refused_where_chat_refuses_them(chat: Chat, client: Client) -> None:
    number = await log_problem(chat)
    csrf = await sign_in(chat, client, "zhanglali")  # a bridge studio lead: neither asker nor tunnel lead
    detail = await (await client.get(f"/console/problems/{number}")).text()
    assert "关闭问题" not in detail and "transfer-button" not in detail
    for action, data in (("close", {}), ("transfer", {"studio": "T2"})):
        response = await client.post(f"/console/problems/{number}/{action}", data={"csrf": csrf, **data})
        assert response.status == 403, action
        assert "只有" in await response.text()
    chat_reply = await chat.say("zhanglali", f"/关闭 {number}")
    assert chat_reply == "只有提问人、本联盟负责人或管理员可以关闭问题。"
    assert (await client.get("/console/problems/999999")).status == 404


async def test_studio_edit_is_validated_audited_and_seen_in_chat(chat: Chat, client: Client) -> None:
    csrf = await sign_in(chat, client, "mushandong")
    roster = await (await client.get("/console/studios")).text()
    assert "盾构掘进控制劳模创新工作室" in roster and 'href="/console/studios/T1"' in roster
    assert 'href="/console/studios/B1"' not in roster  # another alliance's studio: no edit link
    form = await (await client.get("/console/studios/T1")).text()
    assert 'name="stars"' in form
    bad = await client.post("/console/studios/T1", data={"csrf": csrf, "stars": "6"})
    assert bad.status == 400 and "星级必须是 3、4 或 5" in await bad.text()
    ok = await client.post(
        "/console/studios/T1", data={"csrf": csrf, "stars": "3", "expertise": "盾构、土压平衡、管片拼装"}
    )
    assert ok.status == 200 and "已保存：2 项修改" in await ok.text()
    assert "★★★☆☆" in await chat.say("asker1", "/工作室详情 T1")
    history = await EvaluationRepo(chat.bot.store.sessions).star_history("T1")
    assert [(h.before, h.after, h.round_id, h.actor, h.origin) for h in history] == [
        (5, 3, None, "mushandong", "edit")
    ]
    assert "五星→三星（手工调整，穆山洞）" in await chat.say("asker1", "/工作室 T1 档案")
    refused = await client.post("/console/studios/B1", data={"csrf": csrf, "stars": "3"})
    assert refused.status == 403 and "本联盟负责人" in await refused.text()
    await sign_in(chat, client, ADMIN)
    audit = await (await client.get("/console/audit")).text()
    assert "studio T1" in audit and "mushandong" in audit and "网页后台" in audit


def upload(field: str, text: str) -> aiohttp.FormData:
    """A multipart form as the browser sends it: a file field, or a (hidden) text field."""
    form = aiohttp.FormData(default_to_multipart=True)
    if field == "roster":
        form.add_field(field, text.encode(), filename="roster.yaml", content_type="application/x-yaml")
    else:
        form.add_field(field, text)
    return form


ROSTER_EXTRA = """
alliances:
  - {id: tunnel, name: 隧道联盟, lead: {name: 穆山洞, wecom_userid: mushandong}}
studios:
  - id: T9
    name: 新建测试工作室
    alliance: tunnel
    unit: 测试单位
    type: 科技研发型
    stars: 4
    lead: {name: 测试人, wecom_userid: ceshiren}
    expertise: [测试]
"""


async def test_roster_upload_previews_then_imports(chat: Chat, client: Client) -> None:
    csrf = await sign_in(chat, client, ADMIN)
    bad = await client.post(
        f"/console/studios/import?csrf={csrf}",
        data=upload("roster", ROSTER_EXTRA.replace("stars: 4", "stars: 9")),
    )
    assert bad.status == 400 and "工作室 T9 的字段 星级 stars" in await bad.text()
    preview = await client.post(f"/console/studios/import?csrf={csrf}", data=upload("roster", ROSTER_EXTRA))
    text = await preview.text()
    assert preview.status == 200 and "新增工作室：T9" in text and "确认导入" in text
    assert "新建测试工作室" not in await chat.say("asker1", "/工作室")  # nothing imported yet
    no_csrf = await client.post("/console/studios/import/apply", data=upload("roster_text", ROSTER_EXTRA))
    assert no_csrf.status == 403
    applied = await client.post(
        f"/console/studios/import/apply?csrf={csrf}", data=upload("roster_text", ROSTER_EXTRA)
    )
    assert applied.status == 200 and "工作室 新增 1" in await applied.text()
    assert "新建测试工作室" in await chat.say("asker1", "/工作室")


async def test_roster_upload_is_for_admins(chat: Chat, client: Client) -> None:
    csrf = await sign_in(chat, client, "mushandong")
    assert "roster-file" not in await (await client.get("/console/studios")).text()
    response = await client.post(f"/console/studios/import?csrf={csrf}", data=upload("roster", ROSTER_EXTRA))
    assert response.status == 403 and "只有管理员可以导入花名册" in await response.text()


async def test_activity_calendar_page_and_attendee_export(chat: Chat, client: Client) -> None:
    added = await chat.say(
        "mushandong", "/活动 添加 讲座 11月26日下午3点 盾构施工新技术 地点 郑州会议中心 名额 1"
    )
    number = int(re.search(r"(\d+)", added.split("/报名")[1]).group(1))  # type: ignore[union-attr]
    await chat.say("chenjuejin", f"/报名 {number}")
    await chat.say("shibaopo", f"/报名 {number}")  # the waiting list (one seat)
    await sign_in(chat, client, "mushandong")
    month = await (await client.get("/console/activities?month=2026-11")).text()
    assert "2026 年 11 月" in month and "盾构施工新技术" in month
    assert "盾构施工新技术" not in await (await client.get("/console/activities?month=2026-12")).text()
    assert (await client.get("/console/activities?month=garbage")).status == 200
    page = await (await client.get(f"/console/activities/{number}")).text()
    assert "陈掘进" in page and "候补 1" in page and "石爆破" in page
    export = await client.get(f"/console/activities/{number}/attendees.xlsx")
    assert export.status == 200 and "attachment" in export.headers["Content-Disposition"]
    import io

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(await export.read())).active
    assert sheet is not None
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert rows[0][1:5] == ["已报名", "陈掘进", "chenjuejin", "示例隧道局盾构分公司"]
    assert rows[1][1] == "候补 1" and rows[1][2] == "石爆破"

    await sign_in(chat, client, "zhanglali")  # a studio lead, not the organizer
    assert "陈掘进" not in await (await client.get(f"/console/activities/{number}")).text()
    refused = await client.get(f"/console/activities/{number}/attendees.xlsx")
    assert refused.status == 403 and "报名名单" in await refused.text()


async def test_report_page_and_workbook(chat: Chat, client: Client) -> None:
    await log_problem(chat)
    await sign_in(chat, client, ADMIN)
    response = await client.get("/console/report?year=2026")
    html = await response.text()
    assert response.status == 200 and "2026 年度报表" in html and "隧道联盟" in html
    charts = await client.get("/console/report/charts?year=2026")  # the page loads its charts from here
    assert charts.status == 200 and (await charts.text()).count("data:image/png;base64,") >= 1
    workbook = await client.get("/console/report.xlsx?year=2026&alliance=tunnel")
    assert workbook.status == 200 and (await workbook.read())[:2] == b"PK"
    assert (await client.get("/console/report?alliance=nowhere")).status == 404
    await sign_in(chat, client, "mushandong")  # the tunnel lead: the tunnel's workbook only
    assert (await client.get("/console/report.xlsx?year=2026&alliance=tunnel")).status == 200
    assert (await client.get("/console/report.xlsx?year=2026&alliance=bridge")).status == 403


async def test_console_link_cli_prints_a_link_for_the_first_admin(
    tmp_path: Path, database_url: str, client: Client
) -> None:
    import asyncio
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") or k.startswith("BOT_TEST_")}
    env.update(BOT_DATABASE_URL=database_url, BOT_PUBLIC_URL="https://bot.example.com")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console-link",
        "wanggong",
        "--admin",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("https://bot.example.com/console/login?token=") and "管理员" in text
    response = await client.get(login_path(text), allow_redirects=False)
    assert response.status == 302
    assert (await client.get("/console/audit")).status == 200  # signed in as an admin


async def test_a_retried_console_message_gets_the_same_link(chat: Chat) -> None:
    first = await chat.say("chenjuejin", "/后台", msg_id="retry-1")
    again = await chat.say("chenjuejin", "/后台", msg_id="retry-1")
    assert first == again and "token=" in first


async def test_prune_forgets_idle_sessions(
    chat: Chat, client: Client, clock: ManualClock, bot: BotApp
) -> None:
    await sign_in(chat, client, "chenjuejin")
    service = bot.runtime.feature(ConsoleService)
    assert await service.prune(clock.now()) == "removed 0 sessions"
    clock.advance(minutes=61)
    assert await service.prune(clock.now()) == "removed 1 sessions"
    assert await service.repo.sessions_of("chenjuejin") == []
