"""Activity types of the alliance's calendar and reminder offsets: pure values shared by settings and features.

Kept free of imports from the rest of the bot so that ``bot.settings`` can validate the reminder settings
with the same parser the activities feature uses.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from enum import StrEnum


class ActivityType(StrEnum):
    """The kinds of meetings the charter knows; values are the Chinese names users type and read."""

    LECTURE = "讲座"
    ANNUAL = "年会"
    VISIT = "观摩"
    SEMINAR = "研讨"
    REVIEW = "评鉴"
    TRAINING = "培训"
    MEETING = "会议"

    @property
    def label(self) -> str:
        """The name shown to users (e.g. 讲座（大讲堂）)."""
        return _LABELS[self]

    @classmethod
    def parse(cls, word: str) -> ActivityType:
        """An activity type from its Chinese name, an English alias or a common Chinese synonym."""
        key = word.strip().lower()
        for kind, aliases in _ALIASES.items():
            if key == kind.value or key in aliases:
                return kind
        raise ValueError(word)


def types_named_in(text: str) -> set[ActivityType]:
    """The activity types a sentence mentions by any of their Chinese names (``明天大讲堂几点开始`` → 讲座)."""
    found: set[ActivityType] = set()
    for kind, aliases in _ALIASES.items():
        names = [kind.value, *(a for a in aliases if not a.isascii())]
        if any(name in text for name in names):
            found.add(kind)
    return found


_LABELS = {
    ActivityType.LECTURE: "讲座（大讲堂）",
    ActivityType.ANNUAL: "年会",
    ActivityType.VISIT: "现场观摩",
    ActivityType.SEMINAR: "研讨（大脑汇）",
    ActivityType.REVIEW: "评鉴团",
    ActivityType.TRAINING: "培训",
    ActivityType.MEETING: "会议",
}

_ALIASES: dict[ActivityType, tuple[str, ...]] = {
    ActivityType.LECTURE: ("lecture", "talk", "大讲堂", "讲堂", "讲座会"),
    ActivityType.ANNUAL: ("annual", "annual-meeting", "annual_meeting", "年度会议", "年度大会"),
    ActivityType.VISIT: ("visit", "site-visit", "site_visit", "现场观摩", "万里行", "观摩会"),
    ActivityType.SEMINAR: ("seminar", "brainstorm", "workshop", "大脑汇", "研讨会", "头脑风暴"),
    ActivityType.REVIEW: ("review", "evaluation", "panel", "评鉴团", "评审", "评鉴会"),
    ActivityType.TRAINING: ("training", "train", "培训班"),
    ActivityType.MEETING: ("meeting", "leads-meeting", "例会", "负责人会议"),
}

TYPE_NAMES = "、".join(t.value for t in ActivityType)

_DURATION = re.compile(r"^\s*(\d+)\s*(d|h|m|天|日|小时|时|分钟|分)\s*$", re.IGNORECASE)
_UNITS = {
    "d": timedelta(days=1),
    "天": timedelta(days=1),
    "日": timedelta(days=1),
    "h": timedelta(hours=1),
    "小时": timedelta(hours=1),
    "时": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "分钟": timedelta(minutes=1),
    "分": timedelta(minutes=1),
}


def parse_offsets(text: str) -> tuple[timedelta, ...]:
    """``"7d,1d,2h"`` → offsets before an activity, largest first; raises ``ValueError`` with an example."""
    offsets: set[timedelta] = set()
    for part in re.split(r"[,，、\s]+", text.strip()):
        if not part:
            continue
        match = _DURATION.match(part)
        if match is None or int(match.group(1)) == 0:
            raise ValueError(f"{part!r} is not a duration like 7d, 1d, 2h or 30m")
        offsets.add(int(match.group(1)) * _UNITS[match.group(2).lower()])
    if not offsets:
        raise ValueError("no reminder offsets given; write them like 7d,1d,2h")
    return tuple(sorted(offsets, reverse=True))


def parse_offsets_by_type(text: str) -> dict[ActivityType, tuple[timedelta, ...]]:
    """Per-type overrides: ``"年会=30d,7d,1d;讲座=1d,2h"`` or JSON ``{"年会": "30d,7d,1d"}``."""
    text = text.strip()
    if not text:
        return {}
    pairs: list[tuple[str, str]] = []
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ValueError('JSON must be an object like {"年会": "30d,7d,1d"}')
        for key, value in data.items():
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            pairs.append((str(key), str(value)))
    else:
        for chunk in re.split(r"[;；]", text):
            if not chunk.strip():
                continue
            key, sep, value = chunk.partition("=")
            if not sep:
                raise ValueError(f"{chunk.strip()!r} should look like 年会=30d,7d,1d")
            pairs.append((key.strip(), value))
    result: dict[ActivityType, tuple[timedelta, ...]] = {}
    for key, value in pairs:
        try:
            kind = ActivityType.parse(key)
        except ValueError:
            raise ValueError(f"unknown event type {key!r}; types are {TYPE_NAMES}") from None
        result[kind] = parse_offsets(value)
    return result


def offset_code(offset: timedelta) -> str:
    """A compact, stable code for an offset: ``7d``, ``2h``, ``90m``."""
    minutes = int(offset.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def offset_label(offset: timedelta) -> str:
    """An offset in Chinese: ``7天``, ``2小时``, ``30分钟``."""
    code = offset_code(offset)
    number, unit = code[:-1], code[-1]
    return number + {"d": "天", "h": "小时", "m": "分钟"}[unit]


def duration_label(delta: timedelta) -> str:
    """A rough remaining time in Chinese: ``约7天``, ``约2小时``, ``约15分钟``."""
    seconds = max(delta.total_seconds(), 0)
    if seconds >= 23.5 * 3600:
        return f"约{round(seconds / 86400)}天"
    if seconds >= 90 * 60:
        return f"约{round(seconds / 3600)}小时"
    return f"约{max(round(seconds / 60), 1)}分钟"
