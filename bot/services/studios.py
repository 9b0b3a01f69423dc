"""The roster file (YAML): parsing and validation. The format is a contract other tools rely on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.dispatcher import Caller, Role
from bot.store.studios import KeptStars, Studio

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


class AnnounceChat(_Strict):
    """An AI-bot group chat with the group robot webhook of the same group: WeCom lets the bot push only into
    a chat where someone has spoken to it, so until then announcements go through the webhook."""

    id: NonEmpty
    webhook: NonEmpty | None = None


class Announce(_Strict):
    """Where announcements for an alliance go."""

    webhooks: list[NonEmpty] = Field(default_factory=list)
    appchats: list[NonEmpty] = Field(default_factory=list)
    # the AI bot's group chat ids (long connection): a plain id, or {id, webhook} with the group's robot key
    chats: list[NonEmpty | AnnounceChat] = Field(default_factory=list)

    def stored(self) -> dict[str, list[str]]:
        """What the alliance row keeps: ``chats`` only when given, so rosters without it read as before."""
        return self.model_dump(exclude={"chats"} if not self.chats else set(), exclude_none=True)


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
    return parse_roster_text(text)


def parse_roster_text(text: str) -> Roster:
    """Validate a roster given as YAML text (a file's content, an upload)."""
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
    """Names for user ids, from the roster (studio and alliance leads) and members, then WeCom's directory
    (``store.directory``, where the app is configured); the id otherwise."""
    names = await roster_names(store)
    for user_id in user_ids:
        if user_id not in names:
            member = await store.members.get(user_id)
            if member is not None and member.name:
                names[user_id] = member.name
    unnamed = [u for u in user_ids if u not in names]
    if unnamed and store.directory is not None:
        names.update(await store.directory.names(unnamed))
    return {u: names.get(u, u) for u in user_ids}


# -- edits from the web console ----------------------------------------------------------------------

EDITABLE_FIELDS = ("name", "unit", "type", "stars", "lead_name", "lead_userid", "expertise", "description")


def studio_edit_refusal(caller: Caller, studio: Studio) -> str | None:
    """Why ``caller`` may not edit ``studio`` (None: they may): an admin, or a lead of the studio's alliance."""
    if caller.at_least(Role.ADMIN):
        return None
    if caller.at_least(Role.ALLIANCE_LEAD) and studio.alliance_id in caller.alliances:
        return None
    return "只有管理员或本联盟负责人可以修改工作室信息。"


def roster_import_refusal(caller: Caller) -> str | None:
    """Why ``caller`` may not import a roster (None: they may): admins only, as ``alliance-bot studios import``."""
    return None if caller.at_least(Role.ADMIN) else "只有管理员可以导入花名册。"


def studio_values(studio: Studio) -> dict[str, Any]:
    """A studio's editable fields."""
    return {name: getattr(studio, name) for name in EDITABLE_FIELDS}


async def edit_studio(
    store: Store, studio: Studio, form: dict[str, str], *, actor: str, source: str = "console"
) -> dict[str, tuple[Any, Any]]:
    """Validate ``form`` (text fields; expertise separated by 、or commas) as the roster would, store the change
    and its audit entry in one transaction; returns the changed fields. Raises ``RosterError`` (Chinese)."""
    from bot.store.audit import AuditRepo, changed_fields
    from bot.store.engine import unit_of_work
    from bot.store.evaluations import EDIT_ORIGIN, EvaluationRepo, StarChange

    before = studio_values(studio)
    raw = {**before, **{k: v.strip() for k, v in form.items() if k in EDITABLE_FIELDS}}
    expertise = raw["expertise"]
    if isinstance(expertise, str):
        expertise = [w.strip() for w in re.split(r"[、,，;；\n]", expertise) if w.strip()]
    stars: Any = raw["stars"]
    if isinstance(stars, str):
        stars = int(stars) if stars.isdigit() else stars
    entry = {
        "id": studio.id,
        "name": raw["name"],
        "alliance": studio.alliance_id,
        "unit": raw["unit"],
        "type": raw["type"],
        "stars": stars,
        "lead": {"name": raw["lead_name"], "wecom_userid": raw["lead_userid"]},
        "expertise": expertise,
        "description": raw["description"],
    }
    try:
        valid = StudioEntry.model_validate(entry)
    except ValidationError as exc:
        problems = [f"{_label(e['loc'])}：{_describe(e)}" for e in exc.errors()]
        raise RosterError("工作室信息有误，未保存：" + "；".join(problems)) from None
    after = {
        "name": valid.name,
        "unit": valid.unit,
        "type": valid.type,
        "stars": valid.stars,
        "lead_name": valid.lead.name,
        "lead_userid": valid.lead.wecom_userid,
        "expertise": list(valid.expertise),
        "description": valid.description,
    }
    changed = changed_fields(before, after)
    if not changed:
        return {}
    async with unit_of_work(store.engine):
        await store.studios.update(studio.id, after)
        if "stars" in changed:  # in the studio's record, as a round's or a roster's change would be
            await EvaluationRepo(store.sessions).save(
                [
                    StarChange(
                        studio_id=studio.id,
                        before=before["stars"],
                        after=valid.stars,
                        round_id=None,
                        actor=actor,
                        origin=EDIT_ORIGIN,
                    )
                ]
            )
        await AuditRepo(store.sessions).record(
            entity="studio",
            entity_id=studio.id,
            action="edit",
            actor=actor,
            source=source,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return changed


@dataclass(slots=True, frozen=True)
class RosterPreview:
    """What importing a roster would change, shown before it is applied."""

    new_alliances: list[str]
    changed_alliances: list[str]
    new_studios: list[str]
    changed_studios: dict[str, list[str]]  # studio id → the fields that would change
    unchanged: int
    kept_stars: dict[str, KeptStars] = field(default_factory=dict)  # stars a round set, the roster differs


def kept_stars_text(kept: KeptStars) -> str:
    """A studio keeping a round's stars, in Chinese: ``T2 钻爆法隧道工匠工作室：保留五星（评选 #1），名册为四星``."""
    from bot.services.evaluations import STAR_WORDS  # that module builds on this one

    def words(stars: int) -> str:
        return STAR_WORDS.get(stars, f"{stars} 星")

    return (
        f"{kept.studio_id} {kept.name}：保留{words(kept.stars)}（评选 #{kept.round_id}），"
        f"名册为{words(kept.roster)}"
    )


async def preview_roster(store: Store, roster: Roster) -> RosterPreview:
    """Compare a validated roster with the database, field by field (nothing is written)."""
    alliances = {a.id: a for a in await store.alliances.all()}
    studios = {s.id: s for s in await store.studios.all()}
    new_a, changed_a, new_s = [], [], []
    changed_s: dict[str, list[str]] = {}
    unchanged = 0
    differing = [e.id for e in roster.studios if e.id in studios and studios[e.id].stars != e.stars]
    rounds = await store.studios.round_stars(differing)
    kept: dict[str, KeptStars] = {}
    for entry in roster.alliances:
        current = alliances.get(entry.id)
        if current is None:
            new_a.append(entry.id)
        elif (
            current.name,
            current.lead_userid,
            current.lead_name,
            current.lead_since,
            current.announce,
        ) != (
            entry.name,
            entry.lead.wecom_userid if entry.lead else None,
            entry.lead.name if entry.lead else None,
            entry.lead_since,
            entry.announce.stored(),
        ):
            changed_a.append(entry.id)
        else:
            unchanged += 1
    for studio_entry in roster.studios:
        existing = studios.get(studio_entry.id)
        if existing is None:
            new_s.append(studio_entry.id)
            continue
        wanted = {
            "name": studio_entry.name,
            "alliance_id": studio_entry.alliance,
            "unit": studio_entry.unit,
            "type": studio_entry.type,
            "stars": studio_entry.stars,
            "lead_name": studio_entry.lead.name,
            "lead_userid": studio_entry.lead.wecom_userid,
            "expertise": list(studio_entry.expertise),
            "description": studio_entry.description,
        }
        if (round_id := rounds.get(existing.id)) is not None:
            wanted["stars"] = existing.stars  # kept unless the import is told the roster wins
            kept[existing.id] = KeptStars(existing.id, existing.name, existing.stars, studio_entry.stars, round_id)
        fields = [_FIELD_NAMES.get(k, k) for k, v in wanted.items() if getattr(existing, k) != v]
        if fields:
            changed_s[studio_entry.id] = fields
        else:
            unchanged += 1
    return RosterPreview(new_a, changed_a, new_s, changed_s, unchanged, kept)
