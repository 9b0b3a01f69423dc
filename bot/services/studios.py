"""The roster file (YAML): parsing and validation. The format is a contract other tools rely on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.store.studios import Studio

if TYPE_CHECKING:
    from bot.store import Store

STUDIO_TYPES = ("科技研发型", "管理创新型", "五小攻关型", "项目党建型", "海外经营型", "农民工管理型")

_FIELD_NAMES = {
    "id": "编号 id",
    "name": "名称 name",
    "alliance": "所属联盟 alliance",
    "unit": "单位 unit",
    "type": "类型 type",
    "stars": "星级 stars",
    "lead": "负责人 lead",
    "wecom_userid": "企业微信账号 wecom_userid",
    "expertise": "专长 expertise",
    "description": "简介 description",
    "announce": "通知渠道 announce",
    "lead_since": "牵头单位任期起始 lead_since",
}


class RosterError(ValueError):
    """A roster that cannot be imported; the message names the studio and field at fault (in Chinese)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


NonEmpty = Annotated[str, Field(min_length=1)]


class Person(_Strict):
    """A named person with a WeCom user id."""

    name: NonEmpty
    wecom_userid: NonEmpty


class Announce(_Strict):
    """Where announcements for an alliance go."""

    webhooks: list[NonEmpty] = Field(default_factory=list)
    appchats: list[NonEmpty] = Field(default_factory=list)


_ID = re.compile(r"^\w[\w.-]{0,63}$")


def _check_id(value: str) -> str:
    """Ids name files and URLs (``/calendar/ID.ics``, the report's file name): letters, digits, ``_ . -``."""
    if not _ID.match(value) or ".." in value:
        raise ValueError("编号 id 只能由字母、数字、汉字和 _ . - 组成（最长 64 个字符），例如 tunnel、T1")
    return value


class AllianceEntry(_Strict):
    """An alliance in the roster."""

    id: NonEmpty
    name: NonEmpty
    lead: Person | None = None
    lead_since: date | None = None
    announce: Announce = Field(default_factory=Announce)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id(value)


class StudioEntry(_Strict):
    """A studio in the roster."""

    id: NonEmpty
    name: NonEmpty
    alliance: NonEmpty
    unit: NonEmpty
    type: NonEmpty
    stars: int
    lead: Person
    expertise: list[NonEmpty] = Field(min_length=1)
    description: str = ""

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_id(value)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in STUDIO_TYPES:
            raise ValueError(f"类型必须是 {'、'.join(STUDIO_TYPES)} 之一")
        return value

    @field_validator("stars", mode="before")
    @classmethod
    def _star_rating(cls, value: Any) -> Any:
        if isinstance(value, bool) or value not in (3, 4, 5):
            raise ValueError("星级必须是 3、4 或 5")
        return value


class Roster(_Strict):
    """The whole roster file."""

    alliances: list[AllianceEntry]
    studios: list[StudioEntry]


def _describe(error: Any) -> str:
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    kind = error["type"]
    if kind == "missing":
        return "缺少此字段"
    if kind == "extra_forbidden":
        return "不认识的字段"
    if kind in ("string_too_short", "too_short"):
        return "不能为空"
    if kind.startswith(("int_", "string_type", "list_type", "date_")):
        return f"格式不对（{msg}）"
    return msg


def _label(loc: tuple[Any, ...]) -> str:
    names = [str(part) for part in loc if not isinstance(part, int)]
    if not names:
        return "条目"
    return " → ".join(_FIELD_NAMES.get(name, name) for name in names)


def parse_roster(data: Any) -> Roster:
    """Validate a roster mapping; raise ``RosterError`` naming every studio and field at fault."""
    if not isinstance(data, dict):
        raise RosterError("花名册格式错误：顶层应包含 alliances 和 studios 两个列表")
    problems: list[str] = []
    for section, model in (("alliances", AllianceEntry), ("studios", StudioEntry)):
        items = data.get(section)
        if not isinstance(items, list):
            problems.append(f"缺少 {section} 列表")
            continue
        for index, item in enumerate(items, start=1):
            who = f"{'联盟' if section == 'alliances' else '工作室'} #{index}"
            if isinstance(item, dict) and item.get("id"):
                who = f"{'联盟' if section == 'alliances' else '工作室'} {item['id']}"
            try:
                model.model_validate(item)
            except ValidationError as exc:
                for error in exc.errors():
                    problems.append(f"{who} 的字段 {_label(error['loc'])}：{_describe(error)}")
    extra = set(data) - {"alliances", "studios"}
    if extra:
        problems.append(f"不认识的顶层字段：{', '.join(sorted(map(str, extra)))}")
    if problems:
        raise RosterError("花名册有误，未导入任何数据：\n" + "\n".join(f"- {p}" for p in problems))
    roster = Roster.model_validate(data)
    _check_references(roster)
    return roster


def _check_references(roster: Roster) -> None:
    problems: list[str] = []
    alliance_ids = [a.id for a in roster.alliances]
    for dup in sorted({i for i in alliance_ids if alliance_ids.count(i) > 1}):
        problems.append(f"联盟 {dup} 的字段 {_FIELD_NAMES['id']}：编号重复")
    studio_ids = [s.id for s in roster.studios]
    for dup in sorted({i for i in studio_ids if studio_ids.count(i) > 1}):
        problems.append(f"工作室 {dup} 的字段 {_FIELD_NAMES['id']}：编号重复")
    for studio in roster.studios:
        if studio.alliance not in alliance_ids:
            problems.append(
                f"工作室 {studio.id} 的字段 {_FIELD_NAMES['alliance']}：联盟 {studio.alliance!r} 不在 alliances 中"
            )
    if problems:
        raise RosterError("花名册有误，未导入任何数据：\n" + "\n".join(f"- {p}" for p in problems))


# libyaml's safe loader parses a 161-studio roster about ten times faster than the pure-Python one
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_roster(path: str | Path) -> Roster:
    """Read and validate a roster YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RosterError(f"无法读取花名册文件 {path}：{exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # a safe loader (libyaml's when built in)
    except yaml.YAMLError as exc:
        raise RosterError(f"花名册不是有效的 YAML：{exc}") from None
    return parse_roster(data)


def studio_list(ids: Sequence[str], studios: dict[str, Studio]) -> str:
    """Studio names for ids (the id when unknown), joined with 、."""
    return "、".join(studios[i].name if i in studios else i for i in ids) or "—"


async def roster_names(store: Store) -> dict[str, str]:
    """The people the roster names (alliance and studio leads): user id → name."""
    names: dict[str, str] = {}
    for alliance in await store.alliances.all():
        if alliance.lead_userid and alliance.lead_name:
            names[alliance.lead_userid] = alliance.lead_name
    for studio in await store.studios.all():
        names.setdefault(studio.lead_userid, studio.lead_name)
    return names


async def display_names(store: Store, user_ids: Sequence[str]) -> dict[str, str]:
    """Names for user ids, from the roster (studio and alliance leads) and members; the id otherwise."""
    names = await roster_names(store)
    for user_id in user_ids:
        if user_id not in names:
            member = await store.members.get(user_id)
            if member is not None and member.name:
                names[user_id] = member.name
    return {u: names.get(u, u) for u in user_ids}
