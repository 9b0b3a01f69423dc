"""Conversation tests for the core commands: help, whoami, studios, studio; unknown commands and roles."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.app import BotApp
from bot.core.dispatcher import Role, Router, split_command
from tests.conftest import ADMIN
from tests.harness import Chat


def test_split_command_handles_full_width() -> None:
    assert split_command("/help studio") == ("help", "studio")
    assert split_command("／帮助　studio") == ("帮助", "studio")
    assert split_command("  /STUDIOS  隧道 ") == ("studios", "隧道")
    assert split_command("请问盾构怎么办") is None


async def test_help_lists_member_commands_in_chinese(chat: Chat) -> None:
    reply = await chat.say("someone", "/help")
    assert "您的身份：成员" in reply
    assert "/工作室（/studios）" in reply
    assert "查看可用命令" in reply
    same = await chat.say("someone", "/帮助")
    assert same == reply


async def test_help_for_one_command_and_unknown_one(chat: Chat) -> None:
    reply = await chat.say("someone", "/help studio")
    assert "用法：/studio 编号" in reply
    reply = await chat.say("someone", "/帮助 stuido")
    assert "没有 /stuido" in reply and "/studio" in reply


async def test_unknown_command_suggests_closest(chat: Chat) -> None:
    reply = await chat.say("someone", "/studois")
    assert "没有 /studois 这个命令" in reply
    assert "/studios" in reply
    assert "没有 /zzzzzz 这个命令" in await chat.say("someone", "/zzzzzz")
    assert "请在 / 后面输入命令" in await chat.say("someone", "/")


async def test_whoami_roles(chat: Chat) -> None:
    member = await chat.say("someone", "/whoami")
    assert "账号：someone" in member and "身份：成员" in member
    lead = await chat.say("chenjuejin", "/我是谁")
    assert "身份：工作室负责人" in lead and "盾构掘进控制劳模创新工作室（T1）" in lead
    alliance_lead = await chat.say("mushandong", "/whoami")
    assert "身份：联盟负责人" in alliance_lead and "牵头联盟：隧道联盟" in alliance_lead
    admin = await chat.say(ADMIN, "/whoami")
    assert "身份：管理员" in admin


async def test_studios_grouped_by_alliance(chat: Chat) -> None:
    reply = await chat.say("someone", "/studios")
    for name in ("【桥梁联盟】", "【隧道联盟】", "【城轨联盟】", "【四电联盟】"):
        assert name in reply
    assert "T1 盾构掘进控制劳模创新工作室 ★★★★★ 负责人：陈掘进" in reply
    assert reply.index("【桥梁联盟】") < reply.index("B1 ") < reply.index("【隧道联盟】")


async def test_studios_of_one_alliance_and_errors(chat: Chat) -> None:
    reply = await chat.say("someone", "/工作室 隧道")
    assert "【隧道联盟】3 个工作室" in reply
    assert "【桥梁联盟】" not in reply
    reply = await chat.say("someone", "/工作室 海洋")
    assert "没有找到联盟「海洋」" in reply and "隧道联盟" in reply


async def test_studio_profile(chat: Chat) -> None:
    reply = await chat.say("someone", "/studio t1")
    assert "盾构掘进控制劳模创新工作室（T1）" in reply
    assert "类型：科技研发型" in reply and "专长：盾构、掘进参数" in reply
    assert "联盟：隧道联盟" in reply
    assert "用法：/studio 编号" in await chat.say("someone", "/studio")
    assert "没有编号为 X9 的工作室" in await chat.say("someone", "/studio X9")
    by_name = await chat.say("someone", "/studio 接触网")
    assert "接触网施工技能大师工作室（P1）" in by_name


async def test_empty_database_hint(bot: BotApp) -> None:
    from sqlalchemy import delete

    from bot.store.studios import Studio

    async with bot.store.sessions() as session, session.begin():
        await session.exec(delete(Studio))  # type: ignore[call-overload]
    chat = Chat(bot)
    assert "还没有工作室数据" in await chat.say("someone", "/studios")


async def test_role_refusal_names_required_role(bot: BotApp) -> None:
    router = Router("测试")

    @router.command("secret", "机密", summary="测试用", role=Role.ALLIANCE_LEAD)
    async def handle_secret(ctx: object) -> str:
        return "ok"

    bot.add_router(router)
    chat = Chat(bot)
    refused = await chat.say("chenjuejin", "/secret")
    assert "需要「联盟负责人」及以上权限" in refused and "您当前是「工作室负责人」" in refused
    assert await chat.say("mushandong", "/机密") == "ok"
    assert await chat.say(ADMIN, "/secret") == "ok"
    assert "/secret" not in await chat.say("someone", "/help")
    assert "/secret" in await chat.say(ADMIN, "/help")


async def test_handler_crash_gives_polite_reply(bot: BotApp) -> None:
    router = Router("测试")

    @router.command("boom", summary="测试用")
    async def handle_boom(ctx: object) -> str:
        raise RuntimeError("bug")

    bot.add_router(router)
    chat = Chat(bot)
    assert "出错了" in await chat.say("someone", "/boom")


async def test_duplicate_message_id_is_acted_on_once(bot: BotApp) -> None:
    router = Router("测试")
    calls: list[str] = []

    @router.command("count", summary="测试用")
    async def handle_count(ctx: object) -> str:
        calls.append("x")
        return f"第 {len(calls)} 次"

    bot.add_router(router)
    chat = Chat(bot)
    first = await chat.say("someone", "/count", msg_id="same-id")
    second = await chat.say("someone", "/count", msg_id="same-id")
    third = await chat.say("someone", "/count", msg_id="same-id")
    # the handler ran once; retries get the answer it gave (WeCom retries when the answer did not arrive)
    assert calls == ["x"]
    assert first == "第 1 次" and second == first and third == first
    assert await chat.say("someone", "/count", msg_id="other-id") == "第 2 次"


async def test_unanswered_claim_of_a_dead_process_is_taken_over(bot: BotApp) -> None:
    """A claim never answered (its process died mid-handling) is taken over by a retry after the lease."""
    now = bot.clock.now()
    assert await bot.store.dedupe.claim("chat:m1", now)
    assert not await bot.store.dedupe.claim("chat:m1", now + timedelta(seconds=1), lease=timedelta(seconds=4))
    assert await bot.store.dedupe.claim("chat:m1", now + timedelta(seconds=5), lease=timedelta(seconds=4))
    # only one of two concurrent retries takes it over
    later = now + timedelta(seconds=20)
    outcomes = await asyncio.gather(
        *(bot.store.dedupe.claim("chat:m1", later, lease=timedelta(seconds=4)) for _ in range(2))
    )
    assert sorted(o.new for o in outcomes) == [False, True]
    # an answered claim is never taken over, and its answer is kept
    await bot.store.dedupe.answered("chat:m1", "答复", later)
    retried = await bot.store.dedupe.claim("chat:m1", later + timedelta(hours=1), lease=timedelta(seconds=4))
    assert not retried.new and retried.answered and retried.reply == "答复"


async def test_plain_text_without_feature_gets_hint(chat: Chat) -> None:
    assert "/帮助" in await chat.say("someone", "你好")


@pytest.mark.parametrize("text", ["/help", "/工作室", "/studio B1", "/whoami"])
async def test_commands_never_empty(chat: Chat, text: str) -> None:
    assert (await chat.say("someone", text)).strip()


async def test_did_you_mean_prefers_the_verb_the_word_begins_with(chat: Chat) -> None:
    reply = await chat.say("someone", "/报名活动 1")
    assert "您是不是想用 /报名？" in reply, reply
    assert "您是不是想用 /认领？" in await chat.say("someone", "/认领问题 3")


async def test_help_names_the_chinese_command_first_and_once(chat: Chat) -> None:
    one = await chat.say("someone", "/帮助 认领")
    assert one.splitlines()[0] == "/认领（英文：/claim）", one
    overview = await chat.say("someone", "/帮助")
    assert "  /报名（/join） — " in overview and "/join（/报名）" not in overview
