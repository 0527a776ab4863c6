"""Ex-rights adjustment (dividend_type none/front/back/front_ratio/back_ratio), by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.base import Dividend
from qmtkit.data.adjust import adjust_bars, adjust_frame, adjustment
from qmtkit.data.calendar import yyyymmdd_to_ms
from qmtkit.errors import InvalidArgument

D1, D2, D3, D4 = (int(yyyymmdd_to_ms(d)) for d in (20240603, 20240604, 20240605, 20240606))
EX = D3  # ex-date: 0.50 cash and 10-for-10 bonus (1 share per share)
CASH_BONUS = [Dividend(time=EX, interest=0.5, stockBonus=1.0)]


def bars() -> dict[str, np.ndarray]:
    return {
        "time": np.array([D1, D2, D3, D4]),
        "open": np.array([7.80, 9.00, 4.80, 5.20]),
        "high": np.array([8.20, 10.20, 5.10, 5.40]),
        "low": np.array([7.70, 8.90, 4.70, 5.00]),
        "close": np.array([8.00, 10.00, 5.00, 5.30]),
        "preClose": np.array([7.90, 8.00, 4.75, 5.00]),
        "volume": np.array([100, 200, 400, 300]),
        "amount": np.array([800.0, 2000.0, 2000.0, 1590.0]),
    }


def test_none_returns_the_raw_prices() -> None:
    out = adjust_bars(bars(), CASH_BONUS, "none")
    for k, v in bars().items():
        assert np.array_equal(out[k], v)


def test_front_maps_earlier_prices_by_the_ex_rights_formula() -> None:
    out = adjust_bars(bars(), CASH_BONUS, "front")
    # (10.00 - 0.50) / (1 + 1) = 4.75; (8.00 - 0.50) / 2 = 3.75; (9.00 - 0.50) / 2 = 4.25
    assert out["close"].tolist() == pytest.approx([3.75, 4.75, 5.00, 5.30])
    assert out["open"].tolist() == pytest.approx([3.65, 4.25, 4.80, 5.20])
    assert out["high"][1] == pytest.approx(4.85)  # (10.20 - 0.50) / 2


def test_back_maps_later_prices_by_the_inverse_formula() -> None:
    out = adjust_bars(bars(), CASH_BONUS, "back")
    # 5.00 * 2 + 0.50 = 10.50; 5.30 * 2 + 0.50 = 11.10; before the ex-date unchanged
    assert out["close"].tolist() == pytest.approx([8.00, 10.00, 10.50, 11.10])
    assert out["preClose"][2] == pytest.approx(10.00)  # the reference 4.75 maps back to 10.00


def test_front_ratio_multiplies_earlier_prices_by_reference_over_close() -> None:
    out = adjust_bars(bars(), CASH_BONUS, "front_ratio")
    # ratio = 4.75 / 10.00 = 0.475: 8.00 -> 3.80, 10.00 -> 4.75, 9.00 -> 4.275
    assert out["close"].tolist() == pytest.approx([3.80, 4.75, 5.00, 5.30])
    assert out["open"][1] == pytest.approx(4.275)


def test_back_ratio_divides_later_prices_by_the_ratio() -> None:
    out = adjust_bars(bars(), CASH_BONUS, "back_ratio")
    # 5.00 / 0.475 = 10.526316; 5.30 / 0.475 = 11.157895
    assert out["close"].tolist() == pytest.approx([8.00, 10.00, 10.526316, 11.157895])


def test_volume_and_amount_are_never_changed() -> None:
    for mode in ("front", "back", "front_ratio", "back_ratio"):
        out = adjust_bars(bars(), CASH_BONUS, mode)
        assert np.array_equal(out["volume"], bars()["volume"])
        assert np.array_equal(out["amount"], bars()["amount"])


def test_two_ex_dates_chain_in_order() -> None:
    divs = [
        Dividend(time=D2, interest=0.2),
        Dividend(time=D4, stockGift=0.5, allotNum=0.0),
    ]
    out = adjust_bars(bars(), divs, "front")
    # bar 1 (8.00) sees both: (8.00 - 0.2) = 7.80, then / 1.5 = 5.20
    # bars 2-3 see only the second: 10.00 / 1.5, 5.00 / 1.5
    assert out["close"].tolist() == pytest.approx([5.20, 10 / 1.5, 5 / 1.5, 5.30])
    back = adjust_bars(bars(), divs, "back")
    # bar 4 sees both, newest first: 5.30 * 1.5 = 7.95, then + 0.2 = 8.15
    assert back["close"].tolist() == pytest.approx([8.00, 10.20, 5.20, 8.15])


def test_rights_issue_adds_the_allotment_cash() -> None:
    divs = [Dividend(time=EX, allotNum=0.3, allotPrice=4.0)]
    out = adjust_bars(bars(), divs, "front")
    # (10.00 + 4.0 * 0.3) / 1.3 = 8.615385
    assert out["close"][1] == pytest.approx(11.2 / 1.3)


def test_front_then_back_ratio_differ_by_one_constant_factor() -> None:
    f = adjust_bars(bars(), CASH_BONUS, "front_ratio")["close"]
    b = adjust_bars(bars(), CASH_BONUS, "back_ratio")["close"]
    assert np.allclose(b / f, b[0] / f[0])


def test_minute_bars_before_the_ex_date_midnight_are_adjusted() -> None:
    t = np.array([EX - 9 * 3_600_000, EX + 9 * 3_600_000 + 30 * 60_000 + 2 * 3_600_000])
    scale, shift = adjustment(t, [10.0, 5.0], CASH_BONUS, "front")
    assert scale.tolist() == [0.5, 1.0]
    assert shift.tolist() == [-0.25, 0.0]


def test_back_ratio_uses_dr_when_no_bar_precedes_the_ex_date() -> None:
    divs = [Dividend(time=D1 - 86_400_000, interest=0.1, dr=1.25)]
    out = adjust_bars(bars(), divs, "back_ratio")
    assert out["close"].tolist() == pytest.approx([10.0, 12.5, 6.25, 6.625])
    with pytest.raises(InvalidArgument, match="no dr"):
        adjust_bars(bars(), [Dividend(time=D1 - 86_400_000, interest=0.1)], "back_ratio")


def test_dividend_columns_are_accepted() -> None:
    cols: dict[str, list[float]] = {"time": [EX], "interest": [0.5], "stockBonus": [1.0]}
    assert adjust_bars(bars(), cols, "front")["close"].tolist() == pytest.approx(
        [3.75, 4.75, 5.00, 5.30]
    )


def test_polars_frame_matches_numpy() -> None:
    df = pl.DataFrame(bars())
    out = adjust_frame(df, CASH_BONUS, "front_ratio")
    expected = adjust_bars(bars(), CASH_BONUS, "front_ratio")
    for c in ("open", "high", "low", "close", "preClose"):
        assert np.allclose(out[c].to_numpy(), expected[c])
    assert out["volume"].to_list() == [100, 200, 400, 300]


def test_bad_mode_is_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match=r"'forward'.*front_ratio"):
        adjust_bars(bars(), CASH_BONUS, "forward")


def test_bad_dividends_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="Dividend"):
        adjust_bars(bars(), [{"time": EX}], "front")  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="lack 'time'"):
        adjust_bars(bars(), {"interest": [0.1]}, "front")


def test_unsorted_bars_are_refused() -> None:
    b = bars()
    b["time"] = b["time"][::-1].copy()
    with pytest.raises(InvalidArgument, match="not ascending"):
        adjust_bars(b, CASH_BONUS, "front")
