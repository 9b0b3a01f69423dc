"""Roster import: valid, invalid (naming studio and field, importing nothing), idempotent."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from bot.app import BotApp
from bot.services.studios import RosterError, load_roster, parse_roster
from tests.harness import EXAMPLE_ROSTER, Chat


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_ROSTER.read_text(encoding="utf-8"))


async def test_import_creates_then_is_idempotent(bot: BotApp) -> None:
    # the fixture imported the roster once already
    studios = await bot.store.studios.all()
    assert {s.id for s in studios} >= {"B1", "T1", "U1", "P1"}
    t1 = await bot.store.studios.get("T1")
    assert t1 is not None and t1.stars == 5 and t1.lead_userid == "chenjuejin"
    assert "盾构" in t1.expertise
    again = await bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
    assert (
        again.studios_created,
        again.studios_updated,
        again.alliances_created,
        again.alliances_updated,
    ) == (0, 0, 0, 0)
    assert again.unchanged == len(studios) + len(await bot.store.alliances.all())
    assert await bot.store.studios.count() == len(studios)


async def test_reimport_updates_changed_studio(bot: BotApp) -> None:
    data = example()
    data["studios"][0]["stars"] = 3
    data["studios"][0]["expertise"].append("新专长")
    result = await bot.store.studios.import_roster(parse_roster(data))
    assert result.studios_updated == 1 and result.studios_created == 0
    studio = await bot.store.studios.get(data["studios"][0]["id"])
    assert studio is not None and studio.stars == 3 and "新专长" in studio.expertise


async def test_alliance_lead_and_announce_are_stored(bot: BotApp) -> None:
    data = example()
    data["alliances"][1]["announce"] = {"webhooks": ["KEY1"], "appchats": ["CHAT1"]}
    await bot.store.studios.import_roster(parse_roster(data))
    tunnel = await bot.store.alliances.get("tunnel")
    assert tunnel is not None
    assert tunnel.lead_userid == "mushandong"
    assert tunnel.announce == {"webhooks": ["KEY1"], "appchats": ["CHAT1"]}
    assert str(tunnel.lead_since) == "2023-12-15"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["studios"][0].update(stars=6), ["工作室 B1", "星级", "3、4 或 5"]),
        (lambda d: d["studios"][1].update(type="研发型"), ["工作室 B2", "类型"]),
        (lambda d: d["studios"][2].pop("lead"), ["工作室 B3", "负责人", "缺少"]),
        (lambda d: d["studios"][3].update(alliance="nowhere"), ["工作室 T1", "所属联盟", "nowhere"]),
        (lambda d: d["studios"][4]["lead"].pop("wecom_userid"), ["工作室 T2", "wecom_userid"]),
        (lambda d: d["studios"][5].update(expertise=[]), ["工作室 T3", "专长", "不能为空"]),
        (lambda d: d["studios"][6].update(color="red"), ["工作室 U1", "color", "不认识"]),
        (lambda d: d["studios"].append(copy.deepcopy(d["studios"][0])), ["工作室 B1", "编号重复"]),
        (lambda d: d["alliances"][0].update(lead_since="去年"), ["联盟 bridge", "lead_since"]),
    ],
)
async def test_invalid_roster_names_studio_and_field_and_imports_nothing(
    bot: BotApp, mutate: Any, expected: list[str]
) -> None:
    before = await bot.store.studios.all()
    data = example()
    data["studios"][0]["name"] = "改过的名字"  # would be an update if anything were imported
    mutate(data)
    with pytest.raises(RosterError) as info:
        parse_roster(data)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, message
    assert "未导入" in message
    after = await bot.store.studios.all()
    assert [s.name for s in after] == [s.name for s in before]


def test_not_yaml_or_missing_sections(tmp_path: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("alliances: [\n", encoding="utf-8")
    with pytest.raises(RosterError, match="YAML"):
        load_roster(bad)
    with pytest.raises(RosterError, match="studios"):
        parse_roster({"alliances": []})
    with pytest.raises(RosterError, match="无法读取"):
        load_roster(tmp_path / "missing.yaml")


def test_shared_sample_roster_is_valid() -> None:
    from tests.harness import SHARED

    sample = SHARED / "samples" / "studios.yaml"
    if not sample.exists():
        pytest.skip("../shared/samples is not beside this checkout")
    roster = load_roster(sample)
    assert len(roster.studios) >= 10


async def test_the_studio_list_example_is_one_of_the_listed_studios(chat: Chat) -> None:
    power = await chat.say("someone", "/工作室 四电")
    assert power.splitlines()[-1] == "发送 /工作室 编号 查看详情，例如 /工作室 P1", power
