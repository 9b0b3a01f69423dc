"""Evaluation rounds in the web console over real HTTP, on SQLite and PostgreSQL: open, nominate, score (a
conflict of interest refused with its reason), close, results on the round's page; wrong roles refused, a form
without the CSRF token refused, a double submit changing nothing twice; the studio record page; and a roster
upload keeping the stars a round set unless 「以名册星级为准」 is ticked."""

from __future__ import annotations

import re

import aiohttp

from bot.app import BotApp
from bot.services.evaluations import EvaluationService
from bot.store.achievements import AchievementRepo
from bot.store.evaluations import EvaluationRepo
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, Chat
from tests.test_console import Client, client, sign_in, upload
from tests.test_studios import five_stars_by_a_round

__all__ = ["client"]  # the fixture

T1_LEAD, B1_LEAD, B2_LEAD = "chenjuejin", "zhanglali", "xuanbining"
TUNNEL_LEAD = "mushandong"
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


async def as_user(chat: Chat, client: Client, user: str) -> str:
    """Sign ``user`` in afresh (another person at the same browser); their CSRF token."""
    client.session.cookie_jar.clear()
    return await sign_in(chat, client, user)


async def nonce_of(client: Client, path: str) -> str:
    html = await (await client.get(path)).text()
    match = NONCE.search(html)
    assert match, html
    return match.group(1)


