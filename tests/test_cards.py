"""Interactive cards on the long connection: a lead's request for a problem arrives as a card with buttons; a
click is the typed command from the clicking user (same role checks, exactly once per click event), and the
card is updated with the outcome within WeCom's 5 s. The click-to-update latency is measured and printed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import yaml
from sqlmodel import col, select

from bot.channels.wecom.cards import command_for_key
from bot.core.messages import Outbound, Target, TargetKind
from bot.services.studios import load_roster
from bot.store.problems import Problem, ProblemEvent
from tests.fake_wecom_ws import BOT_ID, card_click
from tests.harness import EXAMPLE_ROSTER
from tests.test_longconn import ASKER, SHIELD, T1_LEAD, WsStack, online, ws_stack

T2_LEAD = "shibaopo"
ALLIANCE_LEAD = "mushandong"  # 隧道联盟


async def click(
    stack: WsStack, user: str, key: str, task_id: str, *, msg_id: str | None = None
) -> tuple[str, float]:
    """Click a button; the card's text after the update and how long the update took."""
    started = time.monotonic()
    req_id = await stack.fake.event(card_click(user, key, task_id, msg_id=msg_id))
    (update,) = await stack.fake.wait_for(
        lambda: stack.fake.frames("aibot_respond_update_msg", req_id=req_id), what="the card update"
    )
    assert update.errcode == 0
    return str(update.body["template_card"]["sub_title_text"]), update.at - started


