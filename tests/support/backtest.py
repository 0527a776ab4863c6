"""Small hand-made backtest results for the results, metrics, compliance and report tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from qmtkit.backtest.results import BacktestResult, empty_frame

DAY0 = date(2024, 1, 2)


def days(n: int, start: date = DAY0) -> list[date]:
    """``n`` consecutive calendar days (the metrics only care about the row order)."""
    return [start + timedelta(days=i) for i in range(n)]


def frame(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A result frame from row dicts, typed by the frame's schema."""
    if not rows:
        return empty_frame(name)
    return pl.DataFrame(rows, schema=empty_frame(name).schema)


def equity(
    totals: list[float],
    benchmark: list[float | None] | None = None,
    start: date = DAY0,
    dates: list[date] | None = None,
) -> pl.DataFrame:
    """An equity frame whose whole total is cash (market value 0) unless told otherwise."""
    ds = dates if dates is not None else days(len(totals), start)
    bench = benchmark if benchmark is not None else [None] * len(totals)
    return frame(
        "equity",
        [
            {
                "date": d,
                "cash": t,
                "frozen_cash": 0.0,
                "market_value": 0.0,
                "total": t,
                "benchmark": b,
            }
            for d, t, b in zip(ds, totals, bench, strict=True)
        ],
    )


def trade(
    t: datetime, order_id: int, code: str, side: str, price: float, volume: int, fee: float = 0.0
) -> dict[str, Any]:
    """One trade row (amount = price x volume)."""
    return {
        "time": t,
        "order_id": order_id,
        "code": code,
        "side": side,
        "price": price,
        "volume": volume,
        "amount": price * volume,
        "fee": fee,
    }


def order(
    t: datetime,
    order_id: int,
    code: str = "600000.SH",
    side: str = "buy",
    price: float = 10.0,
    volume: int = 100,
    status: int = 56,
    traded_volume: int | None = None,
    error: str | None = None,
    strategy: str = "test",
) -> dict[str, Any]:
    """One order row; filled in full at its price unless told otherwise."""
    traded = volume if traded_volume is None else traded_volume
    return {
        "time": t,
        "order_id": order_id,
        "code": code,
        "side": side,
        "price": price,
        "volume": volume,
        "price_type": 11,
        "status": status,
        "traded_volume": traded,
        "traded_price": price if traded else 0.0,
        "error": error,
        "strategy": strategy,
    }


def cancel(t: datetime, order_id: int, code: str = "600000.SH", ok: bool = True) -> dict[str, Any]:
    """One cancel row."""
    return {"time": t, "order_id": order_id, "code": code, "ok": ok}


def result(
    *,
    orders: list[dict[str, Any]] | None = None,
    trades: list[dict[str, Any]] | None = None,
    cancels: list[dict[str, Any]] | None = None,
    positions: list[dict[str, Any]] | None = None,
    equity_frame: pl.DataFrame | None = None,
    initial_cash: float = 100.0,
    meta: dict[str, str] | None = None,
) -> BacktestResult:
    """A BacktestResult from row lists (empty frames where none are given)."""
    return BacktestResult(
        orders=frame("orders", orders or []),
        trades=frame("trades", trades or []),
        cancels=frame("cancels", cancels or []),
        positions=frame("positions", positions or []),
        equity=equity_frame if equity_frame is not None else equity([initial_cash]),
        initial_cash=initial_cash,
        meta=meta or {},
    )


def sample_run(days_count: int = 300, seed: int = 7) -> BacktestResult:
    """A seeded year-and-a-bit of equity and benchmark with a few orders, trades and cancels."""
    import random

    rng = random.Random(seed)
    ds, d = [], DAY0
    while len(ds) < days_count:
        if d.weekday() < 5:
            ds.append(d)
        d += timedelta(days=1)
    total, bench = 1_000_000.0, 3500.0
    totals, benches = [], []
    for _ in ds:
        total *= 1 + rng.gauss(0.0006, 0.012)
        bench *= 1 + rng.gauss(0.0002, 0.011)
        totals.append(round(total, 2))
        benches.append(round(bench, 2))
    orders, trades, cancels = [], [], []
    for i in range(12):
        t = datetime.combine(ds[i * 20], datetime.min.time()).replace(hour=10)
        side = "buy" if i % 2 == 0 else "sell"
        price = round(10 + rng.random(), 2)
        orders.append(order(t, i + 1, side=side, price=price, volume=1000))
        trades.append(trade(t, i + 1, "600000.SH", side, price, 1000, fee=5.0))
    t = datetime.combine(ds[5], datetime.min.time()).replace(hour=14)
    orders.append(order(t, 100, status=54, traded_volume=0))
    cancels.append(cancel(t + timedelta(milliseconds=300), 100))
    orders.append(order(t, 101, status=57, traded_volume=0, error="risk:blacklist: <ST> name"))
    return BacktestResult(
        orders=frame("orders", orders),
        trades=frame("trades", trades),
        cancels=frame("cancels", cancels),
        positions=frame("positions", []),
        equity=equity(totals, benches, dates=ds),
        initial_cash=1_000_000.0,
        meta={"fill": "next_open", "period": "1d", "start": ds[0].isoformat()},
    )