async def test_a_round_in_the_console(chat: Chat, client: Client, bot: BotApp) -> None:
    assert (await chat.say(T1_LEAD, "/成果 登记 工法 盾构管片拼装错台控制工法 T1 2026")).startswith(
        "已登记成果 #1"
    )
    assert (await chat.say(B1_LEAD, "/成果 登记 发明 智能张拉压浆一体化装置 B1 2026")).startswith(
        "已登记成果 #2"
    )
    await chat.delivered()
    opening = {
        "kind": "优秀创新成果评选",
        "alliance": "",
        "panel": "陈掘进,张拉力,悬臂宁",
        "nominate_until": "2026-12-01T23:59",
        "score_until": "2026-12-10T23:59",
        "criteria": "创新性:50,效益:50",
        "amount": "2万",
    }

    # a studio lead may not open a round; nor may anyone without the CSRF token
    csrf = await as_user(chat, client, T1_LEAD)
    nonce = "n-lead"
    refused = await client.post("/console/evaluations", data={**opening, "csrf": csrf, "nonce": nonce})
    assert refused.status == 403 and "只有管理员或联盟负责人可以发起评选" in await refused.text()
    # an alliance lead may open one, but only an admin may set an amount outside the charter: who, not what (403)
    csrf = await as_user(chat, client, TUNNEL_LEAD)
    nonce = await nonce_of(client, "/console/evaluations")
    outside = {**opening, "alliance": "tunnel", "amount": "5万", "override": "on"}
    refused = await client.post("/console/evaluations", data={**outside, "csrf": csrf, "nonce": nonce})
    assert refused.status == 403 and "只有管理员可以设置「超范围」金额" in await refused.text()

    csrf = await as_user(chat, client, ADMIN)
    listing = await (await client.get("/console/evaluations")).text()
    assert 'href="/console/evaluations"' in listing and "还没有评选" in listing  # in the navigation
    nonce = await nonce_of(client, "/console/evaluations")
    missing = await client.post("/console/evaluations", data={**opening, "nonce": nonce})
    assert missing.status == 403 and "CSRF" in await missing.text()
    bad = await client.post(
        "/console/evaluations", data={**opening, "csrf": csrf, "nonce": nonce, "amount": "5万"}
    )
    assert bad.status == 400 and "5,000–20,000 元，50,000 元超出范围" in await bad.text()
    no_nonce = await client.post("/console/evaluations", data={**opening, "csrf": csrf})
    assert no_nonce.status == 400 and "校验码" in await no_nonce.text()
    # opened once, however often the form is submitted
    for _ in range(2):
        opened = await client.post(
            "/console/evaluations", data={**opening, "csrf": csrf, "nonce": nonce}, allow_redirects=False
        )
        assert opened.status == 302 and opened.headers["Location"].startswith("/console/evaluations/1?")
    service = bot.runtime.feature(EvaluationService)
    assert len(await service.repo.rounds()) == 1
    announced = [
        d for d in await chat.delivered() if d.text.startswith("【评选 #1 优秀创新成果评选 开始申报】")
    ]
    assert len(announced) == 4  # each alliance's group, once
    round_page = await (await client.get(opened.headers["Location"])).text()
    assert "已发起评选 #1 优秀创新成果评选" in round_page
    assert "全部联盟" in round_page and "陈掘进、张拉力、悬臂宁" in round_page
    assert "2026年12月1日 23:59" in round_page and "2026年12月10日 23:59" in round_page
    assert "<td>创新性</td><td>50</td><td>50%</td>" in round_page and "每项 20,000 元" in round_page

    # nominations: a member may not; a studio lead their own studio's achievement, once on a double submit
    csrf = await as_user(chat, client, "asker1")
    member = await client.post(
        "/console/evaluations/1/nominate", data={"csrf": csrf, "nonce": "n1", "subject": "1"}
    )
    assert member.status == 403 and "只有工作室负责人或联盟负责人可以申报" in await member.text()
    csrf = await as_user(chat, client, B1_LEAD)
    other = await client.post(
        "/console/evaluations/1/nominate", data={"csrf": csrf, "nonce": "n2", "subject": "1"}
    )
    assert other.status == 403 and "只能申报本工作室" in await other.text()
    nonce = await nonce_of(client, "/console/evaluations/1")
    done = await client.post(
        "/console/evaluations/1/nominate", data={"csrf": csrf, "nonce": nonce, "subject": "2"}
    )
    assert done.status == 200 and "已申报：申报 1 成果 #2" in await done.text()
    csrf = await as_user(chat, client, T1_LEAD)
    nonce = await nonce_of(client, "/console/evaluations/1")
    for _ in range(2):
        again = await client.post(
            "/console/evaluations/1/nominate", data={"csrf": csrf, "nonce": nonce, "subject": "1"}
        )
        assert again.status == 200 and "已申报：申报 2 成果 #1" in await again.text()
    assert [n.achievement_id for n in await service.repo.nominees(1)] == [2, 1]

    # scoring: the conflict is refused with its reason, and shown as such
    nonce = await nonce_of(client, "/console/evaluations/1")
    marks = {"score-0": "90", "score-1": "90"}
    conflict = await client.post(
        "/console/evaluations/1/score", data={"csrf": csrf, "nonce": nonce, "nominee": "2", **marks}
    )
    text = await conflict.text()
    assert conflict.status == 403 and "回避：申报 2 成果 #1" in text and "涉及您所在的工作室" in text
    page = await (await client.get("/console/evaluations/1")).text()
    assert "回避：陈掘进" in page and "回避：张拉力" in page and "您需回避" in page
    assert "回避 申报 2" in page  # 陈掘进's line of the panel's progress
    scored = await client.post(
        "/console/evaluations/1/score", data={"csrf": csrf, "nonce": nonce, "nominee": "1", **marks}
    )
    assert scored.status == 200 and "已评分：申报 1 成果 #2" in await scored.text()
    csrf = await as_user(chat, client, TUNNEL_LEAD)
    outsider = await client.post(
        "/console/evaluations/1/score", data={"csrf": csrf, "nonce": "n3", "nominee": "1", **marks}
    )
    assert outsider.status == 403 and "不是评选 #1 优秀创新成果评选的评鉴团成员" in await outsider.text()
    csrf = await as_user(chat, client, B2_LEAD)
    nonce = await nonce_of(client, "/console/evaluations/1")
    for nominee, values in (("1", ("80", "100")), ("2", ("60", "70"))):
        for _ in range(2):  # a double submit records one score
            response = await client.post(
                "/console/evaluations/1/score",
                data={
                    "csrf": csrf,
                    "nonce": f"{nonce}{nominee}",
                    "nominee": nominee,
                    "score-0": values[0],
                    "score-1": values[1],
                },
            )
            assert response.status == 200 and "加权得分" in await response.text()
    bad_mark = await client.post(
        "/console/evaluations/1/score",
        data={"csrf": csrf, "nonce": "n4", "nominee": "1", "score-0": "190", "score-1": "1"},
    )
    assert bad_mark.status == 400 and "分数应在 0 到 100 之间" in await bad_mark.text()
    assert len(await service.repo.scores(1)) == 3
    csrf = await as_user(chat, client, B1_LEAD)
    nonce = await nonce_of(client, "/console/evaluations/1")
    await client.post(
        "/console/evaluations/1/score",
        data={"csrf": csrf, "nonce": nonce, "nominee": "2", "score-0": "50", "score-1": "50"},
    )
    progress = await (await client.get("/console/evaluations/1")).text()
    assert "<td>悬臂宁</td><td>2 / 2</td>" in progress and "<td>陈掘进</td><td>1 / 1</td>" in progress

    # the close: not by a studio lead; by the admin, once
    refused = await client.post("/console/evaluations/1/close", data={"csrf": csrf})
    assert refused.status == 403 and "只有发起人、本联盟负责人或管理员可以结束评选" in await refused.text()
    csrf = await as_user(chat, client, ADMIN)
    closed = await client.post("/console/evaluations/1/close", data={"csrf": csrf})
    results = await closed.text()
    assert closed.status == 200 and "评选 #1 优秀创新成果评选 已结束：2 个申报对象，1 个入选" in results
    again = await client.post("/console/evaluations/1/close", data={"csrf": csrf})
    assert "已经结束了" in await again.text()
    # nominee 1 (#2): 90, 90 → 90; nominee 2 (#1): 65, 50 → 57.5, below the line of 60
    assert re.search(
        r"申报 1 成果 #2.*?<td>90</td><td>1</td><td class=\"good\">入选</td><td>20,000 元</td>", results, re.S
    )
    assert re.search(r"申报 2 成果 #1.*?<td>57.5</td><td>2</td><td class=\"\">未入选</td>", results, re.S)
    awards = await AchievementRepo(bot.store.sessions).awards()
    assert [(a.achievement_id, a.amount) for a in awards] == [(2, 20000)]
    assert len([d for d in await chat.delivered() if "结果】" in d.text]) == 4
    assert "已结束" in await chat.say(ADMIN, "/评选 1")  # the same round in chat


