"""Roster import: valid, invalid (naming studio and field, importing nothing), idempotent; stars an evaluation
round set are kept against the roster unless it is told otherwise, and every star change is in the history."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from bot.app import BotApp
from bot.services.studios import RosterError, kept_stars_text, load_roster, parse_roster, preview_roster
from bot.store.evaluations import EvaluationRepo
from bot.store.studios import KeptStars
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, Chat

TUNNEL_LEAD, T2_LEAD, B1_LEAD = "mushandong", "shibaopo", "zhanglali"


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


async def five_stars_by_a_round(chat: Chat) -> None:
    """Round #1 (星级工作室评定, the tunnel alliance) makes T2 a five-star studio; the example roster says four."""
    opened = await chat.say(TUNNEL_LEAD, "/评选 发起 星级 评委=张拉力 申报截止=11月30日 评分截止=12月5日")
    assert opened.startswith("已发起评选 #1"), opened
    assert "申报五星" in await chat.say(T2_LEAD, "/评选 申报 1 T2 五星")
    assert (await chat.say(B1_LEAD, "/评选 评分 1 1 90 90 90")).startswith("已评分")
    assert "1 个入选" in await chat.say(TUNNEL_LEAD, "/评选 结束 1")
    t2 = await chat.bot.store.studios.get("T2")
    assert t2 is not None and t2.stars == 5


def history_of(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [(h.studio_id, h.before, h.after, h.round_id, h.actor, h.origin) for h in rows]


async def test_roster_import_keeps_the_stars_a_round_set(chat: Chat) -> None:
    bot = chat.bot
    await five_stars_by_a_round(chat)
    data = example()
    t2 = next(s for s in data["studios"] if s["id"] == "T2")
    assert t2["stars"] == 4
    t2["description"] = "改过的简介"
    roster = parse_roster(data)
    preview = await preview_roster(bot.store, roster)
    kept = KeptStars("T2", "钻爆法隧道工匠工作室", 5, 4, 1)
    assert preview.kept_stars == {"T2": kept}
    assert preview.changed_studios["T2"] == ["简介 description"]  # not 星级: the round's stars stay
    assert kept_stars_text(kept) == "T2 钻爆法隧道工匠工作室：保留五星（评选 #1），名册为四星"

    result = await bot.store.studios.import_roster(roster)
    assert result.kept_stars == (kept,) and result.stars_changed == 0
    studio = await bot.store.studios.get("T2")
    assert studio is not None and studio.stars == 5 and studio.description == "改过的简介"
    repo = EvaluationRepo(bot.store.sessions)
    assert history_of(await repo.star_history("T2")) == [("T2", 4, 5, 1, TUNNEL_LEAD, "round")]
    again = await bot.store.studios.import_roster(roster)  # as often as it is imported
    assert again.kept_stars == (kept,) and again.studios_updated == 0

    # told that the roster wins: its stars apply, and the history says who, when and that a roster did it
    now = bot.runtime.clock.now()
    forced = await bot.store.studios.import_roster(roster, actor=ADMIN, override_stars=True, at=now)
    assert forced.kept_stars == () and forced.stars_changed == 1
    studio = await bot.store.studios.get("T2")
    assert studio is not None and studio.stars == 4
    history = await repo.star_history("T2")
    assert history_of(history)[-1] == ("T2", 5, 4, None, ADMIN, "roster")
    assert history[-1].at == now
    record = await chat.say(ADMIN, "/工作室 T2 档案")
    assert "五星→四星（名册导入，admin1）" in record and "四星→五星（评选 #1，" in record

    # the latest change is the roster's now: a roster saying otherwise is applied, no longer kept
    t2["stars"] = 5
    back = await bot.store.studios.import_roster(parse_roster(data))
    assert back.kept_stars == () and back.stars_changed == 1
    assert history_of(await repo.star_history("T2"))[-1] == ("T2", 4, 5, None, "cli", "roster")


async def test_every_star_change_of_a_roster_import_is_in_the_history(chat: Chat) -> None:
    bot = chat.bot
    data = example()
    t1 = next(s for s in data["studios"] if s["id"] == "T1")
    t1["stars"] = 3
    extra = copy.deepcopy(t1)
    extra.update(id="T9", name="新建测试工作室", stars=4)
    data["studios"].append(extra)
    result = await bot.store.studios.import_roster(parse_roster(data))
    assert result.stars_changed == 1 and result.kept_stars == () and result.studios_created == 1
    history = await EvaluationRepo(bot.store.sessions).star_history()
    assert history_of(history) == [("T1", 5, 3, None, "cli", "roster")]  # a new studio has no change
    record = await chat.say(ADMIN, "/工作室 T1 档案")
    assert "五星→三星（名册导入，cli）" in record, record
