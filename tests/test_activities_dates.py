"""Chinese date/time phrases: exact results against fixed clocks, prefix splitting, echo format, refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.services.activities.dates import (
    PERIOD_DEFAULTS,
    WhenError,
    WhenMatch,
    format_when,
    parse_span,
    parse_when,
    read_when,
    split_when,
)

SH = ZoneInfo("Asia/Shanghai")

# Fixed clocks, all at 10:00 Shanghai time, on different weekdays.
TUE = datetime(2026, 11, 24, 10, 0, tzinfo=SH)  # Tuesday
SAT = datetime(2026, 11, 28, 10, 0, tzinfo=SH)  # Saturday, two days before the month ends
MON = datetime(2026, 11, 30, 10, 0, tzinfo=SH)  # Monday, last day of November
SUN = datetime(2026, 12, 20, 10, 0, tzinfo=SH)  # Sunday
WED_END = datetime(2026, 12, 30, 10, 0, tzinfo=SH)  # Wednesday, the year is about to end
LEAP = datetime(2028, 2, 27, 10, 0, tzinfo=SH)  # Sunday in a leap year
NON_LEAP = datetime(2027, 2, 27, 10, 0, tzinfo=SH)  # Saturday in a common year
EARLY_2026 = datetime(2026, 1, 10, 10, 0, tzinfo=SH)  # Saturday
MARCH_2027 = datetime(2027, 3, 1, 10, 0, tzinfo=SH)  # Monday
TUE_7 = datetime(2026, 11, 24, 7, 0, tzinfo=SH)  # the same Tuesday, early in the morning


def at(y: int, mo: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def test_fixed_clocks_are_on_the_documented_weekdays() -> None:
    assert [c.weekday() for c in (TUE, SAT, MON, SUN, WED_END, LEAP, NON_LEAP)] == [1, 5, 0, 6, 2, 6, 5]


# (phrase, now, expected start, has_time)
CASES = [
    # the examples from the command syntax
    ("下周三下午3点", TUE, at(2026, 12, 2, 15), True),
    ("12月5日 9:30", TUE, at(2026, 12, 5, 9, 30), True),
    ("12月5日9:30", TUE, at(2026, 12, 5, 9, 30), True),
    ("明天14:00", TUE, at(2026, 11, 25, 14), True),
    ("2026-12-05 09:30", TUE, at(2026, 12, 5, 9, 30), True),
    ("2026/12/05 09:30", TUE, at(2026, 12, 5, 9, 30), True),
    ("2026.12.5 9:30", TUE, at(2026, 12, 5, 9, 30), True),
    ("2026年12月5日 下午2点", TUE, at(2026, 12, 5, 14), True),
    # relative days and combined words
    ("今天下午3点", TUE, at(2026, 11, 24, 15), True),
    ("后天", TUE, at(2026, 11, 26), False),
    ("大后天上午10点", TUE, at(2026, 11, 27, 10), True),
    ("今晚7点半", TUE, at(2026, 11, 24, 19, 30), True),
    ("明早8点", TUE, at(2026, 11, 25, 8), True),
    ("明晚8点", TUE, at(2026, 11, 25, 20), True),
    ("明天中午", TUE, at(2026, 11, 25, 12), True),
    # periods of the day
    ("晚上7点半", TUE, at(2026, 11, 24, 19, 30), True),
    ("中午12点", TUE, at(2026, 11, 24, 12), True),
    ("中午1点", TUE, at(2026, 11, 24, 13), True),
    ("明天凌晨1点", TUE, at(2026, 11, 25, 1), True),
    ("明天早上6点", TUE, at(2026, 11, 25, 6), True),
    ("傍晚6点", TUE, at(2026, 11, 24, 18), True),
    ("下午15点", TUE, at(2026, 11, 24, 15), True),
    ("晚8点", TUE, at(2026, 11, 24, 20), True),
    ("周五晚上12点", TUE, at(2026, 11, 28, 0), True),  # midnight at the end of Friday evening
    # minutes, quarters, Chinese numerals, full-width colon
    ("3点一刻", TUE, at(2026, 11, 24, 15, 15), True),  # bare 1..6 o'clock means the afternoon
    ("下午3点三刻", TUE, at(2026, 11, 24, 15, 45), True),
    ("明天9点30分", TUE, at(2026, 11, 25, 9, 30), True),
    ("明天9点05", TUE, at(2026, 11, 25, 9, 5), True),
    ("明天14：30", TUE, at(2026, 11, 25, 14, 30), True),
    ("下午三点", TUE, at(2026, 11, 24, 15), True),
    ("十点半", TUE, at(2026, 11, 24, 10, 30), True),
    ("明天十点二十分", TUE, at(2026, 11, 25, 10, 20), True),
    ("两点", TUE, at(2026, 11, 24, 14), True),
    ("十二月五日", TUE, at(2026, 12, 5), False),
    ("二十三号", TUE, at(2026, 12, 23), False),  # the 23rd of this month has passed
    ("三十号下午两点", TUE, at(2026, 11, 30, 14), True),
    ("二〇二七年一月一日", TUE, at(2027, 1, 1), False),
    ("明年3月5日", TUE, at(2027, 3, 5), False),
    ("12月5日（周六）下午3点", TUE, at(2026, 12, 5, 15), True),
    ("明天9点整", TUE, at(2026, 11, 25, 9), True),
    ("明天9.30", TUE, at(2026, 11, 25, 9, 30), True),  # a dot for 点, read as a time after a date
    ("下午3.30", TUE, at(2026, 11, 24, 15, 30), True),
    ("12.5 9:30", TUE, at(2026, 12, 5, 9, 30), True),  # ... and as a date at the start
    ("下周三的下午3点", TUE, at(2026, 12, 2, 15), True),
    # weekdays from a Tuesday
    ("周三", TUE, at(2026, 11, 25), False),
    ("周二", TUE, at(2026, 12, 1), False),  # today at 9:00 has passed
    ("周二下午3点", TUE, at(2026, 11, 24, 15), True),  # today, later
    ("星期天", TUE, at(2026, 11, 29), False),
    ("礼拜天上午10点", TUE, at(2026, 11, 29, 10), True),
    ("周日", TUE, at(2026, 11, 29), False),
    ("本周五", TUE, at(2026, 11, 27), False),
    ("这周五下午4点", TUE, at(2026, 11, 27, 16), True),
    ("下星期一", TUE, at(2026, 11, 30), False),
    ("下个礼拜五", TUE, at(2026, 12, 4), False),
    ("下下周三", TUE, at(2026, 12, 9), False),
    # weekdays from a Saturday, across the end of the month
    ("下周一", SAT, at(2026, 11, 30), False),
    ("下周三 14:00", SAT, at(2026, 12, 2, 14), True),
    ("周日", SAT, at(2026, 11, 29), False),
    # weekdays from a Monday
    ("下周三", MON, at(2026, 12, 9), False),  # next calendar week: nine days later
    ("周一", MON, at(2026, 12, 7), False),
    ("本周日", MON, at(2026, 12, 6), False),
    # weekdays from a Sunday: the current week ends today, so 下周三 is three days later
    ("下周三", SUN, at(2026, 12, 23), False),
    ("周三", SUN, at(2026, 12, 23), False),
    ("下周日", SUN, at(2026, 12, 27), False),
    ("周日", SUN, at(2026, 12, 27), False),
    ("周日晚上8点", SUN, at(2026, 12, 20, 20), True),
    ("本周日下午3点", SUN, at(2026, 12, 20, 15), True),
    ("下下周一", SUN, at(2026, 12, 28), False),
    ("下下周一", WED_END, at(2027, 1, 11), False),
    # day of month, months, relative days
    ("30号", TUE, at(2026, 11, 30), False),
    ("5号", TUE, at(2026, 12, 5), False),
    ("1号", MON, at(2026, 12, 1), False),
    ("下个月5号", TUE, at(2026, 12, 5), False),
    ("下个月", TUE, at(2026, 12, 24), False),
    ("3天后", TUE, at(2026, 11, 27), False),
    ("三天以后下午2点", TUE, at(2026, 11, 27, 14), True),
    ("2小时后", TUE, at(2026, 11, 24, 12), True),
    ("1/5 9:00", TUE, at(2027, 1, 5, 9), True),
    ("12-5 9:00", TUE, at(2026, 12, 5, 9), True),
    ("12/5", TUE, at(2026, 12, 5), False),
    # year boundary
    ("后天", WED_END, at(2027, 1, 1), False),
    ("明天晚上8点", WED_END, at(2026, 12, 31, 20), True),
    ("下周一", WED_END, at(2027, 1, 4), False),
    ("周五", WED_END, at(2027, 1, 1), False),
    ("5号", WED_END, at(2027, 1, 5), False),
    ("3天后", WED_END, at(2027, 1, 2), False),
    ("下个月10号", WED_END, at(2027, 1, 10), False),
    ("12月31日", WED_END, at(2026, 12, 31), False),
    ("12月29日", WED_END, at(2027, 12, 29), False),  # already past this year
    ("1月5日", SUN, at(2027, 1, 5), False),
    ("下个月", SUN, at(2027, 1, 20), False),
    # leap years
    ("后天", LEAP, at(2028, 2, 29), False),
    ("后天", NON_LEAP, at(2027, 3, 1), False),
    ("2028年2月29日", TUE, at(2028, 2, 29), False),
    ("2028-02-29 14:00", TUE, at(2028, 2, 29, 14), True),
    ("2月29日", MARCH_2027, at(2028, 2, 29), False),  # the next February 29th is in 2028
]


@pytest.mark.parametrize(("phrase", "now", "expected", "has_time"), CASES)
def test_phrases(phrase: str, now: datetime, expected: datetime, has_time: bool) -> None:
    start = parse_when(phrase, now=now)
    assert start == expected
    assert start.tzinfo is SH
    match = split_when(phrase, now=now)
    assert (match.start, match.consumed, match.rest, match.has_time) == (expected, phrase, "", has_time)


# --------------------------------------------------------------------------- phrases from the issue


@pytest.mark.parametrize(
    ("phrase", "now", "expected"),
    [
        ("下周三15点", TUE, at(2026, 12, 2, 15)),
        ("下周三14:00", TUE, at(2026, 12, 2, 14)),
        ("下周五14点", TUE, at(2026, 12, 4, 14)),
        ("周五9点", TUE, at(2026, 11, 27, 9)),
        ("周三15点", TUE, at(2026, 11, 25, 15)),
        ("周二15点", TUE, at(2026, 11, 24, 15)),  # today, still ahead
        ("周二9点", TUE, at(2026, 12, 1, 9)),  # today has passed: next week
        ("下周三１５点", TUE, at(2026, 12, 2, 15)),
        ("周五１４：００", TUE, at(2026, 11, 27, 14)),
        ("下周一8:30", SAT, at(2026, 11, 30, 8, 30)),
        ("星期三15点", TUE, at(2026, 11, 25, 15)),
        ("下礼拜五10点", TUE, at(2026, 12, 4, 10)),
        ("周日9点", SUN, at(2026, 12, 27, 9)),  # today (Sunday) at 9:00 has passed
    ],
)
def test_weekday_directly_followed_by_a_time(phrase: str, now: datetime, expected: datetime) -> None:
    assert parse_when(phrase, now=now) == expected
    match = split_when(phrase + " 讲座", now=now)
    assert (match.start, match.consumed, match.rest, match.has_time) == (expected, phrase, "讲座", True)


@pytest.mark.parametrize("phrase", ["周15点", "下周15点"])
def test_an_arabic_weekday_digit_glued_to_more_digits_is_not_read(phrase: str) -> None:
    with pytest.raises(WhenError):
        parse_when(phrase, now=TUE)


@pytest.mark.parametrize(
    ("phrase", "now", "expected", "note"),
    [
        ("后天上午", TUE, at(2026, 11, 26, 9), "上午未写几点，按 9:00"),
        ("本周五下午", TUE, at(2026, 11, 27, 14, 30), "下午未写几点，按 14:30"),
        ("明天晚上", TUE, at(2026, 11, 25, 19), "晚上未写几点，按 19:00"),
        ("明天下午", TUE, at(2026, 11, 25, 14, 30), "下午未写几点，按 14:30"),
        ("明天早上", TUE, at(2026, 11, 25, 8), "早上未写几点，按 8:00"),
        ("明天中午", TUE, at(2026, 11, 25, 12), "中午未写几点，按 12:00"),
        ("下午", TUE, at(2026, 11, 24, 14, 30), "下午未写几点，按 14:30"),  # today
        ("今晚", TUE, at(2026, 11, 24, 19), "今晚未写几点，按 19:00"),
        ("明早", TUE, at(2026, 11, 25, 8), "明早未写几点，按 8:00"),
        ("下周三 下午", TUE, at(2026, 12, 2, 14, 30), "下午未写几点，按 14:30"),
        ("周二上午", TUE, at(2026, 12, 1, 9), "上午未写几点，按 9:00"),  # today's morning has passed
        ("12月5日晚上", TUE, at(2026, 12, 5, 19), "晚上未写几点，按 19:00"),
    ],
)
def test_a_period_word_alone_takes_its_stated_default(
    phrase: str, now: datetime, expected: datetime, note: str
) -> None:
    assert parse_when(phrase, now=now) == expected
    match = split_when(phrase + " 讲座", now=now)
    assert (match.start, match.consumed, match.rest, match.defaulted) == (expected, phrase, "讲座", note)
    assert match.has_time  # a time of day was written, if only roughly; has_time=False means a date only


def test_period_defaults_are_constants_and_can_be_overridden() -> None:
    assert PERIOD_DEFAULTS == {
        "早上": time(8, 0),
        "上午": time(9, 0),
        "中午": time(12, 0),
        "下午": time(14, 30),
        "晚上": time(19, 0),
    }
    override = {"下午": time(15, 0)}
    assert parse_when("明天下午", now=TUE, period_defaults=override) == at(2026, 11, 25, 15)
    assert parse_when("明天上午", now=TUE, period_defaults=override) == at(2026, 11, 25, 9)  # others kept
    match = split_when("明天下午 讲座", now=TUE, period_defaults=override)
    assert match.defaulted == "下午未写几点，按 15:00"
    with pytest.raises(ValueError, match="period_defaults"):
        parse_when("明天下午", now=TUE, period_defaults={"傍晚": time(18, 0)})


def test_no_default_note_when_the_time_is_written_or_only_a_date_is() -> None:
    assert split_when("明天下午3点", now=TUE).defaulted is None
    match = split_when("明天", now=TUE)
    assert (match.defaulted, match.has_time) == (None, False)


@pytest.mark.parametrize(("phrase", "example"), [("明天凌晨", "凌晨5点"), ("明天傍晚", "傍晚6点")])
def test_periods_without_a_default_still_ask_for_the_hour_with_a_natural_example(
    phrase: str, example: str
) -> None:
    with pytest.raises(WhenError, match="要写明几点") as info:
        parse_when(phrase, now=TUE)
    assert f"例如「{example}」" in str(info.value)


# (phrase, now, start, end)
RANGES = [
    ("9点到11点", TUE_7, at(2026, 11, 24, 9), at(2026, 11, 24, 11)),
    ("14:00-16:00", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16)),
    ("下午2点至4点", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16)),  # the end inherits 下午
    ("下午2点到4点", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16)),
    ("14:00~16:30", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16, 30)),
    ("明天9:00—11:00", TUE, at(2026, 11, 25, 9), at(2026, 11, 25, 11)),
    ("１４：００～１６：００", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16)),
    ("明天 9点 到 11点半", TUE, at(2026, 11, 25, 9), at(2026, 11, 25, 11, 30)),
    ("明天上午10点到下午2点", TUE, at(2026, 11, 25, 10), at(2026, 11, 25, 14)),
    ("2点到4点", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16)),  # bare 1..6 o'clock is the afternoon
    ("5点到7点", TUE, at(2026, 11, 24, 17), at(2026, 11, 24, 19)),  # ... and the end follows the start
    ("明天11点到1点", TUE, at(2026, 11, 25, 11), at(2026, 11, 25, 13)),
    ("下午两点到四点", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16)),
    ("下午2-4点", TUE, at(2026, 11, 24, 14), at(2026, 11, 24, 16)),
    ("明天9到11点", TUE, at(2026, 11, 25, 9), at(2026, 11, 25, 11)),
    ("周五9点到11点", TUE, at(2026, 11, 27, 9), at(2026, 11, 27, 11)),
    ("周二9点到11点", TUE, at(2026, 12, 1, 9), at(2026, 12, 1, 11)),  # today's has begun: next week
    ("晚上7点到9点", TUE, at(2026, 11, 24, 19), at(2026, 11, 24, 21)),
    ("晚上8点到12点", TUE, at(2026, 11, 24, 20), at(2026, 11, 25, 0)),  # until the end of the evening
    ("明天9.30-11.30", TUE, at(2026, 11, 25, 9, 30), at(2026, 11, 25, 11, 30)),
]


@pytest.mark.parametrize(("phrase", "now", "start", "end"), RANGES)
def test_ranges_set_an_end_time(phrase: str, now: datetime, start: datetime, end: datetime) -> None:
    assert parse_span(phrase, now=now) == (start, end)
    assert parse_when(phrase, now=now) == start  # existing callers keep getting the start
    match = split_when(phrase + " 讲座", now=now)
    assert (match.start, match.end, match.consumed, match.rest) == (start, end, phrase, "讲座")
    assert read_when(phrase, now=now) == WhenMatch(start, phrase, "", True, end=end)


def test_without_a_range_there_is_no_end() -> None:
    assert parse_span("明天9点", now=TUE) == (at(2026, 11, 25, 9), None)
    assert split_when("明天9点 讲座", now=TUE).end is None
    # "到" not followed by a time is not a range
    assert split_when("明天9点到会议室集合", now=TUE).rest == "到会议室集合"
    assert split_when("下午3点-5号楼集合", now=TUE).rest == "-5号楼集合"


@pytest.mark.parametrize(
    ("phrase", "fragment"),
    [
        ("明天11点到9点", "结束时间要晚于开始时间"),
        ("明天14:00-14:00", "结束时间要晚于开始时间"),
        ("明天晚上7点到凌晨1点", "不能跨天"),
        ("明天下午2点到25点", "没有25点"),
    ],
)
def test_impossible_ranges_are_refused(phrase: str, fragment: str) -> None:
    with pytest.raises(WhenError, match=fragment) as info:
        parse_span(phrase, now=TUE)
    assert_helpful(str(info.value))


def test_read_when_needs_the_whole_text_and_carries_the_default_note() -> None:
    assert read_when("明天下午", now=TUE) == WhenMatch(
        at(2026, 11, 25, 14, 30), "明天下午", "", True, defaulted="下午未写几点，按 14:30"
    )
    with pytest.raises(WhenError, match="「讲座」看不懂"):
        read_when("明天下午 讲座", now=TUE)


DEC_1_EARLY = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # Tuesday, the first of the month, before 9:00
NATIONAL_DAY_LATE = datetime(2026, 10, 1, 16, 0, tzinfo=SH)  # Thursday, National Day afternoon


@pytest.mark.parametrize(
    ("phrase", "now", "expected", "has_time"),
    [
        ("月底", TUE, at(2026, 11, 30), False),
        ("月末", TUE, at(2026, 11, 30), False),
        ("月底", MON, at(2026, 12, 31), False),  # today is the last day but 9:00 has passed
        ("月底下午3点", MON, at(2026, 11, 30, 15), True),  # ... and 15:00 has not
        ("本月底", TUE, at(2026, 11, 30), False),
        ("这个月底下午4点", TUE, at(2026, 11, 30, 16), True),
        ("下月底", TUE, at(2026, 12, 31), False),
        ("下个月底", WED_END, at(2027, 1, 31), False),
        ("下个月底", NON_LEAP, at(2027, 3, 31), False),
        ("下月初", TUE, at(2026, 12, 1), False),
        ("下个月初", TUE, at(2026, 12, 1), False),
        ("下个月初", WED_END, at(2027, 1, 1), False),
        ("下个月初上午10点", TUE, at(2026, 12, 1, 10), True),
        ("月初", TUE, at(2026, 12, 1), False),  # this month's first has passed
        ("月初", DEC_1_EARLY, at(2026, 12, 1), False),  # today is the first, 9:00 is ahead
        ("元旦", TUE, at(2027, 1, 1), False),
        ("元旦上午10点", WED_END, at(2027, 1, 1, 10), True),
        ("国庆", TUE, at(2027, 10, 1), False),
        ("国庆节", EARLY_2026, at(2026, 10, 1), False),
        ("国庆节下午3点", NATIONAL_DAY_LATE, at(2027, 10, 1, 15), True),  # today's 15:00 has passed
        ("国庆节晚上8点", NATIONAL_DAY_LATE, at(2026, 10, 1, 20), True),
        ("五一", TUE, at(2027, 5, 1), False),
        ("劳动节", EARLY_2026, at(2026, 5, 1), False),
        ("五一劳动节 9:30", EARLY_2026, at(2026, 5, 1, 9, 30), True),
    ],
)
def test_month_ends_and_fixed_holidays(
    phrase: str, now: datetime, expected: datetime, has_time: bool
) -> None:
    assert parse_when(phrase, now=now) == expected
    match = split_when(phrase + " 总结会", now=now)
    assert (match.start, match.consumed, match.rest, match.has_time) == (expected, phrase, "总结会", has_time)


@pytest.mark.parametrize("phrase", ["春节", "中秋节", "端午", "除夕晚上7点", "清明节"])
def test_lunar_holidays_are_refused_with_an_example_that_works(phrase: str) -> None:
    with pytest.raises(WhenError, match="公历") as info:
        parse_when(phrase, now=TUE)
    message = str(info.value)
    assert_helpful(message)
    example = re.search(r"例如「([^」]+)」", message)
    assert example is not None, message
    assert parse_when(example.group(1), now=TUE) > TUE


@pytest.mark.parametrize(
    ("phrase", "now", "expected"),
    [
        # these already worked before the issue and are kept as regression tests
        ("１５点", TUE, at(2026, 11, 24, 15)),
        ("十五点", TUE, at(2026, 11, 24, 15)),
        ("下午三点半", TUE, at(2026, 11, 24, 15, 30)),
        ("九点一刻", TUE_7, at(2026, 11, 24, 9, 15)),
        ("明天 十五点", TUE, at(2026, 11, 25, 15)),
        ("明天　下午　３点", TUE, at(2026, 11, 25, 15)),
        ("下午 ３ 点", TUE, at(2026, 11, 24, 15)),
        ("十二月五日下午三点", TUE, at(2026, 12, 5, 15)),
        ("明天九点四十五", TUE, at(2026, 11, 25, 9, 45)),
        ("下午两点一刻", TUE, at(2026, 11, 24, 14, 15)),
        ("周五十四点", TUE, at(2026, 11, 27, 14)),  # 周五 + 十四点
        ("下周三 十五点半", TUE, at(2026, 12, 2, 15, 30)),
        ("下周三十五点", TUE, at(2026, 12, 2, 15)),
        # these did not
        ("周五１４点", TUE, at(2026, 11, 27, 14)),
        ("明天9点 半", TUE, at(2026, 11, 25, 9, 30)),
        ("明天 9 点 30 分", TUE, at(2026, 11, 25, 9, 30)),
        ("明天九点 一刻", TUE, at(2026, 11, 25, 9, 15)),
    ],
)
def test_digit_forms_and_spacing(phrase: str, now: datetime, expected: datetime) -> None:
    assert parse_when(phrase, now=now) == expected


def test_a_number_after_a_space_is_not_taken_for_minutes() -> None:
    assert split_when("明天9点 30人参加", now=TUE).rest == "30人参加"


def test_default_hour_is_used_for_dates_only() -> None:
    assert parse_when("明天", now=TUE, default_hour=14) == at(2026, 11, 25, 14)
    assert parse_when("明天8点", now=TUE, default_hour=14) == at(2026, 11, 25, 8)
    # bare weekday today: it rolls a week only when the default hour has passed
    assert parse_when("周二", now=TUE, default_hour=18) == at(2026, 11, 24, 18)


def test_allow_past() -> None:
    assert parse_when("昨天下午3点", now=TUE, allow_past=True) == at(2026, 11, 23, 15)
    assert parse_when("这周一", now=TUE, allow_past=True) == at(2026, 11, 23)
    assert parse_when("2026-01-01 08:00", now=TUE, allow_past=True) == at(2026, 1, 1, 8)


def test_interpreted_in_the_timezone_of_now() -> None:
    utc_now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert parse_when("明天14:00", now=utc_now) == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    tokyo_now = TUE.astimezone(ZoneInfo("Asia/Tokyo"))  # 11:00 in Tokyo
    assert parse_when("今天11:30", now=tokyo_now) == datetime(
        2026, 11, 24, 11, 30, tzinfo=ZoneInfo("Asia/Tokyo")
    )


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_when("明天", now=datetime(2026, 11, 24, 10, 0))


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("12月5日 9:30 年会筹备", TUE, WhenMatch(at(2026, 12, 5, 9, 30), "12月5日 9:30", "年会筹备", True)),
        ("明天14:00 隧道防水讲座", TUE, WhenMatch(at(2026, 11, 25, 14), "明天14:00", "隧道防水讲座", True)),
        ("2026-12-05 09:30 标题", TUE, WhenMatch(at(2026, 12, 5, 9, 30), "2026-12-05 09:30", "标题", True)),
        (
            "  下周三下午3点 盾构施工大讲堂 地点 二楼会议室 ",
            TUE,
            WhenMatch(at(2026, 12, 2, 15), "下周三下午3点", "盾构施工大讲堂 地点 二楼会议室", True),
        ),
        ("明天 3号线盾构讲座", TUE, WhenMatch(at(2026, 11, 25), "明天", "3号线盾构讲座", False)),
        ("周五 早会", TUE, WhenMatch(at(2026, 11, 27), "周五", "早会", False)),
        ("明天下午3点：讲座", TUE, WhenMatch(at(2026, 11, 25, 15), "明天下午3点", "讲座", True)),
        ("明天下午3点，讲座", TUE, WhenMatch(at(2026, 11, 25, 15), "明天下午3点", "讲座", True)),
        ("下午3点 5号楼集合", TUE, WhenMatch(at(2026, 11, 24, 15), "下午3点", "5号楼集合", True)),
        ("12月5日周六下午3点年会", TUE, WhenMatch(at(2026, 12, 5, 15), "12月5日周六下午3点", "年会", True)),
        (
            "１２月５日　９：３０　年会",
            TUE,
            WhenMatch(at(2026, 12, 5, 9, 30), "１２月５日　９：３０", "年会", True),
        ),
        ("12/5 9:00 讲座", TUE, WhenMatch(at(2026, 12, 5, 9), "12/5 9:00", "讲座", True)),
        ("今晚8点 周会", TUE, WhenMatch(at(2026, 11, 24, 20), "今晚8点", "周会", True)),
        ("5号 周年庆", TUE, WhenMatch(at(2026, 12, 5), "5号", "周年庆", False)),
    ],
)
def test_split_when(text: str, now: datetime, expected: WhenMatch) -> None:
    assert split_when(text, now=now) == expected


@pytest.mark.parametrize(
    ("dt", "expected"),
    [
        (at(2026, 12, 2, 15), "2026年12月2日（星期三）15:00"),
        (at(2026, 12, 20, 9, 5), "2026年12月20日（星期日）09:05"),
        (at(2027, 1, 1, 0, 0), "2027年1月1日（星期五）00:00"),
        (at(2028, 2, 29, 23, 59), "2028年2月29日（星期二）23:59"),
        (at(2026, 11, 30, 8), "2026年11月30日（星期一）08:00"),
    ],
)
def test_format_when(dt: datetime, expected: str) -> None:
    assert format_when(dt) == expected


CJK = re.compile(r"[\u4e00-\u9fff]")


def assert_helpful(message: str) -> None:
    assert CJK.search(message), message
    assert "可以这样写" in message and "下周三下午3点" in message and "明天14:00" in message, message


@pytest.mark.parametrize(
    ("text", "now", "fragment"),
    [
        ("随便什么时候", TUE, "看不懂"),
        ("", TUE, "没有写时间"),
        ("25点", TUE, "没有25点"),
        ("明天24:00", TUE, "没有24点"),
        ("明天9点75分", TUE, "没有75分"),
        ("明天9:75", TUE, "没有75分"),
        ("2月30日", TUE, "2月没有30日"),
        ("12月32日", TUE, "12月没有32日"),
        ("13月1日", TUE, "没有13月"),
        ("2026年2月29日", TUE, "不是闰年"),
        ("2月29日", EARLY_2026, "2026年2月没有29日"),
        ("2月29日", TUE, "2027年2月没有29日"),
        ("31号", MON, "11月没有31日"),
        ("上午15点", TUE, "上午只有0到12点"),
        ("凌晨8点", TUE, "前后矛盾"),
        ("晚上2点", TUE, "歧义"),
        ("明天凌晨", TUE, "要写明几点"),
        ("傍晚", TUE, "要写明几点"),
        ("下周", TUE, "星期几"),
        ("本月", TUE, "几号"),
        ("12月5日（周五）", TUE, "星期六，不是星期五"),
        ("明天下午3点 讲座", TUE, "「讲座」看不懂"),
        ("9.30", TUE, "看不懂"),
        ("今天上午9点", TUE, "已经过去"),
        ("这周一", TUE, "已经过去"),
        ("2026-01-01", TUE, "已经过去"),
    ],
)
def test_parse_when_refusals(text: str, now: datetime, fragment: str) -> None:
    with pytest.raises(WhenError) as info:
        parse_when(text, now=now)
    assert fragment in str(info.value)
    assert_helpful(str(info.value))


@pytest.mark.parametrize(
    "text",
    ["讲座 明天下午3点", "3号线盾构讲座", "3-5人小组讨论", "周年庆", "12/5 讲座", "早会"],
)
def test_split_when_without_a_time_prefix(text: str) -> None:
    with pytest.raises(WhenError) as info:
        split_when(text, now=TUE)
    assert "开头没有找到时间" in str(info.value)
    assert_helpful(str(info.value))


def test_past_error_echoes_the_parsed_time() -> None:
    with pytest.raises(WhenError) as info:
        split_when("今天上午9点 晨会", now=TUE)
    message = str(info.value)
    assert "已经过去" in message and format_when(at(2026, 11, 24, 9)) in message
    assert_helpful(message)


def test_invalid_time_is_refused_rather_than_shortened() -> None:
    # "明天" alone would parse, but the writer clearly meant a time: refuse instead of dropping it
    with pytest.raises(WhenError, match="没有25点"):
        split_when("明天25点 讲座", now=TUE)


CHARS = "0123456789:：/-.年月日号点时分半刻整周星期礼拜天下上本这个午晚早凌晨中后以两十二三五〇零 　（）()，的号线楼"
WORDS = [
    "明天",
    "后天",
    "今晚",
    "明早",
    "下午",
    "晚上",
    "中午",
    "凌晨",
    "下周",
    "下个月",
    "小时",
    "分钟",
    "讲座",
    "到",
    "至",
    "~",
    "—",
    "月底",
    "下月初",
    "元旦",
    "国庆",
    "五一",
    "春节",
    "傍晚",
]
TOKENS = st.sampled_from([*CHARS, *WORDS])
PHRASES = st.one_of(
    st.lists(TOKENS, max_size=12).map("".join),
    st.text(max_size=30),
)


@settings(max_examples=1500, deadline=None)
@given(text=PHRASES, now=st.sampled_from([TUE, SAT, MON, SUN, WED_END, LEAP, NON_LEAP]))
def test_any_text_is_read_or_refused_politely(text: str, now: datetime) -> None:
    try:
        match = split_when(text, now=now)
    except WhenError as e:
        assert_helpful(str(e))
        return
    assert text.lstrip().startswith(match.consumed) and match.consumed.strip() == match.consumed
    assert match.start.tzinfo is now.tzinfo and match.start >= now
    assert parse_when(match.consumed, now=now) == match.start  # the consumed prefix reads the same alone


def test_long_input_is_fast() -> None:
    with pytest.raises(WhenError):
        split_when("12" * 5000, now=TUE)
    assert split_when("明天 " + "讲座" * 5000, now=TUE).rest == "讲座" * 5000