async def test_the_studio_record_page(chat: Chat, client: Client) -> None:
    await chat.say(TUNNEL_LEAD, "/八有 T1 确认 有场所设备 实验室已验收")
    await chat.say(ADMIN, "/成果 登记 工法 盾构管片拼装质量控制工法 T1 2026")
    await chat.say(ADMIN, "/奖励 T1 3万 2026 五星级工作室")
    await as_user(chat, client, B1_LEAD)  # any signed-in person reads a record, as /工作室 T1 档案
    studios = await (await client.get("/console/studios")).text()
    assert 'href="/console/studios/T1/record"' in studios
    response = await client.get("/console/studios/T1/record")
    html = await response.text()
    assert response.status == 200 and "（T1）档案" in html
    assert re.search(r'<tr id="year-2026"><td>2026</td>.*?工法 1.*?1 项 30,000 元', html, re.S)
    assert re.search(
        r"<td>有场所设备</td><td class=\"good\">☑ 已确认</td><td>穆山洞</td><td>2026-11-24 10:00</td><td>实验室已验收</td>",
        html,
    )
    assert '<td>有创新团队</td><td class="muted">☐ 未确认</td>' in html and "1/8" in html
    missing = await client.get("/console/studios/NOPE/record")
    assert missing.status == 404 and "没有这个工作室" in await missing.text()


async def test_the_report_page_shows_stars_by_alliance(chat: Chat, client: Client) -> None:
    await as_user(chat, client, ADMIN)
    html = await (await client.get("/console/report/charts?year=2026")).text()  # the charts load after the page
    assert 'alt="stars_by_alliance" src="data:image/png;base64,' in html


def roster_form(text: str, *, override_stars: bool = False) -> aiohttp.FormData:
    """The preview page's apply form: the roster's text, and 「以名册星级为准」 when ticked."""
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("roster_text", text)
    if override_stars:
        form.add_field("override_stars", "1")
    return form


async def test_a_roster_upload_keeps_a_rounds_stars_unless_the_roster_is_to_win(
    chat: Chat, client: Client, bot: BotApp
) -> None:
    await five_stars_by_a_round(chat)
    text = EXAMPLE_ROSTER.read_text(encoding="utf-8")  # says T2 has four stars
    csrf = await as_user(chat, client, ADMIN)
    preview = await client.post(f"/console/studios/import?csrf={csrf}", data=upload("roster", text))
    html = await preview.text()
    assert preview.status == 200 and "导入时保留评选结果" in html
    assert "<li>T2 钻爆法隧道工匠工作室：保留五星（评选 #1），名册为四星</li>" in html
    assert 'name="override_stars"' in html and "以名册星级为准" in html
    assert "T2（" not in html  # not listed as a change: only its stars differ, and they are kept

    kept = await client.post(f"/console/studios/import/apply?csrf={csrf}", data=roster_form(text))
    page = await kept.text()
    assert kept.status == 200 and "保留五星（评选 #1），名册为四星" in page
    assert (await bot.store.studios.get("T2")).stars == 5  # type: ignore[union-attr]
    repo = EvaluationRepo(bot.store.sessions)
    assert len(await repo.star_history("T2")) == 1

    forced = await client.post(
        f"/console/studios/import/apply?csrf={csrf}", data=roster_form(text, override_stars=True)
    )
    page = await forced.text()
    assert forced.status == 200 and "星级按名册变更 1 个工作室" in page and "保留五星" not in page
    assert (await bot.store.studios.get("T2")).stars == 4  # type: ignore[union-attr]
    last = (await repo.star_history("T2"))[-1]
    assert (last.before, last.after, last.round_id, last.actor, last.origin, last.at) == (
        5,
        4,
        None,
        ADMIN,
        "roster",
        bot.runtime.clock.now(),
    )
    record = await (await client.get("/console/studios/T2/record")).text()
    assert re.search(r"<li>[-\d]+ 五星 → 四星（名册导入，[^<]+）</li>", record), record
    assert '<a href="/console/evaluations/1">评选 #1</a>' in record
    # nothing kept any more: the preview offers no tick box
    again = await (await client.post(f"/console/studios/import?csrf={csrf}", data=upload("roster", text))).text()
    assert "以名册星级为准" not in again and "保留五星" not in again
