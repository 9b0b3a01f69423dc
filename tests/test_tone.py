"""Tone in the group: acknowledgements get nothing, thanks and wishes a word, good news a congratulation,
a question about an activity its time and place from the calendar; and a logged problem takes about three
lines in the group."""

from __future__ import annotations

import pytest

from bot.routing.judge import Tone, chatter_tone
from tests.harness import Chat

GROUP = "隧道联盟群"
LEAD = "mushandong"


@pytest.mark.parametrize(
    ("text", "tone"),
    [
        ("大家辛苦了，今天首段道床顺利浇筑完成！", Tone.CELEBRATION),
        ("收到", Tone.ACK),
        ("好的👌", Tone.ACK),
        ("辛苦了", Tone.ACK),
        ("周末愉快", Tone.WISH),
        ("谢谢各位专家", Tone.THANKS),
        ("明天大讲堂几点开始？在哪个会议室", Tone.SCHEDULE),
    ],
)
def test_tones(text: str, tone: Tone) -> None:
    assert chatter_tone(text) == tone


@pytest.mark.parametrize("text", ["收到", "好的👌", "辛苦了", "嗯嗯", "大家好"])
async def test_acknowledgements_get_nothing_in_the_group(chat: Chat, text: str) -> None:
    assert await chat.say("foreman1", text, group=GROUP) == ""


async def test_good_news_thanks_and_wishes_get_a_word(chat: Chat) -> None:
    assert await chat.say("foreman1", "大家辛苦了，今天首段道床顺利浇筑完成！", group=GROUP) == "祝贺！👏"
    assert await chat.say("foreman1", "周末愉快", group=GROUP) == "周末愉快！"
    assert await chat.say("foreman1", "谢谢各位专家", group=GROUP) == "不客气！"


async def test_a_schedule_question_is_answered_from_the_calendar(chat: Chat) -> None:
    await chat.say(LEAD, "/活动 添加 讲座 明天15:00 盾构施工新技术 地点 3楼第二会议室")
    await chat.say(LEAD, "/活动 添加 培训 明天9点 安全培训 地点 工地会议室")
    reply = await chat.say("foreman1", "明天大讲堂几点开始？在哪个会议室", group=GROUP)
    assert "「盾构施工新技术」（#1）" in reply and "15:00" in reply and "3楼第二会议室" in reply, reply
    assert "安全培训" not in reply
    none = await chat.say("foreman1", "后天大讲堂几点开始？", group=GROUP)
    assert "日历里没有找到" in none and "/活动列表" in none, none


async def test_a_logged_problem_takes_about_three_lines_in_the_group(chat: Chat) -> None:
    reply = await chat.say("foreman1", "盾构始发时土压波动很大，掘进参数应该怎么调整？", group=GROUP)
    assert reply.startswith("已登记技术问题 #1"), reply
    assert len(reply.splitlines()) <= 3, reply
    assert "/问题 1" in reply
    details = await chat.say("foreman1", "/问题 1")
    assert "盾构掘进控制劳模创新工作室" in details
