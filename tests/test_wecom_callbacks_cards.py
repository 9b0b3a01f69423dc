"""Cards on the AI-bot callback channel, over real HTTP with real crypto: a reply that offers typed commands a
button stands for (``/认领 1``, ``/报名 1``, ``/附议 T-1``) is a passive ``template_card`` reply with those buttons;
a click (``template_card_event``) is exactly the typed command from the clicking user (dedupe, caller, role
check, the same handler and audit), and the passive reply updates the card with the outcome or the refusal."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import BotApp
from bot.channels.wecom.aibot import AibotChannel
from bot.channels.wecom.cards import CARD_PENDING, offered_card, reply_card
from bot.core.clock import ManualClock
from bot.core.dispatcher import Context, Router
from bot.routing.text import warm_up
from bot.services.problems import ProblemService
from bot.store.problems import Problem, ProblemEvent
from tests.fake_wecom import Stack, aibot_click, aibot_text, running_stack, wecom_settings

ASKER = "foreman1"
GROUP = "wrgroup-tunnel"
T1_LEAD = "chenjuejin"  # 盾构掘进控制劳模创新工作室 (T1)
T2_LEAD = "shibaopo"  # 钻爆法隧道工匠工作室 (T2)
ALLIANCE_LEAD = "mushandong"  # 隧道联盟
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"
TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")  # what WeCom accepts as a task id


long_router = Router("测试")
LONG = "很长的活动说明。" * 100 + "\n发送 /报名 1 报名。"


@long_router.command("longreply", summary="测试：很长的回复")
async def handle_long(ctx: Context) -> str:
    return LONG


def _prepare(bot: BotApp) -> None:
    bot.add_router(long_router)
    bot.runtime.feature(AibotChannel).reply_wait = 3.0


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(
        lambda base: wecom_settings(database_url, base, data_dir=str(tmp_path), semantic_routing=False),
        clock,
        tmp_path,
        prepare=_prepare,
    ) as running:
        # jieba's dictionary and the routing index, loaded before the first message (its answer is timed)
        await asyncio.to_thread(warm_up)
        await running.bot.runtime.feature(ProblemService).index()
        yield running


async def post(stack: Stack, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one callback; the decrypted passive reply."""
    status, text, _ = await stack.aibot.post_raw(*stack.aibot.aibot_body(payload))
    assert status == 200, text
    return stack.aibot.open_aibot_reply(text)


async def answer(stack: Stack, payload: dict[str, Any]) -> dict[str, Any]:
    """A message's passive reply; for a slow one (the routing index's first build on a loaded machine), what
    WeCom's next stream poll collects."""
    reply = await post(stack, payload)
    if reply.get("msgtype") == "stream" and not reply["stream"]["finish"]:
        await stack.idle()
        poll = {"msgid": f"poll-{os.urandom(4).hex()}", "msgtype": "stream", "stream": {"id": reply["stream"]["id"]}}
        reply = await post(stack, poll)
    return reply


async def click(stack: Stack, user: str, key: str, task_id: str, *, msg_id: str | None = None) -> str:
    """Click a button; the updated card's text (checked to be an update of the clicked card)."""
    reply = await post(stack, aibot_click(user, key, task_id, msg_id=msg_id))
    assert reply["response_type"] == "update_template_card"
    card = reply["template_card"]
    assert card["task_id"] == task_id and card["card_type"] == "button_interaction"
    return str(card["sub_title_text"])


def buttons(reply: dict[str, Any]) -> dict[str, str]:
    assert reply["msgtype"] == "template_card", reply
    card = reply["template_card"]
    assert TASK_ID.match(card["task_id"]), card["task_id"]
    return {b["text"]: b["key"] for b in card["button_list"]}


async def test_a_logged_problem_is_a_card_and_a_click_claims_like_the_typed_command(stack: Stack) -> None:
    reply = await answer(stack, aibot_text(f"@联盟助手\u2005{SHIELD}", user=ASKER, chat_id=GROUP, msg_id="ask-1"))
    keys = buttons(reply)
    assert keys == {"认领": "problem:claim:1", "转派": "problem:transfer:1", "已解决": "problem:solve:1"}
    card = reply["template_card"]
    assert card["main_title"]["title"] == "技术问题 #1"
    assert card["sub_title_text"].startswith("已登记技术问题 #1") and "/认领 1" in card["sub_title_text"]
    task_id = card["task_id"]
    # the retried message gets the same card (same task id: WeCom drops a repeat)
    again = await post(stack, aibot_text(f"@联盟助手\u2005{SHIELD}", user=ASKER, chat_id=GROUP, msg_id="ask-1"))
    assert again["template_card"]["task_id"] == task_id

    # a member may not claim: the card says why, nothing changes
    refused = await click(stack, ASKER, keys["认领"], task_id)
    assert "需要「工作室负责人」及以上权限" in refused
    claimed = await click(stack, T1_LEAD, keys["认领"], task_id, msg_id="click-1")
    assert "盾构掘进控制劳模创新工作室已认领问题 #1" in claimed
    # WeCom retries the click event: answered from the record, not acted on twice
    assert await click(stack, T1_LEAD, keys["认领"], task_id, msg_id="click-1") == claimed
    async with stack.bot.store.sessions() as session:
        problem = (await session.exec(select(Problem))).one()
        claims = (await session.exec(select(ProblemEvent).where(col(ProblemEvent.action) == "claimed"))).all()
    assert problem.studio_id == "T1" and len(claims) == 1
    assert claims[0].actor == T1_LEAD  # the problem's audit trail names the one who clicked
    # another lead's click on the same card: refused with the reason
    assert "已由盾构掘进控制劳模创新工作室" in await click(stack, T2_LEAD, keys["认领"], task_id)
    assert "已标记为解决" in await click(stack, T1_LEAD, keys["已解决"], task_id)
    # a key the bot did not make is not a command: an empty answer, nothing done
    status, text, _ = await stack.aibot.post_raw(
        *stack.aibot.aibot_body(aibot_click(ASKER, "problem:claim:1 /授权 x 管理员", task_id))
    )
    assert status == 200 and text == ""


