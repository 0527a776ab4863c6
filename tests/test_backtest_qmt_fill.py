"""The ``qmt`` fill model: every order judged by its own limit against each bar it meets.

QMT's rule for an order placed at a bar's close: a limit inside the bar's low–high fills at the
limit; a buy above the high (a sell below the low) fills at the close; otherwise it rests.
A resting order on a later bar: at the open if the open is already at or better than its
limit, else at its limit if the bar's range reaches it, else it keeps resting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.replay.qmtfill import price_groups, qmt_price
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.constants import OrderType
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import yyyymmdd_to_ms
from support.history import A
from support.history import daily_bars as _bars

BUY, SELL = int(OrderType.STOCK_BUY), int(OrderType.STOCK_SELL)
LOW, HIGH, CLOSE = 9.90, 10.20, 10.00


@pytest.mark.parametrize(
    ("side", "limit", "price"),
    [
        (BUY, 10.05, 10.05),  # inside the range: at the limit
        (BUY, 9.90, 9.90),  # at the low: reached
        (BUY, 10.50, CLOSE),  # above the high: at the close
        (BUY, 9.80, None),  # below the low: never reached
        (SELL, 10.05, 10.05),
        (SELL, 10.20, 10.20),
        (SELL, 9.50, CLOSE),  # below the low: at the close
        (SELL, 10.30, None),  # above the high: never reached
    ],
)
def test_qmt_price_is_the_limit_inside_the_range_else_the_close_if_it_crosses(
    side: int, limit: float, price: float | None
) -> None:
    assert qmt_price(side, limit, LOW, HIGH, CLOSE) == price


def test_resting_orders_are_grouped_by_their_price_best_first() -> None:
    orders = [
        (1, BUY, 9.95),
        (2, BUY, 10.10),
        (3, BUY, 10.50),  # above the high: at the close, with 4
        (4, BUY, 10.00),
        (5, BUY, 9.80),  # not reached: left out
        (6, SELL, 10.15),
        (7, SELL, 9.00),  # below the low: at the close
    ]
    assert price_groups(orders, LOW, HIGH, CLOSE) == [
        (BUY, 10.10, [2]),
        (BUY, 10.00, [3, 4]),  # the better limit first
        (BUY, 9.95, [1]),
        (SELL, 10.00, [7]),
        (SELL, 10.15, [6]),
    ]


def write_minutes(home: Path, rows: list[tuple[float, float, float, float, int]]) -> str:
    """One day of minute bars of A from 09:31 (labelled by their end)."""
    day0 = int(yyyymmdd_to_ms([20240102])[0])
    t = day0 + (9 * 60 + 31) * 60_000 + np.arange(len(rows), dtype=np.int64) * 60_000
    o, h, lo, c, v = (np.asarray(x) for x in zip(*rows, strict=True))
    Cache(home).write_bars(
        "1m",
        {
            A: {
                "time": t,
                "open": o.astype(float),
                "high": h.astype(float),
                "low": lo.astype(float),
                "close": c.astype(float),
                "volume": v.astype(np.int64),
                "amount": (c * v * 100).astype(float),
                "preClose": np.full(len(rows), 10.0),
            }
        },
    )
    return f"backtest://?start=20240102&end=20240102&period=1m&codes={A}&fill=qmt"


def trades_of(frame: pl.DataFrame) -> list[tuple[int, float, int, str]]:
    """(order id, price, volume, HH:MM) of each trade, in the order they happened."""
    return [
        (r["order_id"], r["price"], r["volume"], r["time"].strftime("%H:%M"))
        for r in frame.iter_rows(named=True)
    ]


async def test_a_resting_buy_fills_at_its_limit_when_a_later_bar_reaches_it(
    tmp_path: Path,
) -> None:
    url = write_minutes(
        tmp_path,
        [
            (10.00, 10.05, 9.98, 10.00, 500),  # 09:31: both orders placed at its close rest
            (9.99, 10.01, 9.93, 10.00, 500),  # 09:32: reaches 9.95, not 9.90
            (9.88, 9.92, 9.85, 9.90, 500),  # 09:33: opens below 9.90
        ],
    )
    placed: list[int] = []

    def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        if not placed:
            placed.append(ctx.buy(A, 300, 9.90).order_id)
            placed.append(ctx.buy(A, 200, 9.95).order_id)

    result = await run_backtest(url, on_bars=on_bars, home=tmp_path)
    low_buy, high_buy = placed
    assert trades_of(result.trades) == [
        # At its own limit inside the 09:32 bar's range, at that bar's close; its close
        # (10.00) would not have crossed it.
        (high_buy, 9.95, 200, "09:32"),
        # The 09:33 bar (09:32-09:33) opens at 9.88, better than the limit 9.90: at the open.
        (low_buy, 9.88, 300, "09:32"),
    ]


async def test_resting_orders_share_one_bars_volume_cap(tmp_path: Path) -> None:
    url = write_minutes(
        tmp_path,
        [
            (10.00, 10.05, 9.98, 10.00, 500),
            (9.99, 10.01, 9.90, 10.00, 8),  # 8 lots: a quarter is 200 shares
        ],
    )
    placed: list[int] = []

    def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        if not placed:
            placed.append(ctx.buy(A, 100, 9.96).order_id)
            placed.append(ctx.buy(A, 300, 9.94).order_id)

    result = await run_backtest(url, on_bars=on_bars, home=tmp_path)
    first, second = placed
    # The better limit is reached first and fills whole; the other gets what is left.
    assert [(o, p, v) for o, p, v, _ in trades_of(result.trades)] == [
        (first, 9.96, 100),
        (second, 9.94, 100),
    ]


async def test_a_new_order_fills_as_qmts_own_backtest_does(tmp_path: Path) -> None:
    Cache(tmp_path).write_bars("1d", {A: _bars([(10.0, 10.2, 9.9, 10.0, 10_000)] * 2)})
    url = f"backtest://?start=20240102&end=20240103&codes={A}&fill=qmt"
    placed: list[int] = []

    def on_bars(frame: pl.DataFrame, ctx: BarContext) -> None:
        if not placed:
            placed.append(ctx.buy(A, 100, 10.05).order_id)  # inside 9.90-10.20
            placed.append(ctx.buy(A, 100, 10.50).order_id)  # above the high
            placed.append(ctx.buy(A, 100, 9.80).order_id)  # below the low: rests, expires

    result = await run_backtest(url, on_bars=on_bars, home=tmp_path)
    inside, above, below = placed
    assert [(o, p) for o, p, _, _ in trades_of(result.trades)] == [(inside, 10.05), (above, 10.0)]
    expired = result.orders.filter(pl.col("order_id") == below)
    assert expired["traded_volume"].to_list() == [0]
