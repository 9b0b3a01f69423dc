"""The web console in a real browser (Playwright driving Debian's Chromium): sign in through the one-time link a
chat ``/后台`` returns, walk every page, act (transfer and close a problem, edit a studio, close an evaluation
round) and see the effect in chat or on a studio's record, be refused where the role does not allow; a
screenshot of each page goes to ``test-artifacts/console/``.

One browser for the module; the pages run on SQLite (the same pages' HTTP behaviour is tested on SQLite and
PostgreSQL in ``test_console.py``)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import BOT_KEY, BotApp
from bot.channels.calendar import add_routes as add_calendar_routes
from bot.channels.web import add_routes
from bot.core.clock import ManualClock
from bot.services.studios import load_roster
from bot.settings import Settings
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, ROOT, Chat

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "console"
LINK = re.compile(r"(http://\S+/console/login\?token=\S+)")

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
    pytest.mark.asyncio(loop_scope="module"),
]

if CHROMIUM.exists():
    from playwright.async_api import Browser, Page, async_playwright
else:  # pragma: no cover - the module is skipped
    Browser = Page = object


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Stack:
    bot: BotApp
    chat: Chat
    url: str
    problem: int
    activity: int


@pytest_asyncio.fixture(loop_scope="module")
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    port = free_port()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        admins=[ADMIN],
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        semantic_routing=False,
    )
    clock = ManualClock(datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    bot = await BotApp.create(settings, clock=clock)
    await bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
    chat = Chat(bot)
    logged = await chat.say("asker1", "/提问 盾构始发时土压波动大，怎么调掘进参数？", group="隧道联盟群")
    problem = int(re.search(r"#(\d+)", logged).group(1))  # type: ignore[union-attr]
    await chat.say("asker1", "/提问 接触网导线磨耗超限，更换周期怎么定？", group="四电联盟群")
    added = await chat.say(
        "mushandong", "/活动 添加 讲座 11月26日下午3点 盾构施工新技术 地点 郑州会议中心 名额 30"
    )
    activity = int(re.search(r"/报名 (\d+)", added).group(1))  # type: ignore[union-attr]
    await chat.say("chenjuejin", f"/报名 {activity}")
    await chat.say("chenjuejin", "/立项 盾构管片拼装质量控制 研究错台和破损的成因与对策")
    await chat.say(ADMIN, "/成果 登记 工法 盾构管片拼装质量控制工法 T1 2026")
    await chat.say(ADMIN, "/奖励 T1 3万 2026 五星级工作室")
    app = web.Application()
    app[BOT_KEY] = bot
    add_routes(app)
    add_calendar_routes(app)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Stack(bot, chat, f"http://127.0.0.1:{port}", problem, activity)
    finally:
        await server.close()
        await bot.close()


async def signed_in(browser: Browser, stack: Stack, user: str, *, phone: bool = False) -> Page:
    """A fresh browser context signed in as ``user`` through the link ``/后台`` returns in a 1:1 chat."""
    reply = await stack.chat.say(user, "/后台")
    match = LINK.search(reply)
    assert match, reply
    assert match.group(1).startswith(stack.url)
    viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
    context = await browser.new_context(viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(match.group(1))
    assert page.url == f"{stack.url}/console/"
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_admin_walks_every_page_and_edits_a_studio(
    browser: Browser, stack: Stack, tmp_path: Path
) -> None:
    page = await signed_in(browser, stack, ADMIN)
    assert await page.title() == "概览 · 工作室联盟助手"
    assert await page.locator("text=今日问题").count() == 1
    await shot(page, "overview")
    walk = [
        ("problems", "技术问题", "盾构始发"),
        ("studios", "工作室花名册", "盾构掘进控制劳模创新工作室"),
        ("activities", "活动日历", "盾构施工新技术"),
        ("topics", "联合攻关课题", "盾构管片拼装质量控制"),
        ("achievements", "创新成果", "盾构管片拼装质量控制工法"),
        ("awards", "奖励", "30,000"),
        ("report", "年度报表", "隧道联盟"),
        ("audit", "审计日志", "审计日志"),
    ]
    for key, heading, expected in walk:
        await page.click(f"header nav a[href='/console/{key}']")
        assert heading in await page.locator("h1").inner_text(), key
        assert expected in await page.content(), key
        await shot(page, key)
    await page.goto(f"{stack.url}/console/problems/{stack.problem}")
    assert "登记问题" in await page.content()
    await shot(page, "problem")
    await page.goto(f"{stack.url}/console/activities/{stack.activity}")
    assert "陈掘进" in await page.content()
    await shot(page, "activity")
    async with page.expect_download() as download_info:
        await page.click("#export-attendees")
    download = await download_info.value
    assert (Path(await download.path())).read_bytes()[:2] == b"PK"  # noqa: ASYNC240 - a small file
    await page.goto(f"{stack.url}/console/report")
    await page.wait_for_selector(".charts img")  # the charts follow the page
    assert await page.locator(".charts img").count() >= 1
    assert "隧道联盟" in await page.locator("#report-studios").inner_text()  # names, not alliance ids
    await shot(page, "report")  # with its charts

    # edit a studio; the chat sees the new rating and the audit log the change
    await page.goto(f"{stack.url}/console/studios/T1")
    await page.select_option("#studio-stars", "3")
    await shot(page, "studio")
    await page.click("#studio-save")
    assert "已保存：1 项修改" in await page.locator(".notice").inner_text()
    assert "★★★☆☆" in await stack.chat.say("asker1", "/工作室详情 T1")
    await page.goto(f"{stack.url}/console/audit")
    assert "studio T1" in await page.content()

    # roster upload: a broken file shows the studio and field at fault; nothing is imported
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        EXAMPLE_ROSTER.read_text(encoding="utf-8").replace("stars: 5", "stars: 7", 1), encoding="utf-8"
    )
    await page.goto(f"{stack.url}/console/studios")
    await page.set_input_files("#roster-file", str(broken))
    await page.click("#roster-preview")
    assert "星级必须是 3、4 或 5" in await page.locator("#roster-error").inner_text()
    await shot(page, "roster-preview")
    await page.goto(f"{stack.url}/console/studios")
    await page.set_input_files("#roster-file", str(EXAMPLE_ROSTER))
    await page.click("#roster-preview")
    assert "校验通过" in await page.locator("#roster-summary").inner_text()
    await page.click("#roster-apply")
    assert "导入完成" in await page.locator(".notice").inner_text()
    await page.context.close()


async def test_lead_transfers_and_closes_a_problem_seen_in_chat(browser: Browser, stack: Stack) -> None:
    page = await signed_in(browser, stack, "mushandong")  # the tunnel alliance's lead
    await page.goto(f"{stack.url}/console/problems")
    await page.click(f"a[href='/console/problems/{stack.problem}']")
    await page.select_option("#transfer-studio", "T3")
    await page.click("#transfer-button")
    assert "已把问题" in await page.locator(".notice").inner_text()
    assert "转派" in await stack.chat.say("asker1", f"/问题 {stack.problem}")
    assert any("转派" in t for t in stack.chat.to_user("fangshuiqing"))
    await page.fill("#close-reason", "已线下解决")
    await page.click("#close-button")
    assert await page.locator("#problem-state").inner_text() == "已关闭"
    await shot(page, "problem-closed")
    assert "已关闭" in await stack.chat.say("asker1", f"/问题 {stack.problem}")
    assert "已关闭" in "".join(stack.chat.to_user("asker1"))
    await page.context.close()


async def test_a_studio_lead_is_refused_and_the_phone_layout_works(browser: Browser, stack: Stack) -> None:
    page = await signed_in(browser, stack, "zhanglali", phone=True)  # a bridge studio lead
    assert await page.locator("header nav a[href='/console/audit']").count() == 0
    await shot(page, "phone-overview")
    response = await page.goto(f"{stack.url}/console/audit")
    assert response is not None and response.status == 403
    assert "需要「管理员」及以上权限" in await page.locator(".refusal").inner_text()
    await shot(page, "refused")
    await page.goto(f"{stack.url}/console/problems/{stack.problem}")
    assert await page.locator("#close-button").count() == 0
    assert await page.locator("#transfer-button").count() == 0
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1  # nothing wider than the phone
    await page.context.close()
    # without a session: the sign-in page, in Chinese
    context = await browser.new_context()
    anonymous = await context.new_page()
    await anonymous.goto(f"{stack.url}/console/studios")
    assert anonymous.url.endswith("/console/signin")
    assert "请在企业微信里向机器人发送 /后台 获取登录链接" in await anonymous.content()
    await shot(anonymous, "signin")
    await context.close()


async def test_a_lead_edits_an_award_amount_seen_in_chat(browser: Browser, stack: Stack) -> None:
    registered = await stack.chat.say(ADMIN, "/成果 登记 工法 隧道防水板焊接质量控制工法 T3 2026")
    number = int(re.search(r"成果 #(\d+)", registered).group(1))  # type: ignore[union-attr]
    awarded = await stack.chat.say(ADMIN, f"/奖励 {number} 2万 2026 优秀成果奖")
    award = int(re.search(r"奖励 #(\d+)", awarded).group(1))  # type: ignore[union-attr]
    page = await signed_in(browser, stack, "mushandong")  # the tunnel alliance's lead
    await page.click("header nav a[href='/console/achievements']")
    await page.click(f"td a[href='/console/achievements/{number}'] >> nth=0")
    assert "隧道防水板焊接质量控制工法" in await page.locator("h1").inner_text()
    await page.click(f"#award-link-{award}")
    assert await page.locator("#award-amount").inner_text() == "20,000"
    await page.fill("#award-amount-input", "1.5万")
    await page.fill("#award-reason", "金额录入错误")
    await shot(page, "award-edit")
    await page.click("#award-save")
    assert f"已修改奖励 #{award}：金额 20000→15000" in await page.locator(".notice").inner_text()
    assert await page.locator("#award-amount").inner_text() == "15,000"
    assert "金额录入错误" in await page.locator("#award-history").inner_text()
    await shot(page, "award-edited")
    shown = await stack.chat.say("asker1", f"/成果 {number}")
    assert "15,000 元" in shown and "原因：金额录入错误" in shown
    await page.context.close()


async def test_an_evaluation_round_and_a_studio_record(browser: Browser, stack: Stack) -> None:
    # a star round opened, nominated and scored in chat; the browser walks it, closes it, and reads the record
    chat = stack.chat
    opened = await chat.say("mushandong", "/评选 发起 星级 评委=张拉力 申报截止=11月30日 评分截止=12月5日")
    assert opened.startswith("已发起评选 #1"), opened
    assert "申报五星" in await chat.say("shibaopo", "/评选 申报 1 T2 五星")
    assert (await chat.say("zhanglali", "/评选 评分 1 1 90 90 90")).startswith("已评分")
    await chat.say("mushandong", "/八有 T2 确认 有场所设备 实验室已验收")
    page = await signed_in(browser, stack, ADMIN)
    await page.click("header nav a[href='/console/evaluations']")
    await page.click("a[href='/console/evaluations/1'] >> nth=0")
    assert "评选 #1 星级工作室评定" in await page.locator("h1").inner_text()
    assert await page.locator("#evaluation-state").inner_text() == "进行中"
    facts = await page.locator("#evaluation-facts").inner_text()
    assert "隧道联盟" in facts and "评鉴团：张拉力" in facts
    nominee = await page.locator("#nominee-1").inner_text()
    assert "钻爆法隧道工匠工作室" in nominee and "1 人" in nominee and "90" in nominee
    assert "1 / 1" in await page.locator("#progress").inner_text()
    await shot(page, "evaluation_round")
    await page.click("#close-button")
    assert "已结束：1 个申报对象，1 个入选" in await page.content()
    await page.goto(f"{stack.url}/console/evaluations/1")
    assert await page.locator("#evaluation-state").inner_text() == "已结束"
    assert "入选" in await page.locator("#nominee-1").inner_text()

    await page.goto(f"{stack.url}/console/studios")
    await page.click("a[href='/console/studios/T2/record']")
    assert "钻爆法隧道工匠工作室（T2）档案" in await page.locator("h1").inner_text()
    assert await page.locator("#record-stars").inner_text() == "五星"
    history = await page.locator("#record-star-history").inner_text()
    assert "四星 → 五星（评选 #1，admin1）" in history, history  # closed in the browser, by the admin
    assert "评选 #1 星级工作室评定 90 分 入选" in await page.locator("#record-years").inner_text()
    checklist = await page.locator("#record-checklist").inner_text()
    assert "有场所设备" in checklist and "穆山洞" in checklist and "实验室已验收" in checklist
    await shot(page, "studio_record")
    await page.context.close()
