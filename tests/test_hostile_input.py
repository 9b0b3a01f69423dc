"""Hostile input gets a clear 4xx or a harmless result, never a 500, a crash, a live formula or live markup.

Each test is one of the ways in found by the fault review: markup and mentions from a member's text in the
alliance groups, formulas in the year report, an XLSX whose dimension claims a million rows, late answers
posted to any URL a payload names, a UTF-16 envelope hiding a DTD, deeply nested JSON, odd calendar ids,
NUL bytes, file names built from roster ids, and a client that sends its body one byte at a time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bot.channels.wecom.senders import markdown_plain
from bot.core.clock import ManualClock
from bot.core.messages import Outbound, Target, TargetKind
from bot.services.achievements.spreadsheet import ImportFileError, read_rows
from bot.services.reports import collect, report_file_name, write_report
from bot.services.studios import RosterError, load_roster
from bot.store.outbox import OutboxStatus
from tests.conftest import SHANGHAI
from tests.fake_wecom import WEBHOOK_KEY, Stack, aibot_text, app_text, running_stack, wecom_settings

TUNNEL_LEAD = "mushandong"
INJECTED = '<@all> [点我领奖](http://evil.example/x) <font color="warning">紧急</font> **加粗** `代码`'


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(lambda base: wecom_settings(database_url, base), clock, tmp_path) as running:
        yield running


def test_markdown_plain_leaves_no_markup_and_keeps_the_words() -> None:
    shown = markdown_plain(INJECTED + "\n# 标题\n> 引用")
    for live in ("<@", "](", "<font", "**", "`", "\n#", "\n>"):
        assert live not in shown, live
    for word in ("点我领奖", "evil.example", "紧急", "加粗", "代码", "标题", "引用"):
        assert word in shown


async def test_member_text_reaches_the_group_robot_inert(stack: Stack) -> None:
    await stack.bot.runtime.outbox.announce("tunnel", f"新问题：{INJECTED}")
    await stack.deliver()
    [posted] = stack.fake.delivered("/cgi-bin/webhook/send")
    content = posted.body["markdown"]["content"]
    assert "<@all>" not in content and "](http" not in content and "<font" not in content
    assert "点我领奖" in content and WEBHOOK_KEY


async def test_late_answers_go_only_to_wecom_response_urls(stack: Stack) -> None:
    outbox = stack.bot.runtime.outbox
    await outbox.send(
        Outbound(Target(TargetKind.RESPONSE_URL, "http://169.254.169.254/latest/meta-data"), "答复")
    )
    good = f"{stack.fake.url}/aibot/response/ok-1"
    await outbox.send(Outbound(Target(TargetKind.RESPONSE_URL, good), "答复"))
    await stack.deliver()
    assert len(stack.fake.delivered("/aibot/response/ok-1")) == 1
    failed = await stack.bot.store.outbox.listing(statuses=(OutboxStatus.FAILED.value,))
    assert [m.target for m in failed] == ["http://169.254.169.254/latest/meta-data"]
    assert failed[0].attempts == 1  # refused for good, not retried


async def test_a_utf16_envelope_with_a_dtd_is_refused(stack: Stack) -> None:
    body = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
        "<xml><Encrypt>&a;</Encrypt></xml>"
    ).encode("utf-16")
    _, query = stack.app.app_body(app_text("/帮助", msg_id="u16"))
    status, _, _ = await stack.app.post_raw(body, query)
    assert status == 400


async def test_deeply_nested_json_is_a_400(stack: Stack) -> None:
    _, query = stack.aibot.aibot_body(aibot_text("/帮助", msg_id="deep"))
    status, _, _ = await stack.aibot.post_raw("[" * 60_000, query)
    assert status == 400
    status, _, _ = await stack.aibot.post_raw(json.dumps({"encrypt": {"a": [1]}}), query)
    assert status == 400


async def test_odd_calendar_ids_are_404(stack: Stack) -> None:
    for path in (
        "/calendar/event/" + "9" * 40 + ".ics",
        "/calendar/event/%00.ics",
        "/calendar/..%2F..%2Fx.ics",
    ):
        async with stack.http.get(str(stack.server.make_url(path))) as response:
            assert response.status == 404, path


async def test_nul_and_control_characters_are_stripped_at_the_channel(stack: Stack) -> None:
    # JSON carries any character (XML cannot, so the app channel already refuses them as malformed)
    payload = aibot_text(
        "/提问 盾构\x00管片\x07上浮了怎么办 已经超过\x0b 20mm", user=TUNNEL_LEAD, msg_id="nul-1"
    )
    status, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(payload))
    assert status == 200
    opened = stack.aibot.open_aibot_reply(text)  # a card: the reply offers /认领 N
    reply = opened["template_card"]["sub_title_text"] if "template_card" in opened else opened["stream"]["content"]
    assert "出错" not in reply and "已登记技术问题" in reply
    from bot.services.problems import ProblemService

    [problem] = await stack.bot.runtime.feature(ProblemService).repo.find(limit=5)
    assert problem.text == "盾构管片上浮了怎么办 已经超过 20mm"


async def test_report_cells_are_never_formulas(stack: Stack, clock: ManualClock, tmp_path: Path) -> None:
    from tests.harness import Chat

    chat = Chat(stack.bot)
    evil = '=HYPERLINK("http://evil.example","点我")'
    reply = await chat.say(TUNNEL_LEAD, f"/奖励 T1 1万 2026 {evil}")
    assert "10,000" in reply
    report = await collect(stack.bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    workbook, _ = write_report(report, tmp_path, use_cjk=False)
    book = load_workbook(workbook)
    values = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                values.append(cell.value)
    assert evil in values  # kept as written, as text


def test_report_file_names_cannot_leave_the_directory() -> None:
    assert "/" not in report_file_name(2026, "../../etc/passwd")
    assert report_file_name(2026, "tunnel") == "联盟年度报告-2026-tunnel.xlsx"


def test_roster_ids_are_validated(tmp_path: Path) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text("alliances:\n  - id: ../../x\n    name: 坏联盟\nstudios: []\n", encoding="utf-8")
    with pytest.raises(RosterError, match="id"):
        load_roster(roster)


def test_an_xlsx_claiming_a_million_rows_is_refused_quickly(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "名称"
    sheet["XFD1048576"] = "x"
    path = tmp_path / "bomb.xlsx"
    book.save(path)
    assert path.stat().st_size < 10_000
    with pytest.raises(ImportFileError, match=r"行|列"):
        read_rows(path)


async def test_a_slow_body_is_cut_off_with_408(stack: Stack) -> None:
    from bot.channels.wecom import callback

    callback.BODY_TIMEOUT = 0.5
    try:
        url = stack.server.make_url("/wecom/app")
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(
            b"POST /wecom/app?msg_signature=x&timestamp=1&nonce=1 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 1000\r\nContent-Type: text/xml\r\n\r\n<xml>"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        assert b" 408 " in status_line
        writer.close()
    finally:
        callback.BODY_TIMEOUT = 10.0


def test_a_flood_of_one_log_line_is_summarised() -> None:
    import logging

    from bot.core.logs import RepeatFilter

    now = [0.0]
    repeat = RepeatFilter(burst=5, window=10.0, clock=lambda: now[0])
    records = [logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.send() raised", None, None)]
    passed = sum(
        repeat.filter(
            logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.send() raised", None, None)
        )
        for _ in range(10_000)
    )
    assert passed == 5
    other = logging.LogRecord("bot", logging.INFO, __file__, 1, "a different line", None, None)
    assert repeat.filter(other)
    now[0] = 11.0
    summary = records[0]
    assert repeat.filter(summary)
    assert "suppressed 9995 times" in str(summary.msg)
