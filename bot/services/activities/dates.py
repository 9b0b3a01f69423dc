"""Parse natural Chinese date/time phrases, e.g. ``下周三下午3点`` or ``12月5日 9:30``.

Pure functions only: the caller injects ``now`` (timezone-aware) and every phrase is read in
``now.tzinfo``.  Conventions, chosen so that announcements are read the way people mean them:

* Weeks are calendar weeks, Monday to Sunday.  ``本周三``/``这周三`` is the Wednesday of the current
  week (possibly in the past, hence refused), ``下周三`` the Wednesday of the following week and
  ``下下周三`` the one after that.  So on a Sunday ``下周三`` is three days later, and on a Monday it
  is nine days later.
* A bare ``周三`` is the next Wednesday that is not in the past: today when today is a Wednesday and
  the time is still ahead, otherwise within the next seven days.  A Chinese weekday may be followed
  directly by a time (``下周三15点``, ``周五9点``); an Arabic one may not (``周15点`` is not read).
* Dates without a year (``1月5日``) roll to next year when the day is already past; ``5号`` rolls to
  next month.  A day that is today but whose time has passed is refused as being in the past.
* ``月底``/``月末`` is the last day of this month and ``月初`` the first day of a month, each the next
  one not in the past (``月初`` on the 3rd is the 1st of next month); ``本月底`` is this month's last
  day and ``下月初``/``下个月初``/``下个月底`` the first/last day of next month.  The fixed holidays
  ``元旦`` (1 January), ``五一``/``劳动节`` (1 May) and ``国庆``/``国庆节`` (1 October) are their next
  occurrence not in the past.  Lunar holidays (``春节``, ``中秋``...) and ``清明`` are refused with advice
  to write the Gregorian date.
* A time without a date means today; it is never silently moved to tomorrow.
* ``N点`` without a period word and with 1 <= N <= 6 means the afternoon (``3点`` -> 15:00): activities
  of this bot do not happen at 3 a.m., write ``凌晨3点`` or ``03:00`` for that.  ``HH:MM`` is always
  read as a 24-hour clock.
* ``晚上12点`` is midnight at the end of that evening (00:00 of the next day); ``晚上1点``-``4点`` are
  refused as ambiguous.
* A period word without an hour (``明天下午``, ``今晚``) takes its default from ``PERIOD_DEFAULTS``
  (早上 8:00, 上午 9:00, 中午 12:00, 下午 14:30, 晚上 19:00; synonyms such as 早晨/午后/夜里 take
  their key's), which callers may override with ``period_defaults``.  ``WhenMatch.defaulted`` then
  holds a note for the user (「下午未写几点，按 14:30」) and ``has_time`` is True: it is False only
  for a date without any time of day, when ``default_hour`` is used.  ``凌晨`` and ``傍晚`` have no
  default and are refused without an hour.
* A range ``START到END`` (also 至, ``-``, ``~``, ``—``; ``下午2-4点``) sets ``WhenMatch.end``.  The end
  takes the start's period unless it names its own (``下午2点到4点`` is 14:00-16:00, ``3点到5点``
  15:00-17:00, ``上午10点到下午2点`` 10:00-14:00) and must be later on the same day; midnight at
  the end of it (``晚上8点到12点``) is allowed.
* Full-width digits and punctuation (``１５：００``), Chinese numerals (``十五点``, ``三点半``,
  ``九点一刻``) and spaces between the parts (``明天 下午 3 点``) read as their plain forms.
* ``下个月`` alone is the same day of next month, clamped to that month's last day.
* ``M/D`` and ``M-D`` are only read as dates when a time follows or nothing else does; ``M.D`` only
  when a time follows.  After a date or a period word, ``9.30`` is a time (a dot for 点).
* ``N号`` directly followed by a place word (``3号线``, ``2号楼``, ``1号会议室``) is not a date.
* An explicit weekday after a date (``12月5日（周六）``) must match the date.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from types import MappingProxyType
from typing import Literal

__all__ = [
    "AFTERNOON_DEFAULT",
    "EARLY_MORNING_DEFAULT",
    "EVENING_DEFAULT",
    "MORNING_DEFAULT",
    "NOON_DEFAULT",
    "PERIOD_DEFAULTS",
    "WhenError",
    "WhenMatch",
    "format_when",
    "parse_span",
    "parse_when",
    "read_when",
    "split_when",
]

EXAMPLES = "下周三下午3点、明天14:00、明天9点到11点、12月5日 9:30、2026-12-05 09:30、周五晚上7点半"
_WEEKDAY_NAMES = "一二三四五六日"

# The time a period word stands for when no hour follows it (``明天下午`` -> 14:30).  Synonyms use the
# default of their key: 早晨/清晨/今早/明早 that of 早上, 午后 that of 下午, 晚间/夜里/今晚/明晚 that of 晚上.
# 凌晨 and 傍晚 have none: they still need an hour.
EARLY_MORNING_DEFAULT = time(8, 0)  # 早上
MORNING_DEFAULT = time(9, 0)  # 上午
NOON_DEFAULT = time(12, 0)  # 中午
AFTERNOON_DEFAULT = time(14, 30)  # 下午
EVENING_DEFAULT = time(19, 0)  # 晚上
PERIOD_DEFAULTS: Mapping[str, time] = MappingProxyType(
    {
        "早上": EARLY_MORNING_DEFAULT,
        "上午": MORNING_DEFAULT,
        "中午": NOON_DEFAULT,
        "下午": AFTERNOON_DEFAULT,
        "晚上": EVENING_DEFAULT,
    }
)


class WhenError(ValueError):
    """Raised with a helpful Simplified Chinese message (str(e)) that includes examples of phrases that work."""


@dataclass(slots=True, frozen=True)
class WhenMatch:
    """A time expression read from the start of a text, and what followed it."""

    start: datetime  # timezone-aware, in the tz of `now`
    consumed: str  # the exact text prefix (after leading whitespace) that was read as the time
    rest: str  # the remaining text, stripped
    has_time: bool  # False when the phrase had only a date (then the default hour was used)
    end: datetime | None = None  # for a range (``14:00-16:00``): its end, later on the same day
    # When a period word stood for its default time, a note for the user, e.g. 「下午未写几点，按 14:30」
    defaulted: str | None = None


def format_when(dt: datetime) -> str:
    """Render ``dt`` for an echo to users, e.g. ``2026年12月2日（星期三）15:00``."""
    return f"{dt.year}年{dt.month}月{dt.day}日（星期{_WEEKDAY_NAMES[dt.weekday()]}）{dt:%H:%M}"


def parse_when(
    text: str,
    *,
    now: datetime,
    default_hour: int = 9,
    allow_past: bool = False,
    period_defaults: Mapping[str, time] | None = None,
) -> datetime:
    """Read ``text``, which must be entirely a time expression, relative to the aware ``now``: its start.

    A range (``明天9点到11点``) is accepted and its start returned; ``parse_span`` also gives the end and
    ``read_when`` everything (the end and the default note).  ``period_defaults`` overrides some of
    ``PERIOD_DEFAULTS`` (keys 早上/上午/中午/下午/晚上).  Raises ``WhenError`` (with a Chinese message and
    examples) when the text is not readable, names an impossible date or time, or lies in the past
    (unless ``allow_past``).
    """
    return read_when(
        text, now=now, default_hour=default_hour, allow_past=allow_past, period_defaults=period_defaults
    ).start


def parse_span(
    text: str,
    *,
    now: datetime,
    default_hour: int = 9,
    allow_past: bool = False,
    period_defaults: Mapping[str, time] | None = None,
) -> tuple[datetime, datetime | None]:
    """Like ``parse_when``, but (start, end): end is None unless the text is a range (``14:00-16:00``)."""
    match = read_when(
        text, now=now, default_hour=default_hour, allow_past=allow_past, period_defaults=period_defaults
    )
    return match.start, match.end


def read_when(
    text: str,
    *,
    now: datetime,
    default_hour: int = 9,
    allow_past: bool = False,
    period_defaults: Mapping[str, time] | None = None,
) -> WhenMatch:
    """Like ``parse_when``, but the whole ``WhenMatch`` (``rest`` is always empty)."""
    reading = _read_text(text, now, default_hour, period_defaults, "看不懂时间")
    rest = _clean_rest(text[reading.end :])
    if rest:
        raise _fail(f"时间「{text.strip()}」里的「{rest}」看不懂")
    _check_future(reading.start, now, allow_past)
    return _match(text, reading)


def split_when(
    text: str,
    *,
    now: datetime,
    default_hour: int = 9,
    allow_past: bool = False,
    period_defaults: Mapping[str, time] | None = None,
) -> WhenMatch:
    """Read the longest prefix of ``text`` that is a time expression, for commands like ``WHEN TITLE``.

    ``rest`` is the remaining text with surrounding whitespace and a leading separator (``，,、;；：``)
    removed.  Raises ``WhenError`` when no prefix is a time expression or the time read is invalid or
    in the past (unless ``allow_past``).  ``period_defaults`` is as for ``parse_when``.
    """
    reading = _read_text(text, now, default_hour, period_defaults, "开头没有找到时间：")
    _check_future(reading.start, now, allow_past)
    return _match(text, reading)


# --------------------------------------------------------------------------- helpers


def _read_text(
    text: str, now: datetime, default_hour: int, period_defaults: Mapping[str, time] | None, unreadable: str
) -> _Reading:
    tz, defaults = _check_args(now, default_hour, period_defaults)
    s = _normalise(text)
    if not s.strip():
        raise _fail("没有写时间")
    reading = _read(s, now, tz, default_hour, defaults)
    if reading is None:
        raise _fail(f"{unreadable}「{text.strip()}」")
    return reading


def _match(text: str, reading: _Reading) -> WhenMatch:
    return WhenMatch(
        start=reading.start,
        consumed=text[reading.begin : reading.end],
        rest=_clean_rest(text[reading.end :]),
        has_time=reading.has_time,
        end=reading.until,
        defaulted=reading.note,
    )


def _fail(reason: str) -> WhenError:
    return WhenError(f"{reason}。可以这样写：{EXAMPLES}。")


def _check_args(
    now: datetime, default_hour: int, period_defaults: Mapping[str, time] | None
) -> tuple[tzinfo, Mapping[str, time]]:
    tz = now.tzinfo
    if tz is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not 0 <= default_hour <= 23:
        raise ValueError(f"default_hour must be 0..23, not {default_hour}")
    if not period_defaults:
        return tz, PERIOD_DEFAULTS
    if unknown := set(period_defaults) - set(PERIOD_DEFAULTS):
        raise ValueError(
            f"period_defaults keys must be among {sorted(PERIOD_DEFAULTS)}, not {sorted(unknown)}"
        )
    if not all(isinstance(t, time) and t.tzinfo is None for t in period_defaults.values()):
        raise ValueError("period_defaults values must be naive datetime.time objects")
    return tz, {**PERIOD_DEFAULTS, **period_defaults}


def _check_future(start: datetime, now: datetime, allow_past: bool) -> None:
    if not allow_past and start < now:
        raise _fail(
            f"这个时间已经过去了：{format_when(start)}（现在是{format_when(now)}），请换一个将来的时间"
        )


# Full-width ASCII (incl. the full-width colon and parentheses) and the ideographic space become
# their ASCII forms.  The mapping is one character to one character, so offsets stay valid.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _normalise(text: str) -> str:
    return text.translate(_FULLWIDTH)


def _clean_rest(rest: str) -> str:
    return rest.strip().lstrip("，,、;；:：").strip()


_CN_DIGITS = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_N = r"[0-9]+|[零〇一二两三四五六七八九十]+"


def _to_int(token: str) -> int | None:
    """An Arabic or Chinese numeral (``23``, ``二十三``, ``十``, ``两``, ``二〇二六``, ``零五``); None if malformed.

    Chinese digit strings without 十 are only read as years (four digits) or with a leading zero
    (``零五`` minutes): ``两三点`` means "two or three o'clock", not 23:00.
    """
    if token.isascii():
        return int(token)
    if "两" in token and token != "两":
        return None
    if "十" in token:
        tens_part, _, ones_part = token.partition("十")
        if len(tens_part) > 1 or len(ones_part) > 1 or "十" in ones_part:
            return None
        tens = _CN_DIGITS[tens_part] if tens_part else 1
        if tens == 0:
            return None
        return tens * 10 + (_CN_DIGITS[ones_part] if ones_part else 0)
    if len(token) not in (1, 4) and not (len(token) == 2 and token[0] in "零〇"):
        return None
    value = 0
    for ch in token:
        value = value * 10 + _CN_DIGITS[ch]
    return value


def _num(token: str) -> int:
    value = _to_int(token)
    if value is None:
        raise _fail(f"看不懂数字「{token}」")
    return value


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i].isspace():
        i += 1
    return i


_JOINER_RE = re.compile(r"\s*(?:的\s*)?")


def _skip_joiner(s: str, i: int) -> int:
    m = _JOINER_RE.match(s, i)
    assert m is not None  # the pattern matches the empty string
    return m.end()


def _make_date(year: int, month: int, day: int) -> date:
    if not 1 <= month <= 12:
        raise _fail(f"没有{month}月，月份应在1到12之间")
    try:
        return date(year, month, day)
    except ValueError:
        leap = "（不是闰年）" if (month, day) == (2, 29) else ""
        raise _fail(f"{year}年{month}月没有{day}日{leap}") from None


def _check_month_day(month: int, day: int) -> None:
    """Validate a date without a year (February 29 is allowed here; the year is checked later)."""
    if not 1 <= month <= 12:
        raise _fail(f"没有{month}月，月份应在1到12之间")
    if not 1 <= day <= _month_end(2000, month):
        raise _fail(f"{month}月没有{day}日")


def _add_months(d: date, months: int) -> tuple[int, int]:
    index = d.year * 12 + d.month - 1 + months
    return index // 12, index % 12 + 1


def _month_end(year: int, month: int) -> int:
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return (first_of_next - timedelta(days=1)).day


# --------------------------------------------------------------------------- time of day

_PeriodKind = Literal["am", "dawn", "noon", "pm", "night"]
_PERIODS: dict[str, _PeriodKind] = {
    "凌晨": "dawn",
    "清晨": "am",
    "早晨": "am",
    "早上": "am",
    "上午": "am",
    "中午": "noon",
    "正午": "noon",
    "下午": "pm",
    "午后": "pm",
    "傍晚": "pm",
    "晚上": "night",
    "晚间": "night",
    "夜里": "night",
    "夜间": "night",
}
# One-character periods are only read when a clock follows (``晚8点``), so ``早会`` stays a title.
_SHORT_PERIODS: dict[str, _PeriodKind] = {"早": "am", "晚": "night"}
_PERIOD_RE = re.compile("|".join(sorted(_PERIODS, key=len, reverse=True)))
# Which entry of PERIOD_DEFAULTS a period word (or a day word implying one, 今晚) takes without an hour.
_DEFAULT_KEY = {
    "清晨": "早上",
    "早晨": "早上",
    "早上": "早上",
    "今早": "早上",
    "今晨": "早上",
    "明早": "早上",
    "明晨": "早上",
    "上午": "上午",
    "中午": "中午",
    "正午": "中午",
    "下午": "下午",
    "午后": "下午",
    "晚上": "晚上",
    "晚间": "晚上",
    "夜里": "晚上",
    "夜间": "晚上",
    "今晚": "晚上",
    "今夜": "晚上",
    "明晚": "晚上",
}
# Periods without a default still need an hour; the refusal shows one that fits them.
_HOUR_EXAMPLES = {"凌晨": "凌晨5点", "傍晚": "傍晚6点"}
_SHORT_PERIOD_RE = re.compile("|".join(_SHORT_PERIODS))

_COLON_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})(?![0-9])")
_DOT_RE = re.compile(r"([0-9]{1,2})\.([0-9]{2})(?![0-9])")
_HOUR_RE = re.compile(rf"({_N})\s*[点點时時](?:钟|鐘)?")
_HALF_RE = re.compile(r"半")
_QUARTER_RE = re.compile(r"([一二两三123])刻")
_MINUTE_RE = re.compile(rf"({_N})(?:\s*(分(?:钟)?))?")
_SHARP_RE = re.compile(r"整")
# Between the two ends of a range: 9点到11点, 下午2点至4点, 14:00-16:00, 14:00~16:30, 9:00—11:00.
_RANGE_SEP_RE = re.compile(r"\s*(?:到|至|~|〜|-|—{1,2}|–|―)\s*")
# The start of a range written once with 点: 下午2-4点, 9到11点.
_SHORT_RANGE_START_RE = re.compile(rf"({_N})(?={_RANGE_SEP_RE.pattern}(?:{_N})\s*[点點时時])")


@dataclass(slots=True, frozen=True)
class _Clock:
    end: int
    hour: int
    minute: int
    day_offset: int  # 1 for 晚上12点 (midnight at the end of that evening)
    defaulted: str | None = None  # the note when a period word alone stood for its default time
    until: tuple[int, int, int] | None = None  # the end of a range: (hour, minute, day_offset)


def _match_clock(s: str, i: int, dot_ok: bool, range_start: bool) -> tuple[int, int, int, bool, bool] | None:
    """``HH:MM``, ``N点[半|一刻|M分|整]`` or (if ``dot_ok``) ``H.MM``: (end, hour, minute, is_24h, bare).

    Unvalidated.  With ``range_start`` a bare ``N`` is read when a range ending in 点 follows (``2-4点``);
    then ``bare`` is True and the caller must read the end of the range too.
    """
    m = _COLON_RE.match(s, i)
    if m:
        return m.end(), int(m.group(1)), int(m.group(2)), True, False
    if dot_ok and (m := _DOT_RE.match(s, i)):
        # the informal "9.30" (a dot for 点); without a date or period before it, "9.30" could be a date
        return m.end(), int(m.group(1)), int(m.group(2)), False, False
    m = _HOUR_RE.match(s, i)
    if m is None:
        if (
            range_start
            and (m := _SHORT_RANGE_START_RE.match(s, i))
            and (hour := _to_int(m.group(1))) is not None
        ):
            return m.end(), hour, 0, False, True
        return None
    hour = _to_int(m.group(1))
    if hour is None:
        return None
    end, minute = m.end(), 0
    k = _skip_ws(s, end)  # "9点 半", "9点 30分"; but after a space a bare number is not minutes ("9点 30人")
    if mm := _HALF_RE.match(s, k):
        end, minute = mm.end(), 30
    elif mm := _QUARTER_RE.match(s, k):
        end, minute = mm.end(), 15 * _num(mm.group(1))
    elif mm := _MINUTE_RE.match(s, k):
        token, unit = mm.group(1), mm.group(2)
        value = _to_int(token)
        # "3点5" is not a time people write; accept "3点05", "3点15", "三点零五", "三点五分".
        if value is not None and (unit or (len(token) >= 2 and k == end)):
            end, minute = mm.end(), value
    elif mm := _SHARP_RE.match(s, k):
        end = mm.end()
    return end, hour, minute, False, False


def _match_time(
    s: str,
    i: int,
    implied: tuple[_PeriodKind, str] | None,
    *,
    after_date: bool,
    defaults: Mapping[str, time],
    range_end: bool = False,
) -> _Clock | None:
    """A time of day (or a range) at ``s[i:]``, optionally after a period word; raises WhenError if invalid.

    With ``range_end`` (reading the end of a range) a period word alone is not a time and no further range
    is read.
    """
    period = implied
    period_end = i
    if period is None:
        if m := _PERIOD_RE.match(s, i):
            period, period_end = (_PERIODS[m.group()], m.group()), m.end()
        elif (m := _SHORT_PERIOD_RE.match(s, i)) and _match_clock(s, _skip_ws(s, m.end()), True, True):
            period, period_end = (_SHORT_PERIODS[m.group()], m.group()), m.end()
    dot_ok = after_date or period is not None
    clock = _match_clock(s, _skip_ws(s, period_end), dot_ok, not range_end)
    if clock is None:
        if period is None or range_end:
            return None
        word = period[1]
        if (key := _DEFAULT_KEY.get(word)) is None:
            raise _fail(f"「{word}」要写明几点，例如「{_HOUR_EXAMPLES.get(word, word + '9点')}」")
        t = defaults[key]
        note = f"{word}未写几点，按 {t.hour}:{t.minute:02d}"
        return _Clock(end=period_end, hour=t.hour, minute=t.minute, day_offset=0, defaulted=note)
    end, hour, minute, colon, bare = clock
    raw = s[i:end]
    if hour > 23:
        raise _fail(f"「{raw}」不成立：没有{hour}点，小时应在0到23之间")
    if minute > 59:
        raise _fail(f"「{raw}」不成立：没有{minute}分，分钟应在0到59之间")
    offset = 0
    inherited = period
    if period is None:
        if not colon and 1 <= hour <= 6:
            hour += 12  # "3点" at an activity means the afternoon; see the module docstring
            inherited = ("pm", "下午")  # ... and so does the end of "3点到5点"
    else:
        hour, offset = _apply_period(period, hour, raw)
    start = _Clock(end, hour, minute, offset)
    if range_end:
        return start
    return _with_range_end(s, i, start, inherited, bare=bare, dot_ok=dot_ok, defaults=defaults)


def _with_range_end(
    s: str,
    i: int,
    start: _Clock,
    inherited: tuple[_PeriodKind, str] | None,
    *,
    bare: bool,
    dot_ok: bool,
    defaults: Mapping[str, time],
) -> _Clock | None:
    """``start`` extended by the end of a range after it, if one follows (required when ``bare``).

    The end takes the period of the start unless it names its own (``下午2点到4点`` ends at 16:00,
    ``上午10点到下午2点`` at 14:00); it must be later on the same day, or midnight at its end.
    """
    sep = _RANGE_SEP_RE.match(s, start.end)
    if sep is None:
        return None if bare else start
    j = sep.end()
    own_period = _PERIOD_RE.match(s, j) or _SHORT_PERIOD_RE.match(s, j)
    stop = _match_time(
        s, j, None if own_period else inherited, after_date=dot_ok, defaults=defaults, range_end=True
    )
    if stop is None:
        return None if bare else start
    first = (start.day_offset, start.hour, start.minute)
    last = (stop.day_offset, stop.hour, stop.minute)
    if last <= first or (last[0] != first[0] and last != (first[0] + 1, 0, 0)):
        raise _fail(f"「{s[i : stop.end]}」不成立：结束时间要晚于开始时间，且不能跨天")
    return replace(start, end=stop.end, until=(stop.hour, stop.minute, stop.day_offset))


def _apply_period(period: tuple[_PeriodKind, str], hour: int, raw: str) -> tuple[int, int]:
    kind, word = period
    if kind == "am":
        if hour <= 12:
            return hour, 0
        raise _fail(f"「{raw}」前后矛盾：{word}只有0到12点，下午请写「下午{hour - 12}点」或「{hour}点」")
    if kind == "dawn":
        if hour == 12:
            return 0, 0
        if hour <= 6:
            return hour, 0
        raise _fail(f"「{raw}」前后矛盾：{word}是0到6点")
    if kind == "noon":
        if 1 <= hour <= 2:
            return hour + 12, 0
        if 11 <= hour <= 14:
            return hour, 0
        raise _fail(f"「{raw}」前后矛盾：{word}是11点到14点")
    if kind == "pm":
        if 1 <= hour <= 11:
            return hour + 12, 0
        if hour >= 12:
            return hour, 0
        raise _fail(f"「{raw}」前后矛盾：{word}没有0点")
    # night
    if 5 <= hour <= 11:
        return hour + 12, 0
    if hour >= 13:
        return hour, 0
    if hour in (0, 12):
        return 0, 1
    raise _fail(f"「{raw}」有歧义：半夜请写「凌晨{hour}点」，白天请写「{hour + 12}点」")


# --------------------------------------------------------------------------- dates

# "month_day" (1月5日), "day_of_month" (5号), "weekday" (a bare 周三), "month_end" (月底), "month_start"
# (月初), "holiday" (元旦: month and day).  The last four roll to their next occurrence when in the past.
_DateKind = Literal["fixed", "month_day", "day_of_month", "weekday", "month_end", "month_start", "holiday"]
_ROLLING_KINDS = frozenset({"weekday", "month_end", "month_start", "holiday"})


@dataclass(slots=True, frozen=True)
class _DateSpec:
    kind: _DateKind
    fixed: date | None = None  # kind == "fixed"
    month: int = 0  # kinds "month_day" and "holiday"
    day: int = 0  # kinds "month_day", "day_of_month" and "holiday"
    weekday: int = 0  # kind == "weekday": 0 = Monday
    check_weekday: int | None = None  # an explicit weekday written after the date, e.g. （周六）


@dataclass(slots=True, frozen=True)
class _DateHit:
    end: int
    spec: _DateSpec | None = None
    instant: datetime | None = None  # for "N小时后": a complete point in time
    period: tuple[_PeriodKind, str] | None = None  # implied by 今晚/明早/...


_DAY_WORDS: dict[str, tuple[int, tuple[_PeriodKind, str] | None]] = {
    "大后天": (3, None),
    "后天": (2, None),
    "明天": (1, None),
    "明日": (1, None),
    "明儿": (1, None),
    "今天": (0, None),
    "今日": (0, None),
    "今儿": (0, None),
    "昨天": (-1, None),
    "前天": (-2, None),
    "今晚": (0, ("night", "今晚")),
    "今夜": (0, ("night", "今夜")),
    "今早": (0, ("am", "今早")),
    "今晨": (0, ("am", "今晨")),
    "明早": (1, ("am", "明早")),
    "明晨": (1, ("am", "明晨")),
    "明晚": (1, ("night", "明晚")),
}
_DAY_WORD_RE = re.compile("|".join(sorted(_DAY_WORDS, key=len, reverse=True)))

_WEEK_WORD = r"(?:周|週|星期|礼拜|禮拜)"
_WEEKDAY_CHARS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAY_CHARS |= {str(n): n - 1 for n in range(1, 8)}
# A Chinese weekday may be followed directly by a clock ("周五9点"); an Arabic one may not ("周15点").
_WD = r"(?:[一二三四五六日天]|[1-7](?![0-9]))"
# "本/这/这个" this week, "下/下个" next, "下下/下下个" the one after, "上/上个" last week
_WEEK_MODIFIERS = {
    "本": 0,
    "这": 0,
    "这个": 0,
    "下": 1,
    "下个": 1,
    "下下": 2,
    "下下个": 2,
    "上": -1,
    "上个": -1,
}
_WEEKDAY_RE = re.compile(rf"(本|这个?|下下个?|下个?|上个?)?{_WEEK_WORD}({_WD})?")
_WEEKDAY_NOTE_RE = re.compile(rf"\s*(?:\(\s*{_WEEK_WORD}({_WD})\s*\)|{_WEEK_WORD}({_WD}))")

_ISO_RE = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})(?![0-9])")
_YEAR_MD_RE = re.compile(
    rf"(?:([0-9]{{4}}|[零〇一二三四五六七八九]{{4}})\s*年|(今年|明年|后年))\s*({_N})\s*月\s*({_N})(?:\s*([日号]))?"
)
_MD_RE = re.compile(rf"({_N})\s*月\s*({_N})(?:\s*([日号]))?")
_MONTH_DAY_RE = re.compile(rf"(下下个?月|下个?月|本月|这个?月)(?:\s*({_N})\s*([日号])|\s*(初|底|末))?")
_MONTH_EDGE_RE = re.compile(r"月(初|底|末)")
# Holidays on a fixed day of the Gregorian calendar: (month, day).
_HOLIDAYS = {
    "元旦": (1, 1),
    "五一劳动节": (5, 1),
    "五一": (5, 1),
    "劳动节": (5, 1),
    "国庆节": (10, 1),
    "国庆": (10, 1),
}
_HOLIDAY_RE = re.compile("|".join(sorted(_HOLIDAYS, key=len, reverse=True)))
# Lunar holidays (and 清明, a solar term) move in the Gregorian calendar; they are refused with advice.
_MOVING_HOLIDAYS = ("春节", "除夕", "元宵", "清明", "端午", "七夕", "中秋", "重阳", "腊八", "小年")
_MOVING_HOLIDAY_RE = re.compile(rf"(?:{'|'.join(_MOVING_HOLIDAYS)})节?")
_DOM_RE = re.compile(rf"({_N})\s*([日号])")
_SLASH_MD_RE = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})(?![0-9])")
_RELATIVE_RE = re.compile(rf"(?:({_N})\s*个?|(半)个?)\s*(天|周|星期|礼拜|小时|钟头|分钟)\s*(?:以后|之后|后)")
# After "N号" these mean a line, building, room...: "3号线", "2号楼", "1号会议室" are not dates.
_PLACE_AFTER_HAO = set("线楼门厅室馆院房位台站口车机道桥洞井标段区栋库场坑")


def _hao_is_place(s: str, suffix: str | None, end: int) -> bool:
    return suffix == "号" and end < len(s) and s[end] in _PLACE_AFTER_HAO


def _match_date(s: str, i: int, now: datetime, tz: tzinfo) -> _DateHit | None:
    """A date (or a relative instant) at ``s[i:]``; raises WhenError when it names an impossible day."""
    today = now.date()
    hit = _match_date_core(s, i, now, today, tz)
    if hit is None or hit.spec is None or hit.spec.kind == "weekday":
        return hit
    if note := _WEEKDAY_NOTE_RE.match(s, hit.end):
        wd = _WEEKDAY_CHARS[note.group(1) or note.group(2)]
        return replace(hit, end=note.end(), spec=replace(hit.spec, check_weekday=wd))
    return hit


def _match_date_core(s: str, i: int, now: datetime, today: date, tz: tzinfo) -> _DateHit | None:
    if m := _ISO_RE.match(s, i):
        d = _make_date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
        return _DateHit(m.end(), _DateSpec("fixed", fixed=d))

    if (m := _YEAR_MD_RE.match(s, i)) and not _hao_is_place(s, m.group(5), m.end()):
        if m.group(1):
            year = _num(m.group(1))
        else:
            year = today.year + {"今年": 0, "明年": 1, "后年": 2}[m.group(2)]
        d = _make_date(year, _num(m.group(3)), _num(m.group(4)))
        return _DateHit(m.end(), _DateSpec("fixed", fixed=d))

    if (m := _MD_RE.match(s, i)) and not _hao_is_place(s, m.group(3), m.end()):
        month, day = _num(m.group(1)), _num(m.group(2))
        _check_month_day(month, day)
        return _DateHit(m.end(), _DateSpec("month_day", month=month, day=day))

    if m := _MONTH_DAY_RE.match(s, i):
        word = m.group(1)
        months = 2 if word.startswith("下下") else 1 if word.startswith("下") else 0
        year, month = _add_months(today, months)
        if edge := m.group(4):
            d = date(year, month, 1 if edge == "初" else _month_end(year, month))
            return _DateHit(m.end(), _DateSpec("fixed", fixed=d))
        if m.group(2) is None:
            if months == 0:
                raise _fail(f"「{word}」要写明几号，例如「{word}15号」")
            d = date(year, month, min(today.day, _month_end(year, month)))
            return _DateHit(m.end(), _DateSpec("fixed", fixed=d))
        if _hao_is_place(s, m.group(3), m.end()):
            return None
        d = _make_date(year, month, _num(m.group(2)))
        return _DateHit(m.end(), _DateSpec("fixed", fixed=d))

    if m := _MONTH_EDGE_RE.match(s, i):
        return _DateHit(m.end(), _DateSpec("month_start" if m.group(1) == "初" else "month_end"))

    if m := _HOLIDAY_RE.match(s, i):
        month, day = _HOLIDAYS[m.group()]
        return _DateHit(m.end(), _DateSpec("holiday", month=month, day=day))

    if m := _MOVING_HOLIDAY_RE.match(s, i):
        raise _fail(f"「{m.group()}」每年的公历日期不同，暂时认不出，请直接写公历日期，例如「2月6日上午9点」")

    if m := _DAY_WORD_RE.match(s, i):
        days, period = _DAY_WORDS[m.group()]
        return _DateHit(m.end(), _DateSpec("fixed", fixed=today + timedelta(days=days)), period=period)

    if m := _WEEKDAY_RE.match(s, i):
        modifier, wd_char = m.group(1), m.group(2)
        if wd_char is None:
            if modifier is None:
                return None  # "周会", "周年庆": not a date
            raise _fail(f"「{m.group()}」要写明星期几，例如「{m.group()}三」")
        wd = _WEEKDAY_CHARS[wd_char]
        if modifier is None:
            return _DateHit(m.end(), _DateSpec("weekday", weekday=wd))
        monday = today - timedelta(days=today.weekday())
        d = monday + timedelta(weeks=_WEEK_MODIFIERS[modifier], days=wd)
        return _DateHit(m.end(), _DateSpec("fixed", fixed=d))

    if m := _RELATIVE_RE.match(s, i):
        unit = m.group(3)
        count = 0.5 if m.group(2) else _num(m.group(1))
        if unit in ("天", "周", "星期", "礼拜"):
            if m.group(2):
                return None  # "半天后" is not a day
            days = int(count) * (1 if unit == "天" else 7)
            return _DateHit(m.end(), _DateSpec("fixed", fixed=today + timedelta(days=days)))
        minutes = count * (1 if unit == "分钟" else 60)
        instant = (now.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(tz)
        return _DateHit(m.end(), instant=instant.replace(second=0, microsecond=0))

    if (m := _DOM_RE.match(s, i)) and not _hao_is_place(s, m.group(2), m.end()):
        day = _num(m.group(1))
        if not 1 <= day <= 31:
            raise _fail(f"没有{day}号，日期应在1到31之间")
        return _DateHit(m.end(), _DateSpec("day_of_month", day=day))

    if m := _SLASH_MD_RE.match(s, i):
        # Only a date when a time follows or nothing does: "12/5 9:30", but not "3-5人".  With a dot
        # a time must follow: "9.30" alone is more likely half past nine than September 30th.
        after = _skip_joiner(s, m.end())
        if after == len(s):
            if m.group(2) == ".":
                return None
        elif _match_time(s, after, None, after_date=True, defaults=PERIOD_DEFAULTS) is None:
            return None
        month, day = int(m.group(1)), int(m.group(3))
        _check_month_day(month, day)
        return _DateHit(m.end(), _DateSpec("month_day", month=month, day=day))

    return None


def _resolve_date(spec: _DateSpec, today: date) -> date:
    """The calendar day a date spec names (for rolling kinds: the first candidate, today included)."""
    if spec.kind == "fixed":
        assert spec.fixed is not None
        return spec.fixed
    if spec.kind == "month_day":
        year = today.year + (1 if (spec.month, spec.day) < (today.month, today.day) else 0)
        return _make_date(year, spec.month, spec.day)
    if spec.kind == "day_of_month":
        year, month = _add_months(today, 1 if spec.day < today.day else 0)
        return _make_date(year, month, spec.day)
    if spec.kind == "month_end":
        return date(today.year, today.month, _month_end(today.year, today.month))
    if spec.kind == "month_start":
        return today if today.day == 1 else _next_occurrence(spec, today)
    if spec.kind == "holiday":
        year = today.year + (1 if (spec.month, spec.day) < (today.month, today.day) else 0)
        return date(year, spec.month, spec.day)
    return today + timedelta(days=(spec.weekday - today.weekday()) % 7)


def _next_occurrence(spec: _DateSpec, day: date) -> date:
    """For a rolling kind: the occurrence after ``day`` (used when the one on ``day`` is in the past)."""
    if spec.kind == "weekday":
        return day + timedelta(days=7)
    year, month = _add_months(day, 1)
    if spec.kind == "month_end":
        return date(year, month, _month_end(year, month))
    if spec.kind == "month_start":
        return date(year, month, 1)
    assert spec.kind == "holiday"
    return date(day.year + 1, spec.month, spec.day)


# --------------------------------------------------------------------------- the reader


@dataclass(slots=True, frozen=True)
class _Reading:
    begin: int
    end: int
    start: datetime
    has_time: bool
    until: datetime | None = None  # the end of a range
    note: str | None = None  # see WhenMatch.defaulted


def _read(
    s: str, now: datetime, tz: tzinfo, default_hour: int, defaults: Mapping[str, time]
) -> _Reading | None:
    """The longest time expression at the start of ``s``, or None."""
    begin = _skip_ws(s, 0)
    today = now.date()
    hit = _match_date(s, begin, now, tz)
    if hit is not None and hit.instant is not None:
        return _Reading(begin, hit.end, hit.instant, True)
    if hit is not None:
        # a bare 今晚/明早 takes the period's default (or raises for one without, e.g. 凌晨)
        clock = _match_time(s, _skip_joiner(s, hit.end), hit.period, after_date=True, defaults=defaults)
        spec = hit.spec
        if clock is not None and clock.defaulted and hit.period is not None:
            end = hit.end  # 今晚 alone: the period is in the day word, nothing after it was read
        else:
            end = clock.end if clock else hit.end
    else:
        clock = _match_time(s, begin, None, after_date=False, defaults=defaults)
        if clock is None:
            return None
        spec = _DateSpec("fixed", fixed=today)
        end = clock.end
    assert spec is not None

    hour, minute, offset = (clock.hour, clock.minute, clock.day_offset) if clock else (default_hour, 0, 0)
    day = _resolve_date(spec, today)
    if spec.check_weekday is not None and day.weekday() != spec.check_weekday:
        raise _fail(
            f"日期和星期对不上：{day.year}年{day.month}月{day.day}日是星期{_WEEKDAY_NAMES[day.weekday()]}，"
            f"不是星期{_WEEKDAY_NAMES[spec.check_weekday]}"
        )
    if spec.kind in _ROLLING_KINDS and _at(day + timedelta(days=offset), hour, minute, tz) < now:
        day = _next_occurrence(spec, day)
    start = _at(day + timedelta(days=offset), hour, minute, tz)
    if clock is None:
        return _Reading(begin, end, start, False)
    until = None
    if clock.until is not None:
        until_hour, until_minute, until_offset = clock.until
        until = _at(day + timedelta(days=until_offset), until_hour, until_minute, tz)
    return _Reading(begin, end, start, True, until, clock.defaulted)


def _at(day: date, hour: int, minute: int, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
