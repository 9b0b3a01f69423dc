"""Every funding, talent and benefit chart of the year report, drawn from figures entered through the chat and
kept as PNG files under ``test-artifacts/console/charts/`` (beside the console's screenshots) for the closing
note; the console's report page shows the same charts inline."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import BOT_KEY, BotApp
from bot.channels.web import add_routes
from bot.core.clock import ManualClock
from bot.services.reports import collect, write_charts
from tests.conftest import ADMIN, SHANGHAI
from tests.harness import ROOT, Chat
from tests.test_console import sign_in
from tests.test_reports_funds import seed

ARTIFACTS = ROOT / "test-artifacts" / "console" / "charts"
CHARTS = ("funds_sources_uses", "funds_budget", "talent_trained", "talent_titles", "benefits")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (and that it is one)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


async def test_each_chart_is_drawn_and_shown_on_the_report_page(
    bot: BotApp, chat: Chat, clock: ManualClock, tmp_path: Path
) -> None:
    await seed(chat, clock)
    report = await collect(bot.store, year=2026, tz=SHANGHAI, now=clock.now())
    # the SQLite run keeps its charts for the closing note; the PostgreSQL run must draw the same ones
    out = ARTIFACTS if bot.settings.database_url.startswith("sqlite") else tmp_path
    drawn = {p.stem: p for p in write_charts(report, out)}
    for name in CHARTS:
        assert name in drawn, sorted(drawn)
        width, height = png_size(drawn[name])
        assert width >= 600 and height >= 300, (name, width, height)
    app = web.Application()
    app[BOT_KEY] = bot
    add_routes(app)
    async with TestClient(TestServer(app)) as client:
        await sign_in(chat, client, ADMIN)
        page = await client.get("/console/report?year=2026")  # the charts follow as a fragment
        assert page.status == 200 and "/console/report/charts?" in await page.text()
        fragment = await client.get("/console/report/charts?year=2026")
        html = await fragment.text()
    assert fragment.status == 200
    shown = re.findall(r'<img alt="([\w-]+)" src="data:image/png;base64,', html)
    assert set(CHARTS) <= set(shown), shown