async def test_activity_and_topic_replies_are_cards_whose_clicks_sign_up_and_support(stack: Stack) -> None:
    added = await answer(
        stack, aibot_text("/活动 添加 讲座 2030-12-05 15:00 盾构施工新技术", user=ALLIANCE_LEAD, chat_id=GROUP)
    )
    assert "已添加活动 #1" in added["template_card"]["sub_title_text"]
    details = await answer(stack, aibot_text("/活动 1", user=ASKER, chat_id=GROUP))
    keys = buttons(details)
    assert keys == {"报名": "activity:join:1", "取消报名": "activity:leave:1"}
    task_id = details["template_card"]["task_id"]
    joined = await click(stack, ASKER, keys["报名"], task_id, msg_id="join-1")
    assert "报名成功" in joined and "盾构施工新技术" in joined
    assert await click(stack, ASKER, keys["报名"], task_id, msg_id="join-1") == joined  # retried: once
    after = await answer(stack, aibot_text("/活动 1", user=ASKER, chat_id=GROUP))
    assert "已报名（1）" in after["template_card"]["sub_title_text"]
    assert "取消" in await click(stack, ASKER, keys["取消报名"], task_id)

    proposed = await answer(stack, aibot_text("/立项 盾构管片拼装质量控制 研究管片错台", user=T1_LEAD, chat_id=None))
    assert buttons(proposed) == {"附议": "topic:support:1"}
    topic_task = proposed["template_card"]["task_id"]
    # a member may not support a topic; another studio's lead may
    assert "需要「工作室负责人」及以上权限" in await click(stack, ASKER, "topic:support:1", topic_task)
    supported = await click(stack, T2_LEAD, "topic:support:1", topic_task, msg_id="support-1")
    assert "附议成功：钻爆法隧道工匠工作室支持课题 #T-1" in supported and "2/3" in supported


async def test_replies_without_an_offered_command_stay_streams(stack: Stack) -> None:
    reply = await post(stack, aibot_text("/帮助", user=ASKER, chat_id=None))
    assert reply["msgtype"] == "stream" and reply["stream"]["finish"] is True
    assert offered_card("已登记技术问题 #12。认领 /认领 12，进展 /问题 12。") == ("problem", 12)
    assert offered_card("请发送 /附议 3") is None  # a topic is always written T-N
    assert offered_card("如已解决，请发送 /解决 4；如还没解决，请发送 /未解决 4") == ("problem", 4)
    answer_card = reply_card("如已解决，请发送 /解决 4", task_id="t")
    assert answer_card is not None and [b["text"] for b in answer_card["button_list"]] == ["已解决", "还没解决"]


async def test_a_reply_too_long_for_a_card_is_the_stream_with_the_card_under_it(stack: Stack) -> None:
    reply = await post(stack, aibot_text("/longreply", user=ASKER, chat_id=None))
    assert reply["msgtype"] == "stream_with_template_card"
    assert reply["stream"]["finish"] is True and reply["stream"]["content"] == LONG
    assert [b["key"] for b in reply["template_card"]["button_list"]] == ["activity:join:1", "activity:leave:1"]


async def test_a_slow_click_shows_pending_and_its_answer_goes_to_the_response_url(stack: Stack) -> None:
    reply = await answer(stack, aibot_text(f"@联盟助手\u2005{SHIELD}", user=ASKER, chat_id=GROUP))
    task_id = reply["template_card"]["task_id"]
    stack.bot.runtime.feature(AibotChannel).card_wait = 0.0001  # every click is answered "later"
    url = f"{stack.fake.url}/aibot/response/click-slow"
    payload = aibot_click(T1_LEAD, "problem:claim:1", task_id, msg_id="click-slow", response_url=url)
    pending = await post(stack, payload)
    assert pending["template_card"]["sub_title_text"] == CARD_PENDING
    await stack.idle()
    await stack.deliver()
    (posted,) = stack.fake.delivered("/aibot/response/click-slow")
    assert "已认领问题 #1" in posted.body["markdown"]["content"]
    async with stack.bot.store.sessions() as session:
        problem = (await session.exec(select(Problem))).one()
    assert problem.studio_id == "T1"
