"""The trading calendar: published SH/SZ/BJ closures 2005-2026 and the lookup API."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from qmtkit.data import calendar as cal
from qmtkit.errors import InvalidArgument


def _days(a: int, b: int) -> list[int]:
    d0 = dt.date(a // 10000, a // 100 % 100, a % 100)
    d1 = dt.date(b // 10000, b // 100 % 100, b % 100)
    return [int((d0 + dt.timedelta(i)).strftime("%Y%m%d")) for i in range((d1 - d0).days + 1)]


def test_january_2024_had_22_sh_trading_days() -> None:
    assert len(cal.trading_days("SH", 20240101, 20240131)) == 22


@pytest.mark.parametrize(
    ("first", "last", "before", "after"),
    [
        (20241001, 20241007, 20240930, 20241008),
        (20240209, 20240217, 20240208, 20240219),
        (20250128, 20250204, 20250127, 20250205),
        (20251001, 20251008, 20250930, 20251009),
        (20200124, 20200202, 20200123, 20200203),  # Spring Festival extended in 2020
        (20150903, 20150906, 20150902, 20150907),  # Victory Day parade holiday
        (20071229, 20080101, 20071228, 20080102),  # 2008 New Year took 2007-12-31
    ],
)
def test_published_closures_are_closed_and_neighbours_open(
    first: int, last: int, before: int, after: int
) -> None:
    for market in ("SH", "SZ"):
        assert not any(cal.is_trading_day(market, d) for d in _days(first, last))
        assert cal.is_trading_day(market, before)
        assert cal.is_trading_day(market, after)
        assert cal.next_trading_day(market, before) == cal.yyyymmdd_to_ms(after)


@pytest.mark.parametrize(
    ("year", "count"),
    # counted independently (exchange-published calendars) for these years
    [(2005, 242), (2008, 246), (2013, 238), (2019, 244), (2024, 242), (2025, 243), (2026, 242)],
)
def test_trading_days_per_year(year: int, count: int) -> None:
    assert len(cal.trading_days("SH", year * 10000 + 101, year * 10000 + 1231)) == count


@pytest.mark.parametrize("day", [20240204, 20240218, 20250126, 20250208, 20231007, 20231008])
def test_weekend_make_up_working_days_do_not_trade(day: int) -> None:
    assert not cal.is_trading_day("SH", day)


def test_2025_holidays_are_the_published_weekday_closures() -> None:
    expected = [
        20250101,
        *_days(20250128, 20250131),
        20250203,
        20250204,
        20250404,
        20250501,
        20250502,
        20250505,
        20250602,
        *_days(20251001, 20251003),
        *_days(20251006, 20251008),
    ]
    assert cal.holidays("SH", 20250101, 20251231).tolist() == expected


def test_every_day_is_a_weekday_that_is_either_trading_or_a_holiday() -> None:
    trading = set(cal.trading_days_yyyymmdd("SZ").tolist())
    closed = set(cal.holidays("SZ").tolist())
    assert not trading & closed
    weekdays = {
        int(d.strftime("%Y%m%d"))
        for d in (dt.date(2005, 1, 1) + dt.timedelta(i) for i in range(8035))
        if d.weekday() < 5 and d.year <= 2026
    }
    assert trading | closed == weekdays


def test_trading_days_are_ms_at_midnight_beijing() -> None:
    days = cal.trading_days("SH", "2024-01-01", "2024-01-05")
    bj = dt.timezone(dt.timedelta(hours=8))
    expected = [int(dt.datetime(2024, 1, d, tzinfo=bj).timestamp() * 1000) for d in (2, 3, 4, 5)]
    assert days.dtype == np.int64
    assert days.tolist() == expected
    assert cal.trading_days_yyyymmdd("SH", 20240101, 20240105).tolist() == [
        20240102,
        20240103,
        20240104,
        20240105,
    ]


def test_bj_trades_the_same_days_from_its_opening_only() -> None:
    bj = cal.trading_days_yyyymmdd("BJ")
    assert bj[0] == 20211115
    sh = cal.trading_days_yyyymmdd("SH", 20211115)
    assert np.array_equal(bj, sh)
    assert not cal.is_trading_day("BJ", 20211112)
    assert cal.is_trading_day("SH", 20211112)
    assert cal.holidays("BJ", 20210101, 20211231).tolist() == []


def test_previous_and_next_skip_weekends_and_holidays() -> None:
    assert cal.previous_trading_day("SH", 20241008) == cal.yyyymmdd_to_ms(20240930)
    assert cal.previous_trading_day("SH", 20240603) == cal.yyyymmdd_to_ms(20240531)
    assert cal.next_trading_day("SH", 20240531) == cal.yyyymmdd_to_ms(20240603)
    # a holiday itself: the neighbours around it
    assert cal.previous_trading_day("SH", 20250129) == cal.yyyymmdd_to_ms(20250127)
    assert cal.next_trading_day("SH", 20250129) == cal.yyyymmdd_to_ms(20250205)


def test_day_forms_are_equivalent() -> None:
    ms = int(cal.yyyymmdd_to_ms(20240611))
    forms: list[object] = [20240611, "20240611", "2024-06-11", dt.date(2024, 6, 11), ms + 3_600_000]
    assert {cal.day_number(f) for f in forms} == {cal.day_number(20240611)}
    assert all(cal.is_trading_day("SH", f) for f in forms)  # type: ignore[arg-type]


def test_count_keeps_the_last_days_like_get_trading_dates() -> None:
    last3 = cal.trading_days_yyyymmdd("SH", 20241001, 20241031, count=3).tolist()
    assert last3 == [20241029, 20241030, 20241031]
    assert cal.trading_days("SH", 20241001, 20241031, count=0).size == 0


def test_trading_calendar_returns_yyyymmdd_strings() -> None:
    assert cal.trading_calendar("SZ", "20240927", "20241010") == [
        "20240927",
        "20240930",
        "20241008",
        "20241009",
        "20241010",
    ]


@pytest.mark.parametrize(
    ("alias", "market"), [("sh", "SH"), ("SSE", "SH"), ("SZSE", "SZ"), ("BSE", "BJ")]
)
def test_market_aliases(alias: str, market: str) -> None:
    assert cal.normalize_market(alias) == market


@pytest.mark.parametrize("market", ["HK", "", "600000.SH", 1])
def test_unknown_market_is_refused_by_name(market: object) -> None:
    with pytest.raises(InvalidArgument, match=repr(market).replace("'", ".")):
        cal.trading_days(market, 20240101, 20240131)  # type: ignore[arg-type]


@pytest.mark.parametrize("day", [20041231, 21000104, "1999-01-04"])
def test_days_outside_the_calendar_say_which_range_it_covers(day: object) -> None:
    with pytest.raises(InvalidArgument, match="20050101 to 20991231"):
        cal.is_trading_day("SH", day)  # type: ignore[arg-type]


@pytest.mark.parametrize("day", ["2024-02-30", 20241301, "tomorrow", 3.5, True])
def test_bad_days_are_refused(day: object) -> None:
    with pytest.raises(InvalidArgument, match="bad date"):
        cal.is_trading_day("SH", day)  # type: ignore[arg-type]


def test_start_after_end_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="after end"):
        cal.trading_days("SH", 20240201, 20240101)


def test_no_trading_day_before_the_known_range() -> None:
    with pytest.raises(InvalidArgument, match="no trading day before"):
        cal.previous_trading_day("SH", 20050104)


def test_yyyymmdd_and_ms_round_trip() -> None:
    days = np.array([19901219, 20000229, 20240229, 20261231], dtype=np.int64)
    assert np.array_equal(cal.ms_to_yyyymmdd(cal.yyyymmdd_to_ms(days)), days)
    # 23:59 Beijing is still the same day; 00:00 the next
    ms = cal.yyyymmdd_to_ms(20240229)
    assert cal.ms_to_yyyymmdd(ms + 86_399_999) == 20240229
    assert cal.ms_to_yyyymmdd(ms + 86_400_000) == 20240301
