"""The SMA(5)/SMA(20) crossover gives backtrader's trades (next-open fills), tie days aside.

backtrader is a dev-only dependency: the test is skipped where it is not installed.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qmtkit.backtest.runner import run_backtest
from qmtkit.client import Account, Client
from qmtkit.codes import limit_prices
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import trading_days

bt = pytest.importorskip("backtrader")
pd = pytest.importorskip("pandas")

CODES = ["000001.SZ", "000002.SZ", "600000.SH", "600001.SH"]
DAYS = 160


def history() -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(7)
    t = np.asarray(trading_days("SH", "20230103", None, count=-1)[:DAYS], dtype=np.int64)
    out = {}
    for code in CODES:
        close = np.round(20 * np.cumprod(1 + np.clip(rng.normal(0, 0.02, DAYS), -0.08, 0.08)), 2)
        pre = np.concatenate([[20.0], close[:-1]])
        opn = np.round(pre * (1 + np.clip(rng.normal(0, 0.005, DAYS), -0.02, 0.02)), 2)
        high, low = np.maximum(opn, close), np.minimum(opn, close)
        vol = np.full(DAYS, 100_000)
        out[code] = {"time": t, "open": opn, "high": high, "low": low, "close": close,
                     "volume": vol, "amount": close * vol * 100, "preClose": pre}  # fmt: skip
    return out


def sma_diffs(close: np.ndarray) -> np.ndarray:
    fast = np.convolve(close, np.ones(5) / 5, "valid")[15:]
    slow = np.convolve(close, np.ones(20) / 20, "valid")
    return fast - slow


async def strategy(qk: Client, account: Account) -> None:
    window: dict[str, deque[float]] = {c: deque(maxlen=20) for c in CODES}
    prev: dict[str, float] = {}
    held = dict.fromkeys(CODES, False)
    async with qk.subscribe(CODES, "1d") as bars:
        async for batch in bars:
            for bar in batch:
                w = window[bar.stock_code]
                w.append(bar.close)
                if len(w) < 20:
                    continue
                diff = sum(list(w)[-5:]) / 5 - sum(w) / 20
                before = prev.get(bar.stock_code)
                prev[bar.stock_code] = diff
                if before is None:
                    continue
                down, up = limit_prices(bar.close, "main")
                if diff > 0 and before < 0 and not held[bar.stock_code]:
                    await account.buy(bar.stock_code, 100, up)
                    held[bar.stock_code] = True
                elif diff < 0 and before > 0 and held[bar.stock_code]:
                    await account.sell(bar.stock_code, 100, down)
                    held[bar.stock_code] = False


def backtrader_trades(bars: dict[str, dict[str, Any]]) -> set[tuple[Any, ...]]:
    trades: set[tuple[Any, ...]] = set()

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.x = {
                d._name: bt.ind.CrossOver(
                    bt.ind.SMA(d.close, period=5), bt.ind.SMA(d.close, period=20)
                )
                for d in self.datas
            }

        def next(self) -> None:
            for d in self.datas:
                size = self.getposition(d).size
                if self.x[d._name][0] > 0 and size == 0:
                    self.buy(data=d, size=100)
                elif self.x[d._name][0] < 0 and size > 0:
                    self.sell(data=d, size=100)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                day = bt.num2date(order.executed.dt).date()
                side = "buy" if order.isbuy() else "sell"
                trades.add((order.data._name, day, side, round(order.executed.price, 2)))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1e9)
    for code, b in bars.items():
        cols = {k: b[k] for k in ("open", "high", "low", "close", "volume")}
        df = pd.DataFrame(cols, index=pd.to_datetime(b["time"] + 8 * 3_600_000, unit="ms"))
        df["openinterest"] = 0
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=code)
    cerebro.addstrategy(SmaCross)
    cerebro.run(runonce=False)
    return trades


async def test_crossover_trades_equal_backtraders_away_from_ties(tmp_path: Path) -> None:
    bars = history()
    for b in bars.values():  # the comparison is only exact where no SMA difference is a tie
        assert np.all(np.abs(sma_diffs(b["close"])) > 1e-9)
    Cache(tmp_path).write_bars("1d", bars)
    url = f"backtest://?start=20230103&end=20231231&codes={','.join(CODES)}&cash=10000000"
    result = await run_backtest(url, strategy, home=tmp_path)
    ours = {
        (code, time.date(), side, round(price, 2))
        for code, time, side, price in result.trades.select(
            "code", "time", "side", "price"
        ).iter_rows()
    }
    theirs = backtrader_trades(bars)
    assert len(theirs) > 10
    assert ours == theirs
