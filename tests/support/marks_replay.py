"""A small daily backtest with suspensions, late starts and ex-rights; holds no tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from qmtkit.backends.base import Dividend
from qmtkit.backtest.results import BacktestResult
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import ms_to_yyyymmdd, trading_days

N_CODES, N_DAYS = 40, 120
CODES = [f"60{i:04d}.SH" for i in range(N_CODES)]


def _bars(aligned: bool) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(11)
    t = np.asarray(trading_days("SH", "20200102", None, count=-1)[:N_DAYS], dtype=np.int64)
    out = {}
    for i, code in enumerate(CODES):
        p0 = rng.uniform(5, 30)
        close = np.round(p0 * np.cumprod(1 + np.clip(rng.normal(0, 0.02, N_DAYS), -0.08, 0.08)), 2)
        pre = np.concatenate([[round(p0, 2)], close[:-1]])
        opn = np.round(pre * (1 + np.clip(rng.normal(0, 0.005, N_DAYS), -0.02, 0.02)), 2)
        vol = rng.integers(100_000, 1_000_000, N_DAYS)
        cols = {
            "time": t,
            "open": opn,
            "high": np.maximum(opn, close),
            "low": np.minimum(opn, close),
            "close": close,
            "volume": vol,
            "amount": close * vol * 100,
            "preClose": pre,
        }
        keep = np.ones(N_DAYS, dtype=bool)
        if not aligned and i % 7 == 1:
            keep[30 + i : 38 + i] = False  # suspended for a week
        if not aligned and i % 9 == 4:
            keep[: 20 + i] = False  # listed late
        out[code] = {k: v[keep] for k, v in cols.items()}
    return out


class Churn:
    """Buys and sells by a rule of each close's cents: many holdings, turned over daily."""

    def __call__(self, frame: pl.DataFrame, ctx: BarContext) -> None:
        for code, close in zip(frame["code"].to_list(), frame["close"].to_list(), strict=True):
            cents = round(close * 100)
            if cents % 3 == 0:
                ctx.buy(code, 100 * (1 + cents % 4), round(close * 1.05, 2))
            elif cents % 5 == 1 and ctx.sellable(code):
                volume = ctx.sellable(code) if cents % 2 else 100
                ctx.sell(code, volume, round(close * 0.95, 2))


def run_small_backtest(home: Path, extra: str = "", *, aligned: bool = False) -> BacktestResult:
    """Cache the data under ``home`` and run ``Churn`` over it (``extra``: more URL options)."""
    bars = _bars(aligned)
    cache = Cache(home)
    cache.write_bars("1d", bars)
    t = bars[CODES[0]]["time"]
    for i, code in enumerate(CODES[10:20]):
        ex = int(t[25 + 5 * i])
        cache.write_dividends(code, [Dividend(time=ex, interest=0.2, stockBonus=0.3 * (i % 2))])
    first, last = (int(x) for x in ms_to_yyyymmdd(np.asarray([t[0], t[-1]])))
    url = (
        f"backtest://?start={first}&end={last}&codes={','.join(CODES)}&cash=100000000"
        f"&home={home}{extra}"
    )
    return asyncio.run(run_backtest(url, on_bars=Churn()))
