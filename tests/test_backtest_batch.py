"""``run_backtest(..., batch=N)``: one cross-sectional call per N timestamps of a tick replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import yyyymmdd_to_ms
from qmtkit.data.schema import TICK_DTYPES
from qmtkit.errors import InvalidArgument

CODES = ("600000.SH", "000001.SZ")
N = 10
DAY0 = int(yyyymmdd_to_ms([20240102])[0])
TIMES = DAY0 + 9 * 3_600_000 + 30 * 60_000 + np.arange(N, dtype=np.int64) * 3000


@pytest.fixture
def url(tmp_path: Path) -> str:
    data = {}
    for code in CODES:
        price = np.round(10 + 0.01 * np.arange(N), 2)
        cols = {k: np.zeros(N, dtype=d) for k, d in TICK_DTYPES.items()}
        cols.update(time=TIMES, lastPrice=price, open=price, high=price, low=price)
        cols.update(lastClose=np.full(N, 10.0), volume=np.arange(N) * 10)
        cols.update(askPrice1=price + 0.01, bidPrice1=price, askVol1=np.full(N, 50))
        cols.update(bidVol1=np.full(N, 50))
        data[code] = cols
    Cache(tmp_path).write_bars("tick", data)
    return (
        f"backtest://?start=20240102&end=20240102&period=tick&codes={','.join(CODES)}"
        f"&home={tmp_path}"
    )


class Calls:
    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []
        self.nows: list[int] = []

    def __call__(self, frame: pl.DataFrame, ctx: BarContext) -> None:
        self.frames.append(frame)
        self.nows.append(ctx.now())


async def test_each_call_gets_its_batch_of_timestamps_at_the_last_ones_time(url: str) -> None:
    calls = Calls()
    await run_backtest(url, on_bars=calls, batch=4)
    times = [f["time"].dt.epoch("ms").to_list() for f in calls.frames]
    # Ten tick times in batches of 4, 4 and the day's last 2; every code each time.
    assert [len(t) for t in times] == [8, 8, 4]
    assert [t for ts in times for t in ts] == [int(t) for t in TIMES for _ in CODES]
    assert calls.nows == [int(TIMES[3]), int(TIMES[7]), int(TIMES[9])]


async def test_a_batch_of_one_is_the_per_timestamp_form(url: str) -> None:
    calls = Calls()
    await run_backtest(url, on_bars=calls)
    assert [f.height for f in calls.frames] == [len(CODES)] * N
    assert calls.nows == [int(t) for t in TIMES]


async def test_an_order_from_a_batch_is_placed_at_the_batch_end(url: str) -> None:
    def buy_once(frame: pl.DataFrame, ctx: BarContext) -> None:
        if ctx.position(CODES[0]) == 0 and not ctx.open_orders():
            ctx.buy(CODES[0], 100, 10.5)

    result = await run_backtest(url, on_bars=buy_once, batch=5)
    [order] = result.orders.to_dicts()
    placed = int(result.orders["time"].dt.epoch("ms")[0]) - 8 * 3_600_000  # naive Beijing
    assert placed == int(TIMES[4])
    assert order["traded_volume"] == 100


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "2", 10**7])
async def test_a_bad_batch_is_refused(url: str, bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="batch"):
        await run_backtest(url, on_bars=Calls(), batch=bad)


async def test_a_batch_without_on_bars_is_refused(url: str) -> None:
    async def strategy(qk: Any, account: Any) -> None:
        return None

    with pytest.raises(InvalidArgument, match="on_bars"):
        await run_backtest(url, strategy, batch=3)


async def test_a_sleeper_wakes_at_its_own_time_between_batches(url: str) -> None:
    woke: list[int] = []

    async def sleeper(qk: Any, account: Any) -> None:
        await qk.sleep((int(TIMES[0]) - qk.now()) / 1000)  # to the first tick
        start = qk.now()
        assert start == int(TIMES[0])
        for _ in range(4):
            await qk.sleep(4.5)  # between tick times (3 s apart), on none of them
            woke.append(qk.now() - start)
        await qk.sleep(3.0)  # exactly on a tick time
        woke.append(qk.now() - start)

    await run_backtest(url, sleeper, on_bars=Calls(), batch=4)
    assert woke == [4500, 9000, 13500, 18000, 21000]
