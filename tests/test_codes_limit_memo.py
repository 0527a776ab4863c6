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
