"""The console's ledger in a real browser (Playwright driving Debian's Chromium): an alliance lead records an
expense in the form, sees it in the ledger, is refused past a budget with the reason, and the chat's ``/经费``
shows the same figures; the talent page lists what was recorded. Screenshots go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import pytest

from tests.test_console_browser import (  # noqa: F401 - the module's browser and stack fixtures
    CHROMIUM,
    Browser,
    Stack,
    browser,
    shot,
    signed_in,
    stack,
)

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
    pytest.mark.asyncio(loop_scope="module"),
]


async def test_lead_adds_an_expense_in_the_console_and_chat_sees_it(
    browser: Browser,  # noqa: F811
    stack: Stack,  # noqa: F811
) -> None:
    page = await signed_in(browser, stack, "mushandong")  # the tunnel alliance's lead
    await page.click("header nav a[href='/console/funds']")
    assert "经费台账 · 隧道联盟 2026 年" in await page.locator("h1").inner_text()
    await page.fill("#funds-category", "学习培训")
    await page.fill("#funds-amount", "8000")
    await page.fill("#funds-date", "2026-11-20")
    await page.fill("#funds-note", "盾构培训班")
    await page.select_option("#funds-link-kind", "activity")
    await page.fill("#funds-link-id", str(stack.activity))
    await page.click("#funds-save")
    notice = await page.locator(".notice").inner_text()
    assert "已登记隧道联盟支出 #1 学习培训 8,000 元（2026-11-20）：盾构培训班" in notice
    assert "8,000" in await page.locator("#funds-spending").inner_text()
    assert "盾构培训班" in await page.locator("#funds-lines").inner_text()
    await shot(page, "funds")
    summary = await stack.chat.say("mushandong", "/经费")
    # the stack's 30,000 award to T1 is the alliance's 奖励 spending, counted once
    assert "支出合计 38,000 元" in summary and "· 学习培训 8,000 元（未设预算）" in summary

    # a budget, then spending past it: refused with the reason, nothing recorded
    await page.select_option("#budget-category", "学习培训")
    await page.fill("#budget-amount", "1万")
    await page.click("#budget-save")
    assert "「学习培训」预算设为 10,000 元" in await page.locator(".notice").inner_text()
    await page.fill("#funds-category", "学习培训")
    await page.fill("#funds-amount", "5000")
    await page.click("#funds-save")
    error = await page.locator("#funds-error").inner_text()
    assert "超出预算" in error and "本笔 5,000 元后将达 13,000 元" in error
    assert await page.locator("#funds-override").count() == 0  # a lead cannot override
    await shot(page, "funds-refused")
    assert "· 学习培训 8,000 / 预算 10,000 元，执行 80%" in await stack.chat.say("mushandong", "/经费")

    # the talent page: the lead records a title; the chat's /人才 counts it
    await page.click("header nav a[href='/console/talent']")
    await page.fill("#honour-person", "陈掘进")
    await page.select_option("#honour-title", "省级工匠")
    await page.select_option("#honour-studio", "T1")
    await page.fill("#honour-evidence", "省总工会文件 2026-12号")
    await page.click("#honour-save")
    assert "获「省级工匠」" in await page.locator(".notice").inner_text()
    assert "省总工会文件 2026-12号" in await page.locator("#talent-honours").inner_text()
    await shot(page, "talent")
    assert "省级工匠 1 人" in await stack.chat.say("mushandong", "/人才 隧道")
    await page.context.close()
