"""Module-level runs for the sweep tests (worker processes import them by name)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from qmtkit.backtest.results import BacktestResult
from qmtkit.backtest.runner import BarContext
from qmtkit.client import Account, Client
from support.backtest import equity, result
from support.history import A


def drift_run(params: dict[str, Any]) -> BacktestResult:
    """Equity growing by ``drift`` a day for ``days`` days; writes its pid under ``out``."""
    if "out" in params:
        Path(params["out"], f"{params['drift']}.pid").write_text(str(os.getpid()))
    days = params.get("days", 5)
    totals = [100.0 * (1 + params["drift"]) ** (i + 1) for i in range(days)]
    return result(equity_frame=equity(totals), initial_cash=100.0)


def failing_run(params: dict[str, Any]) -> BacktestResult:
    """A run that fails for x == 2."""
    if params["x"] == 2:
        raise ValueError("no data for x=2")
    return drift_run({"drift": 0.01})


def not_a_result(params: dict[str, Any]) -> Any:
    """A run that returns the wrong thing."""
    return {"total": 1.0}


async def buy_once(qk: Client, account: Account, volume: int) -> None:
    """Buy ``volume`` shares of A at the first bar's close + 5 %, then hold."""
    async with qk.subscribe([A], "1d") as sub:
        async for batch in sub:
            if (await account.position(A)) is None and not await account.orders(True):
                await account.buy(A, volume, round(batch[0].close * 1.05, 2))


def buy_once_bars(frame: pl.DataFrame, ctx: BarContext, volume: int) -> None:
    """The cross-sectional form of `buy_once`."""
    row = frame.filter(pl.col("code") == A)
    if row.height and ctx.position(A) == 0 and not ctx.open_orders(A):
        ctx.buy(A, volume, round(float(row["close"][0]) * 1.05, 2))


async def burst(qk: Client, account: Account, count: int) -> None:
    """Send ``count`` resting limit buys of A at the first bar, all in one virtual instant."""
    async with qk.subscribe([A], "1d") as sub:
        async for _batch in sub:
            for i in range(count):
                await account.buy(A, 100, round(9.5 - (i % 50) * 0.01, 2))
            return
