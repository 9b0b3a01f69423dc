"""An evaluation panel scores by card on the long connection: each panel member who need not abstain gets a
``multiple_interaction`` card per nominee (one score list per criterion); submitting it is exactly the typed
``/评选 评分 R N 分数…`` from that member (the same role and conflict checks, once per submit), and the card is
updated with the weighted score or the reason it was refused."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN
from tests.fake_wecom_ws import score_submit
from tests.test_longconn import T1_LEAD, WsStack, online, ws_stack

B1_LEAD, B2_LEAD = "zhanglali", "xuanbining"


async def submit(stack: WsStack, user: str, card: dict[str, Any], chosen: dict[str, str], msg_id: str) -> str:
    key = card["submit_button"]["key"]
    req_id = await stack.fake.event(score_submit(user, key, card["task_id"], chosen, msg_id=msg_id))
    (update,) = await stack.fake.wait_for(
        lambda: stack.fake.frames("aibot_respond_update_msg", req_id=req_id), what="the card update"
    )
    assert update.errcode == 0
    return str(update.body["template_card"]["sub_title_text"])


def score_cards(stack: WsStack, user: str) -> list[dict[str, Any]]:
    return [
        p.body["template_card"]
        for p in stack.fake.pushes(user)
        if p.body.get("template_card", {}).get("card_type") == "multiple_interaction"
    ]


async def test_a_panel_member_scores_a_nominee_by_card(database_url: str) -> None:
    async with ws_stack(database_url) as stack:
        await online(stack)
        assert "已登记成果 #1" in await stack.ask(
            "/成果 登记 工法 盾构管片拼装错台控制工法 T1 2026", user=T1_LEAD, chat_id=None
        )
        opened = await stack.ask(
            "/评选 发起 成果 全部 评委=张拉力,悬臂宁,陈掘进 申报截止=12月20日 评分截止=12月30日 "
            "标准=创新性:50,效益:50",
            user=ADMIN,
            chat_id=None,
        )
        assert opened.startswith("已发起评选 #1"), opened
        assert "已申报评选 #1" in await stack.ask("/评选 申报 1 1", user=T1_LEAD, chat_id=None)

        (card,) = await stack.fake.wait_for(lambda: score_cards(stack, B1_LEAD), what="the score card")
        assert [s["title"] for s in card["select_list"]] == ["创新性", "效益"]
        assert [o["id"] for o in card["select_list"][0]["option_list"]][:3] == ["s100", "s95", "s90"]
        assert "/评选 评分 1 1" in card["sub_title_text"]  # the typed command stays in the text
        await stack.fake.wait_for(lambda: score_cards(stack, B2_LEAD), what="the second member's card")
        assert score_cards(stack, T1_LEAD) == []  # 回避: the nominee is his studio's, he is not asked

        scored = await submit(stack, B1_LEAD, card, {"c0": "s90", "c1": "s80"}, "score-1")
        assert "已评分" in scored and "加权得分 85" in scored, scored
        again = await submit(stack, B1_LEAD, card, {"c0": "s90", "c1": "s80"}, "score-1")
        assert again == scored  # the same submit delivered again: scored once
        # a list left unchosen: the handler says what is missing, nothing is recorded
        missing = await submit(stack, B2_LEAD, card, {"c0": "s70"}, "score-2")
        assert "请按「创新性、效益」的顺序写 2 个" in missing, missing
        # the conflicted member submitting a card of that nominee (forwarded to him) is refused by the handler
        refused = await submit(stack, T1_LEAD, card, {"c0": "s100", "c1": "s100"}, "score-3")
        assert "回避" in refused
        details = await stack.ask("/评选 1", user=B2_LEAD, chat_id=None)
        assert "1 人已评分" in details and "待您评分" in details
        # a second submit with other scores replaces the member's scores
        rescored = await submit(stack, B1_LEAD, card, {"c0": "s100", "c1": "s100"}, "score-4")
        assert "已更新评分" in rescored and "加权得分 100" in rescored
