"""Security codes, boards and periods are parsed in one place and fail with the value named."""

from __future__ import annotations

import pytest

from qmtkit.codes import (
    PERIODS,
    Board,
    limit_ratio,
    normalize_code,
    normalize_codes,
    parse_code,
    parse_period,
)
from qmtkit.errors import InvalidArgument, InvalidCode, InvalidPeriod


@pytest.mark.parametrize(
    ("code", "board"),
    [
        ("600000.SH", Board.MAIN),
        ("601318.SH", Board.MAIN),
        ("603288.SH", Board.MAIN),
        ("605499.SH", Board.MAIN),
        ("688981.SH", Board.STAR),
        ("000001.SZ", Board.MAIN),
        ("002594.SZ", Board.MAIN),
        ("300750.SZ", Board.CHINEXT),
        ("301236.SZ", Board.CHINEXT),
        ("430047.BJ", Board.BJ),
        ("830799.BJ", Board.BJ),
        ("920002.BJ", Board.BJ),
        ("000300.SH", Board.INDEX),
        ("000001.SH", Board.INDEX),
        ("399006.SZ", Board.INDEX),
        ("899050.BJ", Board.INDEX),
        ("510300.SH", Board.ETF),
        ("588000.SH", Board.ETF),
        ("159915.SZ", Board.ETF),
    ],
)
def test_codes_are_classified_into_their_board(code: str, board: Board) -> None:
    assert parse_code(code).board is board


def test_a_lower_case_exchange_is_normalised() -> None:
    assert normalize_code(" 600000.sh ") == "600000.SH"


def test_the_same_number_on_two_exchanges_is_two_securities() -> None:
    assert parse_code("000001.SH").board is Board.INDEX
    assert parse_code("000001.SZ").board is Board.MAIN


@pytest.mark.parametrize(
    "bad", ["600000", "60000.SH", "6000000.SH", "600000.HK", "600000-SH", "ABCDEF.SZ", ""]
)
def test_a_malformed_code_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InvalidCode) as info:
        parse_code(bad)
    assert repr(bad) in str(info.value)
    assert "600000.SH" in str(info.value)  # says what a right one looks like


def test_a_number_no_board_uses_is_refused() -> None:
    with pytest.raises(InvalidCode, match=r"700000\.SH"):
        parse_code("700000.SH")


def test_a_non_string_code_is_refused_with_its_type() -> None:
    with pytest.raises(InvalidCode, match="int"):
        parse_code(600000)


def test_invalid_code_is_a_value_error_for_callers_that_catch_those() -> None:
    assert issubclass(InvalidCode, InvalidArgument)
    assert issubclass(InvalidCode, ValueError)


def test_normalize_codes_accepts_one_code_or_many_and_keeps_order_without_duplicates() -> None:
    assert normalize_codes("600000.sh") == ["600000.SH"]
    assert normalize_codes(["000001.SZ", "600000.SH", "000001.sz"]) == ["000001.SZ", "600000.SH"]


def test_normalize_codes_refuses_a_non_list() -> None:
    with pytest.raises(InvalidCode, match="42"):
        normalize_codes(42)


@pytest.mark.parametrize(
    ("board", "st", "ratio"),
    [
        (Board.MAIN, False, 0.10),
        (Board.MAIN, True, 0.05),
        (Board.CHINEXT, False, 0.20),
        (Board.CHINEXT, True, 0.20),
        (Board.STAR, False, 0.20),
        (Board.BJ, False, 0.30),
        (Board.ETF, False, 0.10),
        (Board.INDEX, False, None),
    ],
)
def test_daily_limit_ratio_by_board(board: Board, st: bool, ratio: float | None) -> None:
    assert limit_ratio(board, st) == ratio


def test_every_period_of_the_issue_is_known() -> None:
    assert list(PERIODS) == ["tick", "1m", "5m", "15m", "30m", "1h", "1d", "1w", "1mon"]


@pytest.mark.parametrize(
    ("name", "seconds", "base"),
    [
        ("tick", 0, "tick"),
        ("1m", 60, "1m"),
        ("5m", 300, "1m"),
        ("1h", 3600, "1m"),
        ("1d", 86400, "1d"),
        ("1w", 7 * 86400, "1d"),
        ("1mon", 30 * 86400, "1d"),
    ],
)
def test_periods_know_their_length_and_stored_base(name: str, seconds: int, base: str) -> None:
    period = parse_period(name)
    assert (period.seconds, period.base, str(period)) == (seconds, base, name)


@pytest.mark.parametrize("bad", ["1min", "2m", "1D", "", None, 60])
def test_an_unknown_period_is_refused_listing_the_known_ones(bad: object) -> None:
    with pytest.raises(InvalidPeriod) as info:
        parse_period(bad)
    assert repr(bad) in str(info.value)
    assert "1mon" in str(info.value)
