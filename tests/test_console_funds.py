"""The console's funding ledger and talent pages over real HTTP, on SQLite and PostgreSQL: entries by the chat's
rules (categories, budgets, the admin's override), once per form; budgets; a spreadsheet import previewed with
row-numbered errors before anything is written; talent records; role and CSRF refusals; the report's charts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import BOT_KEY, BotApp
from bot.channels.web import add_routes
from bot.store.audit import AuditRepo
from bot.store.funds import FundRepo
from bot.store.talent import TalentRepo
from tests.conftest import ADMIN
from tests.harness import Chat
from tests.test_console import sign_in

Client = TestClient[web.Request, web.Application]
TUNNEL_LEAD = "mushandong"
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@pytest.fixture
async def client(bot: BotApp) -> AsyncIterator[Client]:
    app = web.Application()
    app[BOT_KEY] = bot
    add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def form_nonce(client: Client, path: str = "/console/funds") -> str:
    page = await client.get(path)
    assert page.status == 200, await page.text()
    match = NONCE.search(await page.text())
    assert match
    return match.group(1)


def entry(csrf: str, nonce: str, **fields: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "nonce": nonce,
        "alliance": "tunnel",
        "year": "2026",
        "kind": "spending",
        "on": "2026-03-15",
        "note": "",
        **fields,
    }


async def test_an_entry_is_recorded_once_and_seen_in_chat(chat: Chat, client: Client, bot: BotApp) -> None:
    csrf = await sign_in(chat, client, TUNNEL_LEAD)
    page = await client.get("/console/funds")
    html = await page.text()
    assert "经费台账 · 隧道联盟 2026 年" in html and 'href="/console/funds"' in html
    nonce = await form_nonce(client)
    form = entry(csrf, nonce, kind="income", category="公司补助", amount="10万", note="年度活动经费")
    posted = await client.post("/console/funds/entry", data=form, allow_redirects=False)
    assert posted.status == 302, await posted.text()
    shown = await (await client.get(posted.headers["Location"])).text()
    assert "已登记隧道联盟收入 #1 公司补助 100,000 元（2026-03-15）：年度活动经费" in shown
    assert 'id="funds-income">100,000<' in shown
    # the same form again (a double click, a reload): the same entry, not a second one
    again = await client.post("/console/funds/entry", data=form, allow_redirects=False)
    assert again.status == 302
    assert "收入 #1 公司补助" in await (await client.get(again.headers["Location"])).text()
    entries = await FundRepo(bot.store.sessions).entries(year=2026)
    assert [(e.category, e.amount, e.source, e.recorded_by) for e in entries] == [
        ("公司补助", 100_000, "console", TUNNEL_LEAD)
    ]
    trail = await AuditRepo(bot.store.sessions).history("fund_entry", 1)
    assert [(t.action, t.actor, t.source) for t in trail] == [("create", TUNNEL_LEAD, "console")]
    # a spending linked to an activity, seen by chat's /经费
    added = await chat.say(TUNNEL_LEAD, "/活动 添加 培训 12月1日上午9点 盾构培训班 名额 30")
    activity = re.search(r"/报名 (\d+)", added).group(1)  # type: ignore[union-attr]
    form = entry(
        csrf,
        await form_nonce(client),
        category="培训",
        amount="8000",
        note="盾构培训班",
        link_kind="activity",
        link_id=activity,
    )
    assert (await client.post("/console/funds/entry", data=form, allow_redirects=False)).status == 302
    summary = await chat.say(TUNNEL_LEAD, "/经费")
    assert "收入合计 100,000 元" in summary and "· 学习培训 8,000 元（未设预算）" in summary
    assert f"活动 #{activity}" not in summary
    (spent,) = [e for e in await FundRepo(bot.store.sessions).entries(year=2026) if e.kind == "spending"]
    assert spent.activity_id == int(activity)


async def test_refusals_are_the_chats_and_an_admin_may_override(chat: Chat, client: Client, bot: BotApp) -> None:
    csrf = await sign_in(chat, client, TUNNEL_LEAD)
    refused = await client.post(
        "/console/funds/entry", data=entry(csrf, await form_nonce(client), category="餐饮", amount="500")
    )
    text = await refused.text()
    assert refused.status == 400
    assert "「餐饮」不在经费允许的支出范围内（专款专用" in text
    assert 'value="餐饮"' in text  # the form keeps what was typed
    # a budget from the console, then spending past it
    budget = {"csrf": csrf, "alliance": "tunnel", "year": "2026", "category": "学习培训", "amount": "1万"}
    done = await client.post("/console/funds/budget", data=budget, allow_redirects=False)
    assert done.status == 302
    assert "预算设为 10,000 元" in await (await client.get(done.headers["Location"])).text()
    twice = await client.post("/console/funds/budget", data=budget, allow_redirects=False)
    assert twice.status == 302  # the same value again: no second change
    assert len(await AuditRepo(bot.store.sessions).history("fund_budget", "tunnel:2026:学习培训")) == 1
    over = entry(csrf, await form_nonce(client), category="学习培训", amount="12000", note="第二期")
    refused = await client.post("/console/funds/entry", data=over)
    text = await refused.text()
    assert refused.status == 400
    assert "超出预算：隧道联盟2026年「学习培训」预算 10,000 元，已支出 0 元，本笔 12,000 元后将达 12,000 元" in text
    assert 'id="funds-override"' not in text  # only an admin sees the override
    ticked = await client.post("/console/funds/entry", data={**over, "override": "1", "override_reason": "x"})
    assert ticked.status == 400 and "只有管理员可以特批" in await ticked.text()
    assert await FundRepo(bot.store.sessions).entries(year=2026) == []
    # an admin sees the box; without ticking it, refused as well; ticked, recorded with the reason
    admin = TestClient(TestServer(client.app))
    async with admin:
        admin_csrf = await sign_in(chat, admin, ADMIN)
        page = await (await admin.get("/console/funds?alliance=tunnel&year=2026")).text()
        assert 'id="funds-override"' in page
        nonce = await form_nonce(admin, "/console/funds?alliance=tunnel")
        form = entry(admin_csrf, nonce, category="学习培训", amount="12000", note="第二期")
        assert (await admin.post("/console/funds/entry", data=form)).status == 400
        form |= {"override": "1", "override_reason": "集团培训计划追加"}
        posted = await admin.post("/console/funds/entry", data=form, allow_redirects=False)
        assert posted.status == 302
        shown = await (await admin.get(posted.headers["Location"])).text()
        assert "管理员特批：超出预算" in shown and "集团培训计划追加" in shown
        assert (await admin.post("/console/funds/entry", data=form, allow_redirects=False)).status == 302
    (recorded,) = await FundRepo(bot.store.sessions).entries(year=2026)
    assert (recorded.amount, recorded.override, recorded.recorded_by) == (12_000, "集团培训计划追加", ADMIN)
    assert "· 学习培训 12,000 / 预算 10,000 元，执行 120%" in await chat.say(TUNNEL_LEAD, "/经费")
    # bad input: a Chinese message, never a 500
    for fields in ({"amount": "abc", "category": "会议"}, {"amount": "100", "category": "会议", "on": "2026-02-30"}):
        bad = await client.post("/console/funds/entry", data=entry(csrf, await form_nonce(client), **fields))
        assert bad.status == 400
    stale = await client.post("/console/funds/entry", data=entry(csrf, "", category="会议", amount="1"))
    assert stale.status == 400 and "表单已失效" in await stale.text()


def upload(csrf: str, name: str, content: bytes, **fields: str) -> tuple[str, aiohttp.FormData]:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("ledger", content, filename=name, content_type="text/csv")
    return f"/console/funds/import?csrf={csrf}", form


async def test_import_previews_bad_rows_by_number_then_applies_once(
    chat: Chat, client: Client, bot: BotApp
) -> None:
    csrf = await sign_in(chat, client, TUNNEL_LEAD)
    bad = (
        "联盟,收支,类别,金额,日期,备注\n"
        "隧道,收入,公司补助,100000,2026-01-05,年度补助\n"
        "隧道,支出,餐饮,800,2026-03-15,\n"
        "桥梁,收入,工会补助,2万,2026-02-01,\n"
        "隧道,支出,学习培训,abc,2026-03-15,\n"
    ).encode()
    path, form = upload(csrf, "ledger.csv", bad)
    preview = await client.post(path, data=form)
    text = await preview.text()
    assert preview.status == 400
    assert "有误 3 行，未导入任何记录" in text
    assert "第 3 行：「餐饮」不在经费允许的支出范围内" in text
    assert "第 4 行：只有桥梁联盟的联盟负责人和管理员可以登记该联盟的经费" in text
    assert "第 5 行：金额「abc」看不懂" in text
    assert 'id="import-apply"' not in text
    assert await FundRepo(bot.store.sessions).entries(year=2026) == []
    good = (
        "联盟,收支,类别,金额,日期,备注\n"
        "隧道,收入,公司补助,100000,2026-01-05,年度补助\n"
        "隧道,支出,培训,8000,2026-03-15,培训班\n"
    ).encode()
    path, form = upload(csrf, "ledger.csv", good)
    preview = await client.post(path, data=form)
    text = await preview.text()
    assert preview.status == 200 and "校验通过（2 笔）" in text and 'id="import-apply"' in text
    assert await FundRepo(bot.store.sessions).entries(year=2026) == []  # a preview writes nothing
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', text))
    applied = await client.post("/console/funds/import/apply", data=fields, allow_redirects=False)
    assert applied.status == 302
    assert "新增经费记录 2 笔" in await (await client.get(applied.headers["Location"])).text()
    again = await client.post("/console/funds/import/apply", data=fields, allow_redirects=False)
    assert again.status == 302
    assert "已经导入过了" in await (await client.get(again.headers["Location"])).text()
    entries = await FundRepo(bot.store.sessions).entries(year=2026)
    assert [(e.category, e.amount, e.source) for e in entries] == [
        ("公司补助", 100_000, "console"),
        ("学习培训", 8_000, "console"),
    ]
    assert len(await AuditRepo(bot.store.sessions).recent(entity="fund_entry")) == 2
    # not a spreadsheet; a lead may not override
    path, form = upload(csrf, "ledger.txt", b"hello")
    assert (await client.post(path, data=form)).status == 400
    path, form = upload(csrf, "ledger.xlsx", b"not a zip")
    broken = await client.post(path, data=form)
    assert broken.status == 400 and "无法读取文件" in await broken.text()
    path, form = upload(csrf, "ledger.csv", good, override="1")
    assert (await client.post(path, data=form)).status == 403


async def test_wrong_roles_and_missing_csrf_are_refused(chat: Chat, client: Client, bot: BotApp) -> None:
    csrf = await sign_in(chat, client, "chenjuejin")  # a studio lead
    home = await (await client.get("/console/")).text()
    assert 'href="/console/funds"' not in home and 'href="/console/talent"' in home
    page = await client.get("/console/funds")
    assert page.status == 403 and "经费台账需要「联盟负责人」及以上权限" in await page.text()
    posted = await client.post(
        "/console/funds/entry", data=entry(csrf, "n" * 16, category="会议", amount="100")
    )
    assert posted.status == 403
    talent = await client.get("/console/talent")
    assert talent.status == 200 and 'id="mentorship-form"' not in await talent.text()
    lead = TestClient(TestServer(client.app))
    async with lead:
        lead_csrf = await sign_in(chat, lead, TUNNEL_LEAD)
        other = await lead.get("/console/funds?alliance=bridge")
        assert other.status == 403 and "只有桥梁联盟的联盟负责人和管理员" in await other.text()
        into_other = entry(lead_csrf, await form_nonce(lead), category="会议", amount="100", alliance="bridge")
        assert (await lead.post("/console/funds/entry", data=into_other)).status == 403
        # no CSRF token, or a wrong one: refused before anything happens
        form = entry(lead_csrf, await form_nonce(lead), category="会议", amount="100")
        for token in ("", "wrong"):
            refused = await lead.post("/console/funds/entry", data={**form, "csrf": token})
            assert refused.status == 403 and "CSRF" in await refused.text()
        path, upload_form = upload("", "ledger.csv", b"x")
        assert (await lead.post(path, data=upload_form)).status == 403
        budget = {"alliance": "tunnel", "year": "2026", "category": "会议组织", "amount": "1"}
        assert (await lead.post("/console/funds/budget", data=budget)).status == 403
        assert (await lead.post("/console/talent/honour", data={"person": "x"})).status == 403
    assert await FundRepo(bot.store.sessions).entries(year=2026) == []
    assert await FundRepo(bot.store.sessions).budgets(year=2026) == []


async def test_talent_page_records_a_mentorship_and_a_title_once(
    chat: Chat, client: Client, bot: BotApp
) -> None:
    csrf = await sign_in(chat, client, TUNNEL_LEAD)
    page = await (await client.get("/console/talent")).text()
    assert "人才培养 · 2026 年" in page and 'id="mentorship-form"' in page
    nonce = await form_nonce(client, "/console/talent")
    mentorship = {
        "csrf": csrf,
        "nonce": nonce,
        "year": "2026",
        "master": "陈掘进",
        "apprentice": "lisi",
        "studio": "T1",
        "started_on": "2026-03-01",
        "goal": "两年内取得高级技师",
    }
    for _ in range(2):
        posted = await client.post("/console/talent/mentorship", data=mentorship, allow_redirects=False)
        assert posted.status == 302
    shown = await (await client.get(posted.headers["Location"])).text()
    assert "已登记名师带徒 #1：盾构掘进控制劳模创新工作室 师傅 陈掘进、徒弟 lisi" in shown
    honour = {
        "csrf": csrf,
        "nonce": nonce,
        "year": "2026",
        "person": "陈掘进",
        "title": "省级工匠",
        "on": "2026-05-01",
        "studio": "T1",
        "evidence": "",
    }
    missing = await client.post("/console/talent/honour", data=honour)
    assert missing.status == 400 and "请写上证明材料" in await missing.text()
    honour["evidence"] = "省总工会文件 2026-12号"
    for _ in range(2):
        assert (await client.post("/console/talent/honour", data=honour, allow_redirects=False)).status == 302
    other = {**honour, "nonce": await form_nonce(client, "/console/talent"), "studio": "B1"}
    refused = await client.post("/console/talent/honour", data=other)
    assert refused.status == 400 and "只能为本联盟工作室的人员登记称号" in await refused.text()
    repo = TalentRepo(bot.store.sessions)
    assert len(await repo.mentorships()) == 1 and len(await repo.honours()) == 1
    summary = await chat.say(TUNNEL_LEAD, "/人才 隧道")
    assert "本年新结对 1 对" in summary and "省级工匠 1 人" in summary
    page = await (await client.get("/console/talent?studio=T1")).text()
    assert "省总工会文件 2026-12号" in page and "两年内取得高级技师" in page