async def test_a_click_claims_like_the_typed_command_and_updates_the_card(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        assert (await stack.ask(SHIELD, user=ASKER)).startswith("已登记技术问题 #1")
        (push,) = await stack.fake.wait_for(lambda: stack.fake.pushes(T1_LEAD), what="the lead's card")
        card = push.body["template_card"]
        assert push.body["msgtype"] == "template_card" and card["card_type"] == "button_interaction"
        keys = {b["text"]: b["key"] for b in card["button_list"]}
        assert set(keys) == {"认领", "转派", "已解决"}
        assert "盾构始发时土压波动很大" in card["sub_title_text"]
        task_id = card["task_id"]

        # a member may not claim: the card says why, nothing changes
        refused, _ = await click(stack, ASKER, keys["认领"], task_id)
        assert "需要「工作室负责人」及以上权限" in refused
        text, latency = await click(stack, T1_LEAD, keys["认领"], task_id, msg_id="click-1")
        print(f"\ncard click -> card updated: {latency * 1000:.0f} ms")
        assert latency < 5
        assert "盾构掘进控制劳模创新工作室已认领问题 #1" in text
        assert stack.fake.cards[task_id]["sub_title_text"] == text
        # the same click event delivered again is not acted on twice
        again, _ = await click(stack, T1_LEAD, keys["认领"], task_id, msg_id="click-1")
        assert again == text
        async with stack.bot.store.sessions() as session:
            problem = (await session.exec(select(Problem))).one()
            claims = (
                await session.exec(select(ProblemEvent).where(col(ProblemEvent.action) == "claimed"))
            ).all()
        assert problem.studio_id == "T1" and len(claims) == 1
        # another lead's click on an old card: refused with the reason
        taken, _ = await click(stack, T2_LEAD, keys["认领"], task_id)
        assert "已由盾构掘进控制劳模创新工作室" in taken
        # transfer needs an alliance lead and a studio: the card says how
        assert "联盟负责人" in (await click(stack, T1_LEAD, keys["转派"], task_id))[0]
        solved, _ = await click(stack, T1_LEAD, keys["已解决"], task_id)
        assert "已标记为解决" in solved


def test_only_the_bots_own_keys_become_commands() -> None:
    assert command_for_key("problem:claim:12") == (12, "/认领 12")
    assert command_for_key("problem:solve:3") == (3, "/解决 3")
    assert command_for_key("problem:claim:12 /授权 x") is None
    assert command_for_key("other:claim:1") is None
    assert command_for_key("problem:unsolved:4") == (4, "/未解决 4")
    assert command_for_key("activity:join:3") == (3, "/报名 3")
    assert command_for_key("activity:leave:3") == (3, "/取消报名 3")
    assert command_for_key("topic:support:3") == (3, "/附议 T-3")
    assert command_for_key("topic:claim:3") is None


def feedback(user: str, feedback_id: str, kind: int, *, msg_id: str) -> dict[str, object]:
    """The body of a ``feedback_event``: 1 👍, 2 👎, 3 withdrawn."""
    return {
        "msgid": msg_id,
        "create_time": int(time.time()),
        "aibotid": BOT_ID,
        "chattype": "single",
        "from": {"userid": user},
        "msgtype": "event",
        "event": {"eventtype": "feedback_event", "feedback_event": {"id": feedback_id, "type": kind}},
    }


async def test_the_relayed_answer_is_a_card_with_feedback_recorded_per_problem(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        await stack.ask(SHIELD, user=ASKER)
        await stack.ask("/认领 1", user=T1_LEAD, chat_id=None)
        await stack.ask("/答复 1 降低推进速度", user=T1_LEAD, chat_id=None)
        answers = await stack.fake.wait_for(
            lambda: [p for p in stack.fake.pushes(ASKER) if "feedback" in p.body.get("template_card", {})],
            what="the answer card",
        )
        card = answers[0].body["template_card"]
        assert "答复了您的问题 #1" in card["main_title"]["title"] and "降低推进速度" in card["sub_title_text"]
        assert card["feedback"] == {"id": "problem:1"}
        assert [b["text"] for b in card["button_list"]] == ["已解决", "还没解决"]
        await stack.fake.event(feedback(ASKER, "problem:1", 1, msg_id="fb-1"))
        await stack.fake.event(feedback(ASKER, "problem:1", 1, msg_id="fb-1"))  # delivered twice
        await stack.fake.event(feedback(ASKER, "problem:99x", 1, msg_id="fb-bad"))  # not ours: ignored
        await asyncio.sleep(0.3)
        await stack.channel.idle()
        assert "提问人反馈：👍 1 · 👎 0" in await stack.ask("/问题详情 1", user=ASKER)
        await stack.fake.event(feedback(ASKER, "problem:1", 2, msg_id="fb-2"))  # changed their mind
        await asyncio.sleep(0.3)
        await stack.channel.idle()
        assert "提问人反馈：👍 0 · 👎 1" in await stack.ask("/问题详情 1", user=ASKER)
        # 还没解决 is /未解决 from the clicking user: only the asker, recorded as dissatisfaction, still open
        refused, _ = await click(stack, T1_LEAD, "problem:unsolved:1", card["task_id"])
        assert "只有提问人" in refused
        kept, _ = await click(stack, ASKER, "problem:unsolved:1", card["task_id"], msg_id="click-u")
        assert "还没解决" in kept and "继续跟进" in kept
        assert "提问人反馈还没解决" in await stack.ask("/问题详情 1", user=ASKER)
        # the card's button solves the problem like /解决
        solved, _ = await click(stack, ASKER, "problem:solve:1", card["task_id"])
        assert "已标记为解决" in solved


async def test_activity_and_topic_cards_click_through_the_typed_commands(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        outbox = stack.bot.runtime.outbox
        await outbox.send(
            Outbound(
                Target(TargetKind.LONGCONN, "group:wr-events"),
                "【新活动】大讲堂「盾构施工」（#7）\n发送 /报名 7 报名。",
                meta={"card": "activity", "activity": "7"},
            ),
            Outbound(
                Target(TargetKind.LONGCONN, "group:wr-events"),
                "【课题征集附议】T1 提出课题 T-3\n其他工作室负责人发送 /附议 T-3 即可支持。",
                meta={"card": "topic", "topic": "3"},
            ),
        )
        pushes = await stack.fake.wait_for(
            lambda: (p := stack.fake.pushes("wr-events")) and len(p) == 2 and p, what="the two cards"
        )
        cards = {c["task_id"].split("-")[0]: c for c in (p.body["template_card"] for p in pushes)}
        assert [b["text"] for b in cards["activity"]["button_list"]] == ["报名", "取消报名"]
        assert "/报名 7" in cards["activity"]["sub_title_text"]  # the typed command stays in the text
        assert [b["key"] for b in cards["topic"]["button_list"]] == ["topic:support:3"]
        # a refused click (no such activity; a member may not support a topic) updates the card with the reason
        no_event, _ = await click(stack, ASKER, "activity:join:7", cards["activity"]["task_id"])
        assert "没有编号为 7 的活动" in no_event
        member, _ = await click(stack, ASKER, "topic:support:3", cards["topic"]["task_id"])
        assert "需要「工作室负责人」及以上权限" in member


async def test_a_successful_sign_up_and_topic_support_by_card_click(database_url: str, tmp_path: Path) -> None:
    """The successful paths end to end: an activity added and a topic proposed by typed commands are announced
    as cards in the alliance's long-connection group (the roster's ``announce.chats``); a member's 报名 click
    signs them up and a second studio's lead's 附议 click supports the topic, each exactly once per click."""
    async with ws_stack(database_url) as stack:
        data = yaml.safe_load(EXAMPLE_ROSTER.read_text(encoding="utf-8"))
        for alliance in data["alliances"]:
            if alliance["id"] == "tunnel":
                alliance["announce"] = {"chats": ["wr-events"]}
        roster = tmp_path / "roster.yaml"
        roster.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        await stack.bot.store.studios.import_roster(load_roster(roster))
        await online(stack)
        added = await stack.ask("/活动 添加 讲座 2030-12-05 15:00 盾构施工新技术", user=ALLIANCE_LEAD)
        assert "已添加活动 #1" in added
        proposed = await stack.ask("/立项 盾构管片拼装质量控制 研究管片错台", user=T1_LEAD, chat_id=None)
        assert "已提出课题 #T-1" in proposed
        pushes = await stack.fake.wait_for(
            lambda: (p := [x for x in stack.fake.pushes("wr-events") if "template_card" in x.body])
            and len(p) == 2
            and p,
            what="the activity and topic cards",
        )
        cards = {c["task_id"].split("-")[0]: c for c in (p.body["template_card"] for p in pushes)}
        join = next(b["key"] for b in cards["activity"]["button_list"] if b["text"] == "报名")
        joined, _ = await click(stack, ASKER, join, cards["activity"]["task_id"], msg_id="join-1")
        assert "报名成功" in joined and "盾构施工新技术" in joined
        again, _ = await click(stack, ASKER, join, cards["activity"]["task_id"], msg_id="join-1")
        assert again == joined  # the same click event delivered again: signed up once
        assert "已报名（1）" in await stack.ask("/活动 1", user=ASKER)
        (support,) = (b["key"] for b in cards["topic"]["button_list"])
        supported, _ = await click(stack, T2_LEAD, support, cards["topic"]["task_id"], msg_id="support-1")
        assert "附议成功：钻爆法隧道工匠工作室支持课题 #T-1" in supported and "2/3" in supported
        again, _ = await click(stack, T2_LEAD, support, cards["topic"]["task_id"], msg_id="support-1")
        assert again == supported
        assert "附议工作室（2/3）" in await stack.ask("/课题 T-1", user=ASKER)
