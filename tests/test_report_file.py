"""``/报表``: the year report sent into WeCom as files — conversation tests for who may have which report and
exactly-once queueing, and the whole path against the fake WeCom: media/upload (multipart) for the workbook and
the overview chart, then a file and an image message through message/send."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.core.messages import Event, TargetKind
from bot.services.studios import load_roster
from bot.store.funds import FundRepo
from tests.conftest import ADMIN
from tests.fake_wecom import FakeWeCom, deliver_due, wecom_settings
from tests.harness import EXAMPLE_ROSTER, Chat

TUNNEL_LEAD, BRIDGE_LEAD, T1_LEAD = "mushandong", "gaojiaqiao", "chenjuejin"


async def test_report_is_queued_as_files_once(chat: Chat) -> None:
    await chat.say(TUNNEL_LEAD, "/经费 收入 公司补助 10万 2026-01-05")
    reply = await chat.say(TUNNEL_LEAD, "/报表 2026", msg_id="report-1")
    assert reply.startswith("【2026年隧道联盟统计】")
    assert "经费：收入 100,000 元，支出 0 元，结余 100,000 元。" in reply
    assert "工作簿「联盟年度报告-2026-tunnel.xlsx」和图表「联盟年度报告-2026-tunnel-图表.png」" in reply
    sent = [d for d in chat.sender.deliveries if d.target.kind is TargetKind.USER_FILE]
    assert [d.target.address for d in sent] == [TUNNEL_LEAD, TUNNEL_LEAD]
    specs = [json.loads(d.text) for d in sent]
    assert [(s["kind"], s["name"]) for s in specs] == [
        ("file", "联盟年度报告-2026-tunnel.xlsx"),
        ("image", "联盟年度报告-2026-tunnel-图表.png"),
    ]
    stored = await FundRepo(chat.bot.store.sessions).file(specs[0]["file"])
    assert stored is not None
    book = load_workbook(io.BytesIO(stored.content))
    funds = list(book["经费"].iter_rows(values_only=True))
    assert next(r for r in funds if r[0] == "tunnel")[6] == 100_000  # 收入合计
    chart = await FundRepo(chat.bot.store.sessions).file(specs[1]["file"])
    assert chart is not None and chart.content.startswith(b"\x89PNG")
    # the same message again sends nothing more
    await chat.say(TUNNEL_LEAD, "/报表 2026", msg_id="report-1")
    assert len([d for d in chat.sender.deliveries if d.target.kind is TargetKind.USER_FILE]) == 2


async def test_sent_report_files_are_pruned_after_a_week(chat: Chat, clock: ManualClock) -> None:
    from bot.handlers.funds import prune_report_files

    await chat.say(TUNNEL_LEAD, "/报表 2026")
    assert (
        await prune_report_files(chat.bot.runtime, clock.now() + timedelta(days=6))
        == "removed 0 report files"
    )
    assert (
        await prune_report_files(chat.bot.runtime, clock.now() + timedelta(days=8))
        == "removed 2 report files"
    )
    assert await FundRepo(chat.bot.store.sessions).file(1) is None


async def test_who_may_have_which_report(chat: Chat) -> None:
    assert "需要「联盟负责人」" in await chat.say(T1_LEAD, "/报表 2026")
    refused = await chat.say(TUNNEL_LEAD, "/报表 2026 桥梁")
    assert "联盟负责人只能获取本联盟的报表" in refused
    assert "没有找到联盟「月球」" in await chat.say(ADMIN, "/报表 2026 月球")
    assert "既不是年份也不是联盟" in await chat.say(ADMIN, "/报表 2026 桥梁 隧道")
    reply = await chat.say(ADMIN, "/report 2026")
    assert "「联盟年度报告-2026.xlsx」" in reply
    assert "/报表 年份" in await chat.say("anyone", "/统计")


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeWeCom]:
    server = await FakeWeCom(now=clock.now).start()
    try:
        yield server
    finally:
        await server.close()


async def test_the_report_reaches_wecom_as_a_file_and_an_image(
    database_url: str, fake: FakeWeCom, clock: ManualClock, tmp_path: Path
) -> None:
    bot = await BotApp.create(wecom_settings(database_url, fake.url), clock=clock)
    try:
        await bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        event = Event(
            channel="test",
            user_id=BRIDGE_LEAD,
            text="/报表 2026",
            received_at=clock.now(),
            msg_id="wecom-report-1",
        )
        reply = await bot.handle(event)
        assert reply is not None and "联盟年度报告-2026-bridge.xlsx" in reply.text
        await deliver_due(bot)
        uploads = fake.delivered("/cgi-bin/media/upload")
        assert [u.query["type"] for u in uploads] == ["file", "image"]
        assert [u.body["filename"] for u in uploads] == [
            "联盟年度报告-2026-bridge.xlsx",
            "联盟年度报告-2026-bridge-图表.png",
        ]
        assert uploads[0].body["name"] == "media"
        load_workbook(io.BytesIO(uploads[0].body["content"]))  # the workbook arrived whole
        sends = [r.body for r in fake.delivered("/cgi-bin/message/send")]
        assert [(s["touser"], s["msgtype"], s[s["msgtype"]]["media_id"]) for s in sends] == [
            (BRIDGE_LEAD, "file", uploads[0].answer["media_id"]),  # type: ignore[index]
            (BRIDGE_LEAD, "image", uploads[1].answer["media_id"]),  # type: ignore[index]
        ]
        # a failed upload is retried later by the outbox (and an expired token refreshed), each file sent once
        fake.fail_next(errcode=-1, path="/cgi-bin/media/upload", times=2)
        fake.expire_tokens()
        again = Event(
            channel="test",
            user_id=BRIDGE_LEAD,
            text="/报表 2025",
            received_at=clock.now(),
            msg_id="wecom-report-2",
        )
        await bot.handle(again)
        await deliver_due(bot)
        clock.advance(timedelta(minutes=5))
        await deliver_due(bot)
        sends = [r.body for r in fake.delivered("/cgi-bin/message/send")]
        assert len(sends) == 4
        assert fake.token_fetches == 2  # the expired token was refreshed once, by the upload
        assert [m.status for m in await bot.store.outbox.listing(statuses=("failed",))] == []
    finally:
        await bot.close()
