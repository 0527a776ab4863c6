"""The shared argument checks (qmtkit.checks) and the remembered code parser (qmtkit.codes)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qmtkit import codes
from qmtkit.checks import (
    check_order,
    finite_number,
    is_finite,
    is_int,
    is_real,
    is_whole,
    positive_int,
    positive_number,
)
from qmtkit.errors import InvalidArgument, InvalidCode

GOOD = {
    "order_type": 23,
    "order_volume": 100,
    "price_type": 11,
    "price": 10.5,
    "strategy_name": "",
    "order_remark": "",
}


def test_a_bool_is_never_a_number() -> None:
    assert not any(f(True) for f in (is_int, is_real, is_finite, is_whole))


def test_numpy_integers_are_whole_but_not_int() -> None:
    assert is_whole(np.int64(3)) and not is_int(np.int64(3))
    assert not is_whole(np.bool_(True))


def test_is_finite_refuses_nan_and_infinity() -> None:
    assert is_real(math.nan) and not is_finite(math.nan) and not is_finite(-math.inf)


def test_positive_int_names_the_value_and_what_it_counts() -> None:
    with pytest.raises(InvalidArgument, match=r"bad order_id 0: expected a positive int from"):
        positive_int("order_id", 0, " from an order")


@pytest.mark.parametrize("bad", [True, math.nan, math.inf, "1", None])
def test_finite_number_refuses_bools_nan_infinity_and_text(bad: object) -> None:
    with pytest.raises(InvalidArgument, match=r"bad rate .*: expected a finite number such as"):
        finite_number("rate", bad, " such as 0.02")


@pytest.mark.parametrize("bad", [0, -0.5, True, math.inf, math.nan])
def test_positive_number_refuses_zero_negatives_bools_and_infinity(bad: object) -> None:
    with pytest.raises(InvalidArgument, match=r"bad timeout .*: expected a positive number of s"):
        positive_number("timeout", bad, " of seconds")


def test_number_checks_hand_back_floats() -> None:
    assert finite_number("x", -3) == -3.0 and type(positive_number("x", 2)) is float


def test_a_good_order_passes() -> None:
    check_order(**GOOD)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"order_type": 25}, "bad order_type 25"),
        ({"order_volume": 100.0}, "bad order_volume 100.0"),
        ({"price_type": True}, "bad price_type True"),
        ({"price": math.nan}, "bad price nan"),
        ({"price": 0.0}, "FIX_PRICE"),
        ({"strategy_name": 1}, "strategy_name must be a str"),
        ({"order_remark": None}, "order_remark must be a str"),
    ],
)
def test_a_bad_order_argument_is_named(change: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        check_order(**{**GOOD, **change})


def test_a_negative_price_is_refused_whatever_the_price_type() -> None:
    check_order(**{**GOOD, "price_type": 5, "price": 0.0})
    with pytest.raises(InvalidArgument, match=r"bad price -1\.0"):
        check_order(**{**GOOD, "price_type": 5, "price": -1.0})


def test_the_code_parser_remembers_what_it_parsed() -> None:
    first = codes.parsed_code(" 600000.sh")
    assert first == ("600000.SH", codes.parse_code("600000.SH"), codes.Board.MAIN)
    assert codes.parsed_code(" 600000.sh") is first
    assert codes.normalize_code(" 600000.sh") == "600000.SH"


def test_the_code_parser_forgets_invalid_codes_and_stays_bounded() -> None:
    with pytest.raises(InvalidCode):
        codes.parsed_code("600000.XX")
    assert "600000.XX" not in codes._SEEN
    for n in range(codes._SEEN_MAX + 5):
        codes.parsed_code(f"{600000 + n % 1000:06d}.SH" + " " * (n // 1000))
    assert len(codes._SEEN) <= codes._SEEN_MAX
