"""Interactive cards through the self-built app, over real HTTP and real WeChat crypto against the fake: a lead's
request for a problem is a ``template_card`` sent with ``message/send``; a click (``template_card_event``) is the
typed command from the clicking user (dedupe, caller, role check, the same handler and its audit trail), and the
card is updated through ``message/update_template_card`` with the click's ResponseCode. Without the app's
callback the request stays text. The click-to-update latency is measured and printed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import BotApp
from bot.channels.wecom.agent import AppChannel
from bot.channels.wecom.aibot import AibotChannel
from bot.core.clock import ManualClock
from bot.store.problems import Problem, ProblemEvent
from tests.fake_wecom import (
    Recorded,
    Stack,
    aibot_text,
    app_card_click,
    app_text,
    running_stack,
    wecom_settings,
)

ASKER = "foreman1"
T1_LEAD = "chenjuejin"  # 盾构掘进控制劳模创新工作室 (T1)
T2_LEAD = "shibaopo"
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"
UPDATE = "/cgi-bin/message/update_template_card"


def _prepare(bot: BotApp) -> None:
    if AppChannel in bot.runtime.features:
        bot.runtime.feature(AppChannel).reply_wait = 2.0


def _stack(database_url: str, clock: ManualClock, tmp_path: Path, **overrides: Any) -> Any:
    return running_stack(
        lambda base: wecom_settings(database_url, base, semantic_routing=False, **overrides),
        clock,
        tmp_path,
        prepare=_prepare,
    )


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    async with _stack(database_url, clock, tmp_path) as running:
        yield running


async def lead_request(stack: Stack) -> Recorded:
    """Log the problem (through the app) and deliver the lead's request; the message/send that carried it."""
    body, query = stack.app.app_body(app_text(SHIELD, user=ASKER))
    status, _, _ = await stack.app.post_raw(body, query)
    assert status == 200
    await stack.idle()
    await stack.deliver()
    (sent,) = [r for r in stack.fake.delivered("/cgi-bin/message/send") if r.body["touser"] == T1_LEAD]
    return sent


async def click(stack: Stack, user: str, key: str, task_id: str, code: str | None = None) -> tuple[str, float]:
    """Click a button on the app card; the card's text after the update and the seconds from click to update."""
    code = code or stack.fake.click_code()
    before = len(stack.fake.calls(UPDATE))
    started = time.monotonic()
    body, query = stack.app.app_body(app_card_click(key, task_id, code, user=user))
    status, text, _ = await stack.app.post_raw(body, query)
    assert status == 200 and text == ""
    while len(stack.fake.calls(UPDATE)) == before or stack.fake.calls(UPDATE)[-1].answer is None:
        assert time.monotonic() - started < 10, "no card update"
        await asyncio.sleep(0.005)
    update = stack.fake.calls(UPDATE)[-1]
    assert update.body["response_code"] == code and update.body["userids"] == [user]
    assert update.body["agentid"] == 1000002
    card = update.body["template_card"]
    assert card["task_id"] == task_id and card["card_type"] == "button_interaction"
    return str(card["sub_title_text"]), time.monotonic() - started


async def claims(stack: Stack) -> list[ProblemEvent]:
    async with stack.bot.store.sessions() as session:
        rows = await session.exec(select(ProblemEvent).where(col(ProblemEvent.action) == "claimed"))
        return list(rows.all())


async def test_a_click_on_the_app_card_is_the_typed_command_and_updates_the_card(stack: Stack) -> None:
    sent = await lead_request(stack)
    assert sent.body["msgtype"] == "template_card" and sent.body["agentid"] == 1000002
    card = sent.body["template_card"]
    assert card["card_type"] == "button_interaction" and "盾构始发时土压波动很大" in card["sub_title_text"]
    keys = {b["text"]: b["key"] for b in card["button_list"]}
    assert keys == {"认领": "problem:claim:1", "转派": "problem:transfer:1"}  # the long connection's keys
    assert sent.answer is not None and sent.answer["response_code"]
    task_id = card["task_id"]

    # a member may not claim: the card says why, nothing changes
    refused, _ = await click(stack, ASKER, keys["认领"], task_id)
    assert "需要「工作室负责人」及以上权限" in refused
    code = stack.fake.click_code()
    text, latency = await click(stack, T1_LEAD, keys["认领"], task_id, code)
    print(f"\napp card click -> card updated: {latency * 1000:.0f} ms")
    assert latency < 5
    assert "盾构掘进控制劳模创新工作室已认领问题 #1" in text
    assert stack.fake.cards[task_id]["sub_title_text"] == text
    assert [b["key"] for b in stack.fake.cards[task_id]["button_list"]] == list(keys.values())
    # WeCom retries the same click callback: acted on once (the code is used up, the card keeps the answer)
    body, query = stack.app.app_body(app_card_click(keys["认领"], task_id, code, user=T1_LEAD))
    status, _, _ = await stack.app.post_raw(body, query)
    assert status == 200
    await stack.idle()
    (claim,) = await claims(stack)
    assert claim.actor == T1_LEAD  # the audit trail names the clicking lead
    async with stack.bot.store.sessions() as session:
        assert (await session.exec(select(Problem))).one().studio_id == "T1"
    # another lead on the same card: refused with the reason; transfer needs an alliance lead
    taken, _ = await click(stack, T2_LEAD, keys["认领"], task_id)
    assert "已由盾构掘进控制劳模创新工作室" in taken
    assert "联盟负责人" in (await click(stack, T1_LEAD, keys["转派"], task_id))[0]
    # the same as typing it
    body, query = stack.app.app_body(app_text("/认领 1", user=T1_LEAD))
    _, typed, _ = await stack.app.post_raw(body, query)
    assert "已经认领了问题 #1" in stack.app.open_app_reply(typed)["Content"]
    assert len(await claims(stack)) == 1


