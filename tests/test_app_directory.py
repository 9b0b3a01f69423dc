"""Names from WeCom's directory: a member the roster and the members table do not name is shown by the name
``user/get`` (through the app, fake-served) gives, cached in memory for a while; on an error or without
permission the id is shown. Over real HTTP and crypto against the fake, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.channels.wecom.agent import AppChannel
from bot.channels.wecom.directory import USER_GET, WeComDirectory
from bot.core.clock import ManualClock
from tests.fake_wecom import CORP_ID, SECRET, Stack, app_text, running_stack, wecom_settings

ASKER = "zhaoliu"  # not in the roster, not a member
SHIELD = "盾构始发时土压波动很大，掘进参数应该怎么调整？"


def _prepare(bot: BotApp) -> None:
    bot.runtime.feature(AppChannel).reply_wait = 2.0


@pytest.fixture
async def stack(database_url: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(
        lambda base: wecom_settings(database_url, base, semantic_routing=False), clock, tmp_path, prepare=_prepare
    ) as running:
        yield running


async def say(stack: Stack, user: str, text: str) -> str:
    body, query = stack.app.app_body(app_text(text, user=user))
    status, reply, _ = await stack.app.post_raw(body, query)
    assert status == 200
    if not reply:  # slower than the reply wait: the answer came by message
        await stack.idle()
        await stack.deliver()
        sent = [r for r in stack.fake.delivered("/cgi-bin/message/send") if r.body["touser"] == user]
        return str(sent[-1].body["text"]["content"])
    return stack.app.open_app_reply(reply)["Content"]


def lookups(stack: Stack, user_id: str) -> int:
    return sum(1 for r in stack.fake.calls(USER_GET) if r.query.get("userid") == user_id)


async def test_a_member_outside_the_roster_is_shown_by_the_directory_name_cached(
    stack: Stack, clock: ManualClock
) -> None:
    stack.fake.directory[ASKER] = "赵六"
    assert (await say(stack, ASKER, SHIELD)).startswith("已登记技术问题 #1")
    details = await say(stack, "admin1", "/问题详情 1")
    assert "提问：赵六，" in details
    assert lookups(stack, ASKER) == 1
    assert lookups(stack, "system") == 0  # the bot's own actor is not a person
    # cached: asking again does not call WeCom
    assert "提问：赵六，" in await say(stack, "admin1", "/问题详情 1")
    assert lookups(stack, ASKER) == 1
    # roster people are named by the roster, never looked up
    assert lookups(stack, "chenjuejin") == 0
    # after the cache's time WeCom is asked again, and a changed name shows
    stack.fake.directory[ASKER] = "赵六（隧道局）"
    clock.advance(timedelta(hours=7))
    assert "提问：赵六（隧道局），" in await say(stack, "admin1", "/问题详情 1")
    assert lookups(stack, ASKER) == 2


async def test_without_permission_or_an_unknown_user_the_id_is_shown(stack: Stack) -> None:
    stack.fake.directory_denied = True
    assert (await say(stack, ASKER, SHIELD)).startswith("已登记技术问题 #1")
    details = await say(stack, "admin1", "/问题详情 1")
    assert f"提问：{ASKER}，" in details
    assert lookups(stack, ASKER) == 1


async def test_a_slow_or_failing_directory_yields_the_id_within_its_timeout(stack: Stack) -> None:
    from bot.channels.wecom.client import WeComClient

    client = WeComClient(
        base_url=stack.fake.url, corp_id=CORP_ID, secret=SECRET, now=stack.bot.clock.now, max_attempts=1
    )
    stack.fake.directory.update({"a1": "甲", "b2": "乙"})
    directory = WeComDirectory(client, now=stack.bot.clock.now, timeout=0.3)
    stack.fake.slow_next(1.0, path=USER_GET)
    stack.fake.fail_next(errcode=60011, path=USER_GET)
    assert await directory.names(["a1", "b2", "", "no/such id"]) == {}  # one too slow, one refused, two no ids
    assert await directory.names(["a1", "b2"]) == {}  # misses are cached for a while
    assert directory.lookups == 2
    fresh = WeComDirectory(client, now=stack.bot.clock.now)
    assert await fresh.names(["a1", "b2", "a1"]) == {"a1": "甲", "b2": "乙"}
    assert fresh.lookups == 2
    await client.close()
