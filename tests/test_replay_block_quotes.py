"""The bar books of an aligned daily replay by blocks of steps (``barbook.BlockQuotes``) equal
``quote`` of each code's bar and listing, step by step: limit-locked days, suspensions (no
volume, or the suspension flag), thin volume under the participation cap, slippage, an ST
code, an ETF's finer tick, a new listing's first days (rules of its own) and a code quoted
above its up limit. A whole backtest with the blocks gives the frames it gives without them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.replay import ReplayBackend
from qmtkit.backends.replay.barbook import BlockQuotes, quote
from qmtkit.backends.replay.market import ReplayMarket
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import ms_to_yyyymmdd, trading_days
from qmtkit.data.reference import Reference
from qmtkit.models import InstrumentDetail

PLAIN, LOCKED, HALTED, THIN, ST, ETF, NEW = (
    "600000.SH",
    "000001.SZ",
    "000002.SZ",
    "600001.SH",
    "600002.SH",
    "510300.SH",
    "688981.SH",
)
CODES = [PLAIN, LOCKED, HALTED, THIN, ST, ETF, NEW]
N_DAYS = 30


def _write(home: Path) -> str:
    """Every code with a record on every day (an aligned replay), each with its edge cases."""
    t = np.asarray(trading_days("SH", "20240102", None, count=-1)[:N_DAYS], dtype=np.int64)
    days = [int(d) for d in ms_to_yyyymmdd(t[[0, -1]])]
    rng = np.random.default_rng(12)
    bars = {}
    for code in CODES:
        close = np.round(10 * np.cumprod(1 + rng.normal(0, 0.03, N_DAYS)), 2)
        if code == ETF:
            close = np.round(close / 3, 3)
        pre = np.concatenate([[close[0]], close[:-1]])
        opn = np.round(pre * (1 + rng.normal(0, 0.02, N_DAYS)), 3 if code == ETF else 2)
        high = np.maximum(opn, close)
        low = np.minimum(opn, close)
        vol = rng.integers(20, 40_000, N_DAYS)
        flag = np.zeros(N_DAYS, dtype=np.int8)
        if code == LOCKED:
            for d in range(2, N_DAYS, 4):  # up on odd rounds, down on even ones
                up = d % 8 == 2
                lim = round(pre[d] * (1.1 if up else 0.9) + (-1e-9 if up else 1e-9), 2)
                opn[d] = high[d] = low[d] = close[d] = lim
                if d + 1 < N_DAYS:
                    pre[d + 1] = lim
            opn[N_DAYS - 1] = round(pre[N_DAYS - 1] * 1.15, 2)  # beyond the limit: held to it
        if code == HALTED:
            vol[5:8] = 0
            flag[12:14] = 1
        if code == NEW:  # no limits on its first five days: far beyond the ordinary ones
            opn[2], opn[3], opn[4] = (
                round(pre[2] * 0.6, 2),
                round(pre[3] * 0.7, 2),
                round(pre[4] * 1.5, 2),
            )
            low[2:5] = np.minimum(low[2:5], opn[2:5])
            high[2:5] = np.maximum(high[2:5], opn[2:5])
        if code == THIN:
            vol[:] = rng.integers(0, 4, N_DAYS)
        bars[code] = {
            "time": t,
            "open": opn,
            "high": high,
            "low": low,
            "close": close,
            "volume": vol.astype(np.int64),
            "amount": close * vol * 100,
            "preClose": pre,
            "suspendFlag": flag,
        }
    Cache(home).write_bars("1d", bars)
    item = InstrumentDetail(
        ExchangeID="SH", InstrumentID="688981", InstrumentName="new", OpenDate=str(days[0])
    )
    Reference(Cache(home).root).write_instruments("baostock", [item])
    return f"start={days[0]}&end={days[-1]}&codes={','.join(CODES)}&st={ST}&cash=10000000"


@pytest.mark.parametrize(("participation", "slippage"), [(1.0, 0.0), (0.05, 0.0), (0.3, 2.0)])
def test_block_books_equal_quote_of_each_bar_and_listing(
    tmp_path: Path, participation: float, slippage: float
) -> None:
    query = _write(tmp_path)
    start = query.split("&")[0].split("=")[1]
    t = trading_days("SH", start, None, count=-1)[:N_DAYS]
    market = ReplayMarket(
        Cache(tmp_path), CODES, "1d", int(t[0]), int(t[-1]) + 86_400_000 - 1, st_codes=[ST]
    )
    market.long_columns()  # what a fast form lays out
    block = BlockQuotes(market, participation, slippage)
    asked = [*CODES, "600999.SH"]  # a code the replay does not hold: no bar, no book
    seen_own = seen_none = 0
    for k in range(len(market)):
        day = market.step_day(k)
        for phase in ("open", "close"):
            got = block.at(asked, k, day, phase)
            want = []
            for code in asked:
                bar = market.bar_at(code, k)
                if bar is None:
                    continue
                q = quote(
                    bar, market.listing(code, day), phase, "next_open", participation, slippage
                )
                if q is not None:
                    want.append((code, *q))
            if k == 0:
                assert got is None  # no block for the first step: each code's own quote
                continue
            assert got == want, (k, phase)
            seen_own += np.isnan(market.facts_block(day).up).any()  # type: ignore[union-attr]
            seen_none += sum(q[1] is None or q[2] is None for q in want)
        assert block.at(asked, k, market.step_day(k) + 1, "open") is None  # another day's listing
    assert seen_own and seen_none  # the new listing's own days and locked sides were met


class _Orders:
    """Buys and sells of every code every day around its close (seeded)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(8)

    def __call__(self, frame: pl.DataFrame, ctx: BarContext) -> None:
        rng = self.rng
        for code, close in zip(frame["code"].to_list(), frame["close"].to_list(), strict=True):
            price = round(close * (1 + float(rng.uniform(-0.05, 0.05))), 2)
            if rng.random() < 0.6:
                ctx.buy(code, int(rng.integers(1, 20)) * 100, price)
            elif ctx.sellable(code) >= 100:
                ctx.sell(code, ctx.sellable(code) // 100 * 100, price)


@pytest.mark.filterwarnings("ignore:fill=close")
@pytest.mark.parametrize(
    "extra", ["", "&participation=0.05", "&slippage=2", "&fill=close&participation=0.2"]
)
async def test_a_backtest_with_block_books_gives_the_frames_of_one_without(
    tmp_path: Path, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"backtest://?{_write(tmp_path)}{extra}"
    used: list[int] = []
    at = BlockQuotes.at

    def counted(self: BlockQuotes, *args: Any) -> Any:
        found = at(self, *args)
        used.append(found is not None)
        return found

    monkeypatch.setattr(BlockQuotes, "at", counted)
    with_blocks = await run_backtest(url, on_bars=_Orders(), home=tmp_path)
    assert sum(used) > N_DAYS // 2

    def without(backend: ReplayBackend) -> None:
        backend._block_quotes = None
        monkeypatch.setattr(BlockQuotes, "at", lambda self, *args: None)

    plain = await run_backtest(url, on_bars=_Orders(), home=tmp_path, backend_hook=without)
    assert with_blocks.trades.height > 40
    for name in ("orders", "trades", "positions", "equity"):
        assert getattr(with_blocks, name).equals(getattr(plain, name)), name
    assert with_blocks.digest() == plain.digest()
