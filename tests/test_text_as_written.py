"""What users write is kept as written: only what parsing reads (command words, numbers, ids, option words) is
folded from full-width to half-width. Answers, titles, reasons and problem texts keep their ³, ①, ℃ and Chinese
punctuation in storage, in DMs and in listings, whether they came as a command or a plain message."""

from __future__ import annotations

from bot.app import BotApp
from bot.core.dispatcher import first_word, split_command
from bot.services.problems import ProblemService
from tests.harness import Chat

T1_LEAD = "chenjuejin"  # T1, 隧道联盟
TUNNEL_LEAD = "mushandong"
ASKER = "foreman1"
GROUP = "隧道联盟群"
SPECIAL = "混凝土5.5m³，①先测坍落度；②养护温度≥5℃（见附表：A）"


def test_split_command_folds_only_the_command_word() -> None:
    assert split_command("／答复　５ " + SPECIAL) == ("答复", "５ " + SPECIAL)
    assert split_command("/ANSWER 5  " + SPECIAL) == ("answer", "5  " + SPECIAL)
    assert first_word("５　" + SPECIAL) == ("5", SPECIAL)
    assert first_word("   ") == ("", "")


async def test_answer_keeps_units_circled_numbers_and_punctuation(chat: Chat, bot: BotApp) -> None:
    reply = await chat.say(ASKER, "盾构始发时土压波动很大，掘进参数应该怎么调整？", group=GROUP)
    number = int(reply.split("#", 1)[1].split("。", 1)[0])
    # full-width digits in the number and an ideographic space still parse
    answered = await chat.say(T1_LEAD, f"/答复　{chr(0xFF10 + number)}　{SPECIAL}")
    assert "已答复" in answered, answered
    problem = await bot.runtime.feature(ProblemService).repo.get(number)
    assert problem is not None and problem.answer == SPECIAL
    assert any(SPECIAL in text for text in chat.to_user(ASKER))
    assert SPECIAL in await chat.say(ASKER, f"/问题 {number}")


async def test_the_same_problem_text_as_command_or_plain_message(chat: Chat, bot: BotApp) -> None:
    text = "二衬混凝土拆模后出现裂缝①拱顶②边墙，温度≤5℃时怎么养护？"
    plain = await chat.say(ASKER, text, group=GROUP)
    asked = await chat.say("foreman2", "/提问 " + text.replace("怎么养护", "如何养护"), group=GROUP)
    repo = bot.runtime.feature(ProblemService).repo
    first = await repo.get(int(plain.split("#", 1)[1].split("。", 1)[0]))
    second = await repo.get(int(asked.split("#", 1)[1].split("。", 1)[0]))
    assert first is not None and second is not None
    assert first.text == text
    assert second.text == text.replace("怎么养护", "如何养护")


async def test_topic_title_split_at_a_chinese_colon_and_kept_as_written(chat: Chat) -> None:
    reply = await chat.say(T1_LEAD, "/立项！ 管片拼装①错台控制：研究≥5mm错台的成因")
    assert "管片拼装①错台控制" in reply, reply
    listing = await chat.say(T1_LEAD, "/课题列表")
    assert "管片拼装①错台控制" in listing and "管片拼装1错台控制" not in listing


async def test_award_amount_and_target_fold_but_the_name_does_not(chat: Chat) -> None:
    reply = await chat.say(TUNNEL_LEAD, "/奖励 Ｔ１ ２万 ２０２６ 「优秀工作室」①等奖")
    assert "20,000 元" in reply and "「优秀工作室」①等奖" in reply, reply


async def test_activity_title_and_place_kept_in_the_announcement_and_the_listing(chat: Chat) -> None:
    reply = await chat.say(TUNNEL_LEAD, "/活动 添加 讲座 明天15:00 ①C50混凝土≥5℃养护 地点：２号会议室（东）")
    assert "①C50混凝土≥5℃养护" in reply, reply
    announced = [d.text for d in await chat.delivered()]
    assert any("①C50混凝土≥5℃养护" in text and "２号会议室（东）" in text for text in announced), announced
    assert "①C50混凝土≥5℃养护" in await chat.say(ASKER, "/活动列表")
