"""Credit and quorum within the caller's reach: a studio lead credits only their studios and topics their
studios work on; one person supporting a topic for several studios counts once towards its quorum."""

from __future__ import annotations

from bot.settings import Settings
from tests.conftest import ADMIN
from tests.harness import Chat

T1_LEAD = "chenjuejin"  # 盾构掘进控制劳模创新工作室 (T1), 隧道联盟
B1_LEAD = "zhanglali"  # 桥梁联盟
B2_LEAD = "xuanbining"  # 挂篮悬浇与连续梁工匠工作室 (B2), 桥梁联盟
TUNNEL_LEAD = "mushandong"  # 隧道联盟 lead, leads no studio
PROPOSAL = "/立项 盾构管片拼装质量控制 研究管片错台、破损的成因与对策"


async def test_a_studio_lead_credits_only_their_own_studios(chat: Chat) -> None:
    refused = await chat.say(T1_LEAD, "/成果 登记 工法 挂篮悬浇线形控制工法 B2 2026")
    assert "只能为您负责的工作室登记成果" in refused and "挂篮" in refused
    assert "已登记" not in refused
    assert "登记" in await chat.say(T1_LEAD, "/成果 登记 工法 盾构姿态控制工法 T1 2026")
    # an alliance lead credits within their alliance; an admin anywhere
    assert "只能为您负责的联盟登记成果" in await chat.say(TUNNEL_LEAD, "/成果 登记 工法 某桥梁工法 B2 2026")
    assert "只能为" not in await chat.say(ADMIN, "/成果 登记 工法 某桥梁工法 B2 2026")


async def test_an_achievement_attaches_only_to_a_topic_its_studios_work_on(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    refused = await chat.say(B2_LEAD, "/成果 登记 工法 挂篮工法 B2 2026 #T-1")
    assert "攻关团队里没有" in refused
    assert "攻关团队里没有" not in await chat.say(T1_LEAD, "/成果 登记 工法 管片工法 T1 2026 #T-1")


async def test_one_person_supporting_for_several_studios_counts_once(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    first = await chat.say(TUNNEL_LEAD, "/附议 T-1 @T2")
    assert "附议成功" in first, first
    second = await chat.say(TUNNEL_LEAD, "/附议 T-1 @T3")
    assert "附议成功" in second, second
    assert "正式立项" not in second  # three studios, but only two people
    assert "正式立项" in await chat.say(B2_LEAD, "/附议 T-1")


async def test_a_team_lead_credits_the_topics_team(chat: Chat) -> None:
    await chat.say(T1_LEAD, PROPOSAL)
    await chat.say("shibaopo", "/附议 T-1")  # T2's lead
    assert "正式立项" in await chat.say(B2_LEAD, "/附议 T-1")
    assert "已登记成果" in await chat.say(T1_LEAD, "/成果 登记 工法 管片拼装工法 T1 T2 B2 2026 #T-1")
    assert "只能为您负责的工作室登记成果" in await chat.say(T1_LEAD, "/成果 登记 工法 另一工法 T1 U1 2026 #T-1")


async def test_grant_studio_lead_needs_the_studio_and_then_claims_for_it(chat: Chat) -> None:
    assert "请指定工作室" in await chat.say(ADMIN, "/授权 deputy 工作室负责人")
    assert "没有找到工作室「X9」" in await chat.say(ADMIN, "/授权 deputy 工作室负责人 X9")
    granted = await chat.say(ADMIN, "/授权 deputy 工作室负责人 盾构掘进")
    assert granted == "已将 deputy 设为「工作室负责人」：盾构掘进控制劳模创新工作室（T1）。", granted
    reply = await chat.say("foreman1", "盾构始发时土压波动很大，掘进参数应该怎么调整？", group="隧道联盟群")
    number = int(reply.split("#", 1)[1].split("。", 1)[0])
    assert "已认领" in await chat.say("deputy", f"/认领 {number}")
    assert "负责工作室：盾构掘进控制劳模创新工作室（T1）" in await chat.say("deputy", "/我是谁")
    revoked = await chat.say(ADMIN, "/授权 deputy 成员")
    assert "已撤销 deputy 的授权" in revoked, revoked
    assert "身份：成员" in await chat.say("deputy", "/我是谁")


async def test_grant_reply_names_people_the_roster_knows(chat: Chat) -> None:
    reply = await chat.say(ADMIN, "/授权 chenjuejin 联盟负责人 tunnel")
    assert reply == "已将 陈掘进（chenjuejin）设为「联盟负责人」：隧道联盟。", reply


async def test_roles_are_cached_until_a_grant_anywhere_changes_them(chat: Chat, settings: Settings) -> None:
    """A second message from a user reads no roles; a grant made by another process is seen once this one
    rechecks the role version (at most a second later; at once here)."""
    from sqlalchemy import event

    from bot.app import BotApp

    bot = chat.bot
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(bot.store.engine.sync_engine, "before_cursor_execute", record)
    try:
        assert "身份：成员" in await chat.say("deputy", "/我是谁")
        statements.clear()
        bot.store.roles.recheck = 3600.0  # no version read within the hour
        await chat.say("deputy", "/帮助")
        role_reads = [s for s in statements if "FROM member" in s or "FROM studio" in s or "role_version" in s]
        assert role_reads == [], role_reads
        other = await BotApp.create(settings, clock=bot.clock)  # a second process on the same database
        try:
            assert "设为「工作室负责人」" in await Chat(other).say(ADMIN, "/授权 deputy 工作室负责人 T1")
        finally:
            await other.close()
        assert "身份：成员" in await chat.say("deputy", "/我是谁")  # not rechecked yet: still cached
        bot.store.roles.recheck = 0.0
        assert "身份：工作室负责人" in await chat.say("deputy", "/我是谁")
    finally:
        event.remove(bot.store.engine.sync_engine, "before_cursor_execute", record)