async def test_a_click_the_bot_did_not_make_is_ignored(stack: Stack) -> None:
    await lead_request(stack)
    for key in ("problem:delete:1", "/认领 1", "x" * 300):
        body, query = stack.app.app_body(app_card_click(key, "task-x", stack.fake.click_code(), user=T1_LEAD))
        status, text, _ = await stack.app.post_raw(body, query)
        assert status == 200 and text == ""
    await stack.idle()
    assert stack.fake.calls(UPDATE) == [] and await claims(stack) == []


async def test_without_the_app_callback_the_request_stays_text(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    async with _stack(database_url, clock, tmp_path, wecom_app_token="") as stack:
        assert stack.bot.settings.app_enabled is False
        body, query = stack.aibot.aibot_body(aibot_text(SHIELD, user=ASKER))
        status, _, _ = await stack.aibot.post_raw(body, query)
        assert status == 200
        await stack.bot.runtime.feature(AibotChannel).idle()
        await stack.deliver()
        (sent,) = [r for r in stack.fake.delivered("/cgi-bin/message/send") if r.body["touser"] == T1_LEAD]
        assert sent.body["msgtype"] == "text" and "/认领 1" in sent.body["text"]["content"]


async def test_a_very_long_response_code_is_still_acted_on_once(stack: Stack) -> None:
    sent = await lead_request(stack)
    task_id = sent.body["template_card"]["task_id"]
    code = "rc-" + "x" * 400  # longer than a processed-message key may be: deduplicated by its digest
    stack.fake.response_codes.add(code)
    text, _ = await click(stack, T1_LEAD, "problem:claim:1", task_id, code)
    assert "已认领问题 #1" in text
    body, query = stack.app.app_body(app_card_click("problem:claim:1", task_id, code, user=T1_LEAD))
    assert (await stack.app.post_raw(body, query))[0] == 200
    await stack.idle()
    assert len(await claims(stack)) == 1


async def test_the_answer_reaches_the_asker_as_a_card_whose_click_solves_it(stack: Stack) -> None:
    await lead_request(stack)
    for typed in ("/认领 1", "/答复 1 降低推进速度，检查土压传感器"):
        body, query = stack.app.app_body(app_text(typed, user=T1_LEAD))
        status, _, _ = await stack.app.post_raw(body, query)
        assert status == 200
    await stack.idle()
    await stack.deliver()
    (sent,) = [
        r
        for r in stack.fake.delivered("/cgi-bin/message/send")
        if r.body["touser"] == ASKER and r.body["msgtype"] == "template_card"
    ]
    card = sent.body["template_card"]
    assert "检查土压传感器" in card["sub_title_text"] and "答复" in card["main_title"]["title"]
    keys = {b["text"]: b["key"] for b in card["button_list"]}
    assert keys == {"已解决": "problem:solve:1", "还没解决": "problem:unsolved:1"}
    # only the asker may say it is solved; the asker's click is /解决 1 and the card keeps its two buttons
    refused, _ = await click(stack, T2_LEAD, keys["已解决"], card["task_id"])
    assert "提问人" in refused
    solved, _ = await click(stack, ASKER, keys["已解决"], card["task_id"])
    assert "已标记为解决" in solved
    assert [b["key"] for b in stack.fake.cards[card["task_id"]]["button_list"]] == list(keys.values())
    async with stack.bot.store.sessions() as session:
        assert (await session.exec(select(Problem))).one().status == "solved"
