"""``limit_prices`` remembers its answers for codes that are not ST: a remembered answer must
equal the computed one for every board, text or member, and bad arguments must still be
refused with the value named after good ones were remembered."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import qmtkit.codes as codes
from qmtkit.codes import Board, band_prices, limit_prices, limit_ratio
from qmtkit.errors import InvalidArgument

LIMITED = [b for b in Board if b is not Board.INDEX]


def computed(pre_close: float, board: Board, is_st: bool) -> tuple[float, float]:
    ratio = limit_ratio(board, is_st)
    assert ratio is not None
    return band_prices(pre_close, ratio, ratio)


def test_remembered_limits_equal_computed_ones() -> None:
    rng = random.Random(12)
    prices = [round(rng.uniform(0.01, 3000.0), 2) for _ in range(400)] + [0.01, 1.005, 9.995]
    codes._LIMITS.clear()
    for _ in range(2):  # first computed and remembered, then answered from the memo
        for price in prices:
            for board in LIMITED:
                for is_st in (False, True):
                    want = computed(price, board, is_st)
                    assert limit_prices(price, board.value, is_st) == want, (price, board)
                    assert limit_prices(price, board, is_st) == want, (price, board)
    assert codes._LIMITS  # something was remembered


@pytest.mark.parametrize(
    ("pre_close", "board", "named"),
    [
        (math.nan, "main", "nan"),
        (math.inf, "main", "inf"),
        (-1.0, "main", "-1.0"),
        (0.0, "main", "0.0"),
        ("10", "main", "'10'"),
        (10.0, "index", "'index'"),
        (10.0, "nope", "'nope'"),
    ],
)
def test_bad_arguments_are_refused_after_good_ones_were_remembered(
    pre_close: object, board: str, named: str
) -> None:
    limit_prices(10.0, "main")
    with pytest.raises(InvalidArgument) as info:
        limit_prices(pre_close, board)  # type: ignore[arg-type]
    assert named in str(info.value)


def test_other_number_types_and_st_are_answered_as_before() -> None:
    codes._LIMITS.clear()
    assert limit_prices(10, "main") == limit_prices(10.0, "main") == (9.0, 11.0)
    assert limit_prices(np.float64(10.0), "main") == (9.0, 11.0)
    assert limit_prices(10.0, "main", is_st=True) == (9.5, 10.5)
    assert limit_prices(10.0, "main", is_st=1) == (9.5, 10.5)  # type: ignore[arg-type]
    assert limit_prices(10.0, "main") == (9.0, 11.0)


def test_the_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codes, "_LIMITS_MAX", 8)
    codes._LIMITS.clear()
    for i in range(1, 50):
        assert limit_prices(i / 100 + 1.0, "main") == computed(i / 100 + 1.0, Board.MAIN, False)
    assert len(codes._LIMITS["main"]) <= 8


def _decimal_band(base: float, up_ratio: float, down_ratio: float) -> tuple[float, float]:
    """The limits in decimal arithmetic on the shortest reprs, rounded half-up to the cent."""
    from decimal import ROUND_HALF_UP, Decimal

    b, cent = Decimal(repr(float(base))), Decimal("0.01")
    up = (b * (1 + Decimal(repr(up_ratio)))).quantize(cent, rounding=ROUND_HALF_UP)
    down = (b * (1 - Decimal(repr(down_ratio)))).quantize(cent, rounding=ROUND_HALF_UP)
    return float(max(cent, down)), float(up)


#: Every ratio pair in use (main, ST, ChiNext/STAR, BJ, the listing day's band), and odd ones
#: the whole-cent path must leave to the decimals (not whole percents, zero, 100 % down).
RATIOS = [
    (0.1, 0.1),
    (0.05, 0.05),
    (0.2, 0.2),
    (0.3, 0.3),
    (0.44, 0.36),
    (0.0, 0.0),
    (0.125, 0.075),
    (0.1, 1.0),
    (1.5, 0.99),
]


@pytest.mark.parametrize(("up", "down"), RATIOS)
def test_band_prices_in_whole_cents_equal_the_decimal_arithmetic(up: float, down: float) -> None:
    rng = np.random.default_rng(5)
    cents = np.concatenate([np.arange(1, 20_001), rng.integers(20_001, 2**42, 2_000)])
    odd = [1.005, 9.995, 10.005, 0.001, 0.004, 0.006, 12.3456, 2.0**40 / 100, 1e15, 3]
    band = band_prices.__wrapped__
    for price in [*(cents / 100.0).tolist(), *odd]:
        assert band(price, up, down) == _decimal_band(price, up, down), (price, up, down)
