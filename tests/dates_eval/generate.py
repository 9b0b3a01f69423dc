"""Write the frozen evaluation set of Chinese date phrases, ``tests/dates_eval/phrases.jsonl``.

    python tests/dates_eval/generate.py

Each phrase combines a date part (``下周三``, ``12月5日``, ``月底``...), a time part (``15点``, ``下午3点半``,
``14:00-16:00``, ``下午`` alone...), the spacing between them and a digit form (ASCII, full-width or
Chinese numerals), read at one of a few fixed clocks.  The expected start and end are computed here
from the components, by the conventions written in the docstring of ``bot/services/activities/dates.py``;
this script never imports the parser.  A phrase whose time lies in the past, or that is impossible
(``上午15点``, ``2月30日``, a range ending before it starts, a lunar holiday...), expects an error.

The output is committed and frozen: regenerating with the same seed gives the same file, and the test
``tests/test_dates_eval.py`` checks its checksum.  Do not edit it to make the parser look better.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent / "phrases.jsonl"
SEED = 20261124
VALID_LINES = 420  # phrases that read (or expect an error only for being in the past)

TZ = timezone(timedelta(hours=8))  # Asia/Shanghai has had no daylight saving time since 1991
NOWS = [
    datetime(2026, 11, 24, 10, 0, tzinfo=TZ),  # Tuesday morning
    datetime(2026, 11, 28, 15, 30, tzinfo=TZ),  # Saturday afternoon
    datetime(2026, 11, 30, 20, 0, tzinfo=TZ),  # Monday evening, the last day of November
    datetime(2026, 12, 20, 8, 0, tzinfo=TZ),  # Sunday, early
    datetime(2026, 12, 30, 10, 0, tzinfo=TZ),  # Wednesday, the year is about to end
    datetime(2027, 2, 26, 15, 0, tzinfo=TZ),  # Friday, February of a common year
    datetime(2027, 4, 29, 9, 0, tzinfo=TZ),  # Thursday, two days before 五一
    datetime(2027, 9, 30, 18, 0, tzinfo=TZ),  # Thursday evening, the day before 国庆
]

FORMS = ("ascii", "fullwidth", "chinese")
SPACINGS = {"none": "", "space": " ", "ideographic": "\u3000"}
WEEKDAYS = "一二三四五六日"
_FULL = str.maketrans("0123456789:-~", "０１２３４５６７８９：－～")
_CN = "零一二三四五六七八九"


def cn(n: int, *, liang: bool = False) -> str:
    """0..99 in Chinese numerals: 5 -> 五, 10 -> 十, 15 -> 十五, 20 -> 二十, 23 -> 二十三 (2 -> 两 if asked)."""
    if n == 2 and liang:
        return "两"
    if n < 10:
        return _CN[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _CN[tens]) + "十" + (_CN[ones] if ones else "")


def num(n: int, form: str, *, liang: bool = False) -> str:
    if form == "chinese":
        return cn(n, liang=liang)
    return str(n).translate(_FULL) if form == "fullwidth" else str(n)


def ascii_or_full(text: str, form: str) -> str:
    return text.translate(_FULL) if form == "fullwidth" else text


# --------------------------------------------------------------------------- date parts
# A date part resolves against `now` to a first candidate day and, for the kinds that roll to their next
# occurrence when in the past (a bare weekday, 月底, a holiday), a function giving the next one.

Roll = Callable[[date], date] | None


@dataclass(frozen=True)
class DatePart:
    kind: str
    text: str
    resolve: Callable[[datetime], tuple[date, Roll]]
    numeric: bool = False  # whether the text has numbers written in the digit form


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def _next_month_first(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _following_month_end(d: date) -> date:
    nxt = _next_month_first(d)
    return _month_end(nxt.year, nxt.month)


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def date_parts(rng: random.Random, form: str) -> list[DatePart]:
    """One instance of every date kind, with random numbers and wording, in digit form ``form``."""
    wd = rng.randrange(7)
    week_word = rng.choice(["周", "星期", "礼拜"])
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    dom = rng.randint(1, 28)
    rel_word, rel_days = rng.choice([("今天", 0), ("明天", 1), ("后天", 2), ("大后天", 3)])
    holiday_word, holiday_month = rng.choice(
        [("元旦", 1), ("五一", 5), ("劳动节", 5), ("国庆", 10), ("国庆节", 10)]
    )

    def month_day(now: datetime) -> tuple[date, Roll]:
        today = now.date()
        year = today.year + (1 if (month, day) < (today.month, today.day) else 0)
        return date(year, month, day), None

    def day_of_month(now: datetime) -> tuple[date, Roll]:
        today = now.date()
        first = today.replace(day=1) if dom >= today.day else _next_month_first(today)
        return first.replace(day=dom), None

    def bare_weekday(now: datetime) -> tuple[date, Roll]:
        today = now.date()
        return today + timedelta(days=(wd - today.weekday()) % 7), lambda d: d + timedelta(days=7)

    def month_end(now: datetime) -> tuple[date, Roll]:
        today = now.date()
        return _month_end(today.year, today.month), _following_month_end

    def holiday(now: datetime) -> tuple[date, Roll]:
        today = now.date()
        year = today.year + (1 if (holiday_month, 1) < (today.month, today.day) else 0)
        return date(year, holiday_month, 1), lambda d: d.replace(year=d.year + 1)

    md_suffix = rng.choice(["日", "号"])
    return [
        DatePart("relative", rel_word, lambda now: (now.date() + timedelta(days=rel_days), None)),
        DatePart(
            "next_week",
            rng.choice(["下", "下个"]) + week_word + WEEKDAYS[wd],
            lambda now: (_monday(now.date()) + timedelta(days=7 + wd), None),
        ),
        DatePart(
            "this_week",
            rng.choice(["本", "这"]) + week_word + WEEKDAYS[wd],
            lambda now: (_monday(now.date()) + timedelta(days=wd), None),
        ),
        DatePart("bare_weekday", week_word + WEEKDAYS[wd], bare_weekday),
        DatePart("month_day", f"{num(month, form)}月{num(day, form)}{md_suffix}", month_day, numeric=True),
        DatePart("day_of_month", f"{num(dom, form)}号", day_of_month, numeric=True),
        DatePart("month_end", rng.choice(["月底", "月末"]), month_end),
        DatePart(
            "next_month_start",
            rng.choice(["下月初", "下个月初"]),
            lambda now: (_next_month_first(now.date()), None),
        ),
        DatePart("holiday", holiday_word, holiday),
    ]


# --------------------------------------------------------------------------- time parts
# A time part gives its text in a digit form (None when the form does not apply, e.g. ``14:00`` in Chinese
# numerals) and the clock it means: (hour, minute), the end of a range or None, and whether a time of day
# was written at all (without one, the date's default 9:00 is used).


@dataclass(frozen=True)
class TimePart:
    kind: str
    text: str
    start: tuple[int, int]
    end: tuple[int, int] | None = None


def _clock(h: int, m: int, form: str) -> str:
    return ascii_or_full(f"{h}:{m:02d}", form)


def time_parts(rng: random.Random, form: str) -> list[TimePart]:
    """One instance of every time kind that can be written in digit form ``form``."""
    parts: list[TimePart] = []
    # N点 without a period: 1..6 is the afternoon, everything else as written
    h = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    parts.append(TimePart("bare_hour", f"{num(h, form, liang=True)}点", (h + 12 if h <= 6 else h, 0)))
    h = rng.randint(8, 11)
    parts.append(TimePart("morning", f"上午{num(h, form)}点", (h, 0)))
    h = rng.randint(1, 6)
    half = rng.random() < 0.5
    parts.append(
        TimePart(
            "afternoon",
            f"下午{num(h, form, liang=True)}点" + ("半" if half else ""),
            (h + 12, 30 if half else 0),
        )
    )
    h = rng.randint(7, 10)
    parts.append(TimePart("evening", f"晚上{num(h, form)}点", (h + 12, 0)))
    h = rng.choice([8, 9, 10, 11, 13, 14, 15, 16, 17])
    quarter = rng.choice([("半", 30), ("一刻", 15), ("三刻", 45)])
    parts.append(TimePart("half_quarter", f"{num(h, form)}点{quarter[0]}", (h, quarter[1])))
    h, m = rng.choice([8, 9, 10, 11, 13, 14, 15, 16]), rng.choice([10, 20, 40, 50])
    parts.append(TimePart("minutes", f"{num(h, form)}点{num(m, form)}分", (h, m)))
    if form != "chinese":
        h, m = rng.randint(7, 21), rng.choice([0, 15, 30, 45])
        parts.append(TimePart("colon", _clock(h, m, form), (h, m)))
    if form == "ascii":  # no digits: one form is enough
        word, default = rng.choice(
            [("早上", (8, 0)), ("上午", (9, 0)), ("中午", (12, 0)), ("下午", (14, 30)), ("晚上", (19, 0))]
        )
        parts.append(TimePart("period_default", word, default))
    # ranges: the end inherits the start's period (and the afternoon of a bare 1..6)
    a, b = rng.choice([(8, 10), (9, 11), (9, 12), (10, 12), (8, 11)])
    sep = rng.choice(["到", "至", "-", "~"])
    parts.append(TimePart("range_hours", f"{num(a, form)}点{sep}{num(b, form)}点", (a, 0), (b, 0)))
    a, b = rng.choice([(1, 3), (2, 4), (2, 5), (3, 5), (4, 6)])
    sep = rng.choice(["到", "至"])
    parts.append(
        TimePart(
            "range_afternoon",
            f"下午{num(a, form, liang=True)}点{sep}{num(b, form, liang=True)}点",
            (a + 12, 0),
            (b + 12, 0),
        )
    )
    if form != "chinese":
        a, b = rng.choice([(9, 11), (14, 16), (13, 15), (19, 21), (8, 10)])
        ma, mb = rng.choice([(0, 0), (30, 0), (0, 30), (30, 30)])
        sep = rng.choice(["-", "~", "—", "到"])
        parts.append(
            TimePart("range_clock", _clock(a, ma, form) + sep + _clock(b, mb, form), (a, ma), (b, mb))
        )
    return parts


# --------------------------------------------------------------------------- composing


def _at(d: date, hm: tuple[int, int]) -> datetime:
    return datetime(d.year, d.month, d.day, hm[0], hm[1], tzinfo=TZ)


def expected(now: datetime, datepart: DatePart | None, timepart: TimePart | None) -> dict[str, object]:
    """The expected fields of a line: start and end, or error (the time is in the past)."""
    if datepart is None:
        day, roll = now.date(), None  # a time without a date is today, never moved to tomorrow
    else:
        day, roll = datepart.resolve(now)
    start_hm = timepart.start if timepart else (9, 0)  # a date without a time: default_hour 9
    if _at(day, start_hm) < now and roll is not None:
        day = roll(day)
    start = _at(day, start_hm)
    if start < now:
        return {"error": True}
    end = _at(day, timepart.end) if timepart and timepart.end else None
    return {"start": start.isoformat(), "end": end.isoformat() if end else None}


def valid_lines(rng: random.Random) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()
    while len(lines) < VALID_LINES:
        now = rng.choice(NOWS)
        form = rng.choice(FORMS)
        datepart: DatePart | None = rng.choice([*date_parts(rng, form), None])
        timepart: TimePart | None = rng.choice([*time_parts(rng, form), None])
        if datepart is None and timepart is None:
            continue
        spacing = "none"
        if datepart and timepart:
            spacing = rng.choice(list(SPACINGS))
        texts = [part.text for part in (datepart, timepart) if part is not None]
        text = SPACINGS[spacing].join(texts)
        numeric = bool(datepart and datepart.numeric) or bool(timepart and timepart.kind != "period_default")
        key = (text, now.isoformat())
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            {
                "text": text,
                "now": now.isoformat(),
                **expected(now, datepart, timepart),
                "date": datepart.kind if datepart else "none",
                "time": timepart.kind if timepart else "none",
                "form": form if numeric else "none",
                "spacing": spacing,
            }
        )
    return lines


def error_lines(rng: random.Random) -> list[dict[str, object]]:
    """Phrases that are impossible whatever the clock: each must be refused."""
    cases: list[tuple[str, str]] = []
    for form in FORMS:
        h = rng.randint(13, 18)
        cases.append(("am_contradiction", f"明天上午{num(h, form)}点"))
        h = rng.randint(24, 29)
        cases.append(("hour_out_of_range", f"明天{num(h, form)}点"))
        m, d = rng.choice([(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31)])
        cases.append(("impossible_date", f"{num(m, form)}月{num(d, form)}日"))
        a, b = rng.choice([(10, 8), (11, 9), (11, 10), (12, 9)])
        cases.append(("range_backwards", f"明天{num(a, form)}点到{num(b, form)}点"))
        h = rng.randint(1, 4)
        cases.append(("night_ambiguous", f"明天晚上{num(h, form)}点"))
        h = rng.randint(8, 11)
        cases.append(("past_day", f"{rng.choice(['昨天', '前天'])}上午{num(h, form)}点"))
    for word in ("春节", "中秋节", "端午", "除夕"):
        cases.append(("lunar_holiday", word + rng.choice(["", "上午10点", "晚上7点"])))
    cases.append(("range_across_midnight", "明天晚上10点到凌晨2点"))
    cases.append(("period_needs_hour", "明天凌晨"))
    return [
        {
            "text": text,
            "now": rng.choice(NOWS).isoformat(),
            "error": True,
            "date": "error",
            "time": kind,
            "form": "-",
            "spacing": "none",
        }
        for kind, text in cases
    ]


def main() -> None:
    rng = random.Random(SEED)
    lines = valid_lines(rng) + error_lines(rng)
    with OUT.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    errors = sum(1 for line in lines if line.get("error"))
    print(f"wrote {len(lines)} lines ({errors} expect an error) to {OUT}")


if __name__ == "__main__":
    main()
