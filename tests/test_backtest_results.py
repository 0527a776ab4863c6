"""BacktestResult: frames are checked on construction and digested canonically."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from qmtkit.backtest.results import SCHEMAS, BacktestResult, empty_frame
from qmtkit.errors import InvalidArgument
from support.backtest import cancel, equity, frame, order, result, trade

T0 = datetime(2024, 1, 2, 9, 30)


def sample() -> BacktestResult:
    return result(
        orders=[order(T0, 1), order(T0, 2, side="sell", status=57, traded_volume=0, error="x")],
        trades=[trade(T0, 1, "600000.SH", "buy", 10.0, 100, fee=5.0)],
        cancels=[cancel(T0, 2, ok=False)],
        positions=[
            {
                "date": date(2024, 1, 2),
                "code": "600000.SH",
                "volume": 100,
                "can_use_volume": 0,
                "close": 10.5,
                "market_value": 1050.0,
            }
        ],
        equity_frame=equity([10000.0, 10050.0], [3000.0, None]),
        initial_cash=10000.0,
        meta={"fill": "next_open", "start": "20240102"},
    )


def test_a_well_formed_result_keeps_its_frames_in_canonical_column_order() -> None:
    base = sample()
    shuffled = BacktestResult(
        orders=base.orders.select(reversed(base.orders.columns)),
        trades=base.trades,
        cancels=base.cancels,
        positions=base.positions,
        equity=base.equity,
        initial_cash=10000,
        meta=base.meta,
    )
    assert shuffled.orders.columns == list(SCHEMAS["orders"])
    assert shuffled.initial_cash == 10000.0
    assert isinstance(shuffled.initial_cash, float)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(InvalidArgument, match=r"trades lacks column\(s\) \['fee'\]"):
        BacktestResult(
            orders=empty_frame("orders"),
            trades=empty_frame("trades").drop("fee"),
            cancels=empty_frame("cancels"),
            positions=empty_frame("positions"),
            equity=empty_frame("equity"),
            initial_cash=1.0,
            meta={},
        )


def test_a_mistyped_column_is_named_with_both_dtypes() -> None:
    orders = empty_frame("orders").with_columns(pl.col("volume").cast(pl.Float64))
    with pytest.raises(InvalidArgument, match=r"orders\.volume has dtype Float64, expected Int64"):
        BacktestResult(
            orders=orders,
            trades=empty_frame("trades"),
            cancels=empty_frame("cancels"),
            positions=empty_frame("positions"),
            equity=empty_frame("equity"),
            initial_cash=1.0,
        )


def test_a_time_column_in_another_unit_is_refused() -> None:
    cancels = empty_frame("cancels").with_columns(pl.col("time").cast(pl.Datetime("us")))
    with pytest.raises(InvalidArgument, match=r"cancels\.time has dtype"):
        BacktestResult(
            orders=empty_frame("orders"),
            trades=empty_frame("trades"),
            cancels=cancels,
            positions=empty_frame("positions"),
            equity=empty_frame("equity"),
            initial_cash=1.0,
        )


def test_an_extra_column_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"equity has unexpected column\(s\) \['nav'\]"):
        result(equity_frame=equity([1.0]).with_columns(nav=pl.lit(1.0)))


def test_nulls_are_refused_outside_the_nullable_columns() -> None:
    with pytest.raises(InvalidArgument, match=r"orders\.code holds 1 null"):
        result(orders=[{**order(T0, 1), "code": None}])
    # The refusal reason and the benchmark may be null.
    assert result(orders=[order(T0, 1, error=None)], equity_frame=equity([1.0], [None]))


def test_a_side_other_than_buy_or_sell_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"trades\.side holds \['BUY'\]"):
        result(trades=[trade(T0, 1, "600000.SH", "BUY", 10.0, 100)])


def test_duplicated_order_ids_and_unsorted_days_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"duplicated order_id\(s\) \[7\]"):
        result(orders=[order(T0, 7), order(T0, 7)])
    with pytest.raises(InvalidArgument, match="strictly increasing"):
        result(equity_frame=equity([1.0, 2.0], dates=[date(2024, 1, 3), date(2024, 1, 2)]))


@pytest.mark.parametrize("cash", [0.0, -5.0, float("nan"), float("inf"), "100", True])
def test_initial_cash_must_be_a_positive_finite_number(cash: object) -> None:
    with pytest.raises(InvalidArgument, match="initial_cash"):
        result(initial_cash=cash)  # type: ignore[arg-type]


def test_meta_must_map_strings_to_strings() -> None:
    with pytest.raises(InvalidArgument, match=r"meta must map str to str, got 'seed': 7"):
        result(meta={"seed": 7})  # type: ignore[dict-item]


def test_a_frame_that_is_not_a_polars_frame_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="orders must be a polars DataFrame, got list"):
        BacktestResult(
            orders=[],  # type: ignore[arg-type]
            trades=empty_frame("trades"),
            cancels=empty_frame("cancels"),
            positions=empty_frame("positions"),
            equity=empty_frame("equity"),
            initial_cash=1.0,
        )


def test_identical_inputs_give_identical_digests() -> None:
    first, second = sample().digest(), sample().digest()
    assert first == second
    assert len(first) == 64 and int(first, 16) >= 0


def test_the_digest_ignores_column_order_but_sees_every_value() -> None:
    base = sample()
    reordered = BacktestResult(
        orders=base.orders.select(reversed(base.orders.columns)),
        trades=base.trades,
        cancels=base.cancels,
        positions=base.positions,
        equity=base.equity,
        initial_cash=base.initial_cash,
        meta=dict(reversed(list(base.meta.items()))),
    )
    assert reordered.digest() == base.digest()
    changed = [
        BacktestResult(**{**vars(base), "initial_cash": 10000.01}),
        BacktestResult(**{**vars(base), "meta": {**base.meta, "fill": "close"}}),
        BacktestResult(
            **{**vars(base), "trades": base.trades.with_columns(fee=pl.col("fee") + 1e-9)}
        ),
        BacktestResult(**{**vars(base), "orders": base.orders.with_columns(error=pl.lit(None))}),
        BacktestResult(**{**vars(base), "orders": base.orders.reverse()}),
        BacktestResult(
            **{**vars(base), "equity": base.equity.with_columns(benchmark=pl.lit(3000.0))}
        ),
    ]
    digests = {c.digest() for c in changed}
    assert base.digest() not in digests
    assert len(digests) == len(changed)


def test_the_digest_separates_string_boundaries_and_null_from_empty() -> None:
    a = result(orders=[order(T0, 1, strategy="ab"), order(T0, 2, strategy="c")])
    b = result(orders=[order(T0, 1, strategy="a"), order(T0, 2, strategy="bc")])
    c = result(orders=[order(T0, 1, error="")])
    d = result(orders=[order(T0, 1, error=None)])
    assert a.digest() != b.digest()
    assert c.digest() != d.digest()


def test_empty_frame_names_the_known_frames() -> None:
    assert empty_frame("trades").schema == pl.Schema(SCHEMAS["trades"])
    with pytest.raises(InvalidArgument, match="unknown result frame 'fills'"):
        empty_frame("fills")
    assert frame("cancels", []).height == 0


def _position(day: date, code: str) -> dict[str, object]:
    return {
        "date": day,
        "code": code,
        "volume": 100,
        "can_use_volume": 100,
        "close": 10.0,
        "market_value": 1000.0,
    }


def test_a_position_listed_twice_on_one_day_is_refused_naming_it() -> None:
    rows = [
        _position(date(2024, 1, 2), "600000.SH"),
        _position(date(2024, 1, 2), "000001.SZ"),
        _position(date(2024, 1, 3), "600000.SH"),
        _position(date(2024, 1, 3), "600000.SH"),
    ]
    with pytest.raises(InvalidArgument, match=r"more than one row for \(date, code\).*600000"):
        result(positions=rows)


def test_the_same_code_on_different_days_and_codes_on_one_day_are_not_repeats() -> None:
    rows = [_position(date(2024, 1, d), c) for d in (2, 3, 4) for c in ("600000.SH", "000001.SZ")]
    assert result(positions=rows).positions.height == 6
