"""WeCom lets the AI bot push (``aibot_send_msg``) only into a conversation where someone has spoken to it. An
alliance's announcement for a group chat nobody has spoken in yet goes through the group robot webhook the
roster pairs with that chat (``announce: {chats: [{id, webhook}]}``); once someone speaks there, announcements
are pushed into the chat (with their cards) instead. Real long connection against the fake WebSocket server,
webhooks against the fake HTTP API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.services.studios import RosterError, load_roster
from tests.fake_wecom import FakeWeCom
from tests.harness import EXAMPLE_ROSTER
from tests.processes import until
from tests.test_longconn import ASKER, online, ws_stack

ALLIANCE_LEAD = "mushandong"  # 隧道联盟
QUIET, HOOK = "wr-quiet", "hook-quiet"


def roster_with(tmp_path: Path, chats: list[object]) -> Path:
    data = yaml.safe_load(EXAMPLE_ROSTER.read_text(encoding="utf-8"))
    for alliance in data["alliances"]:
        if alliance["id"] == "tunnel":
            alliance["announce"] = {"chats": chats}
    path = tmp_path / "roster.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def test_a_quiet_chat_hears_through_its_webhook_until_someone_speaks_there(
    database_url: str, tmp_path: Path
) -> None:
    api = await FakeWeCom().start()
    try:
        async with ws_stack(database_url, wecom_api_base=api.url) as stack:
            roster = load_roster(roster_with(tmp_path, [{"id": QUIET, "webhook": HOOK}]))
            await stack.bot.store.studios.import_roster(roster)
            await online(stack)

            def hooked() -> list[str]:
                return [
                    str(r.body["markdown"]["content"] if "markdown" in r.body else r.body["text"]["content"])
                    for r in api.delivered("/cgi-bin/webhook/send")
                    if r.query.get("key") == HOOK
                ]

            # the lead speaks in another chat: nobody has spoken to the bot in the alliance's group yet
            added = await stack.ask("/活动 添加 讲座 2030-12-05 15:00 盾构施工新技术", user=ALLIANCE_LEAD)
            assert "已添加活动 #1" in added
            async def announced() -> list[str]:
                return hooked()

            (first,) = await until(announced, within=10, what="the announcement through the group's webhook")
            assert "盾构施工新技术" in first and "/报名 1" in first  # text with the typed command: no card
            assert stack.fake.pushes(QUIET) == []

            # someone speaks to the bot in that group: the next announcement is pushed there, as a card
            await stack.ask("/帮助", user=ASKER, chat_id=QUIET)
            assert "已添加活动 #2" in await stack.ask(
                "/活动 添加 讲座 2030-12-06 15:00 隧道防水新工艺", user=ALLIANCE_LEAD
            )
            pushed = await stack.fake.wait_for(
                lambda: [p for p in stack.fake.pushes(QUIET) if "template_card" in p.body],
                what="the announcement pushed into the group",
            )
            assert "隧道防水新工艺" in str(pushed[0].body["template_card"])
            assert len(hooked()) == 1  # not also through the webhook
    finally:
        await api.close()


async def test_a_chat_without_a_webhook_is_still_pushed(database_url: str, tmp_path: Path) -> None:
    """A plain chat id (the roster format before pairs) keeps today's behaviour: the push is tried."""
    async with ws_stack(database_url) as stack:
        await stack.bot.store.studios.import_roster(load_roster(roster_with(tmp_path, [QUIET])))
        await online(stack)
        assert "已添加活动 #1" in await stack.ask(
            "/活动 添加 讲座 2030-12-05 15:00 盾构施工新技术", user=ALLIANCE_LEAD
        )
        await stack.fake.wait_for(lambda: stack.fake.pushes(QUIET), what="the push into the chat")


def test_a_chat_entry_is_checked_like_the_rest_of_the_roster(tmp_path: Path) -> None:
    with pytest.raises(RosterError) as refused:
        load_roster(roster_with(tmp_path, [{"id": QUIET, "hook": HOOK}]))  # a misspelt key
    assert "hook" in str(refused.value)
    roster = load_roster(roster_with(tmp_path, [{"id": QUIET, "webhook": HOOK}, "wr-plain"]))
    (tunnel,) = [a for a in roster.alliances if a.id == "tunnel"]
    assert tunnel.announce.stored()["chats"] == [{"id": QUIET, "webhook": HOOK}, "wr-plain"]
