"""Backtests over real MiniQMT files: the fixture datadir (SSE Composite) imported into a cache.

The index cannot be traded, so it is the benchmark of a daily backtest whose stocks come from the
simulator, and the replayed stream itself in minute and tick replays. Skipped where ``shared/``
is not beside the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import numpy as np
import pytest

import qmtkit
from qmtkit.backtest.runner import run_backtest
from qmtkit.cli.data import import_datadir
from qmtkit.client import Account, Client
from qmtkit.data import datadir as dd
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import ms_to_yyyymmdd

FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/miniqmt-datadir"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="MiniQMT fixtures not found")
INDEX = "000001.SH"
STOCKS = ["600000.SH", "000001.SZ"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real")
    src = root / "datadir"
    shutil.copytree(FIXTURES, src, ignore=shutil.ignore_patterns("README.md"))
    import_datadir(Cache(root / "home"), src)
    return root / "home"


@pytest.fixture(scope="module")
def stocks_home(home: Path) -> Path:
    async def download() -> None:
        async with qmtkit.connect("sim://", home=home) as qk:
            await qk.data.download(STOCKS, "1d", start="20250102", end="20250625")

    anyio.run(download)
    return home


async def sma_strategy(qk: Client, account: Account) -> None:
    closes: dict[str, list[float]] = {}
    async with qk.subscribe(STOCKS, "1d") as bars:
        async for batch in bars:
            for bar in batch:
                c = closes.setdefault(bar.stock_code, [])
                c.append(bar.close)
                if len(c) < 20:
                    continue
                fast, slow = sum(c[-5:]) / 5, sum(c[-20:]) / 20
                pos = await account.position(bar.stock_code)
                if fast > slow and pos is None:
                    await account.buy(bar.stock_code, 1000, round(bar.close * 1.05, 2))
                elif fast < slow and pos is not None and pos.can_use_volume:
                    await account.sell(
                        bar.stock_code, pos.can_use_volume, round(bar.close * 0.95, 2)
                    )


async def test_a_daily_backtest_draws_its_benchmark_from_the_real_index_file(
    stocks_home: Path,
) -> None:
    url = f"backtest://?start=20250102&end=20250625&codes={','.join(STOCKS)}&benchmark={INDEX}"
    first = await run_backtest(url, sma_strategy, home=stocks_home)
    second = await run_backtest(url, sma_strategy, home=stocks_home)
    real = dd.read_bars(FIXTURES, INDEX, "1d")
    days = ms_to_yyyymmdd(real["time"])
    keep = (days >= 20250102) & (days <= 20250625)
    assert first.equity["benchmark"].to_list() == real["close"][keep].tolist()
    assert first.equity.height == int(keep.sum())
    assert first.trades.height > 0
    assert first.digest() == second.digest()


async def test_a_minute_replay_of_the_real_index_pushes_every_bar_once_in_order(
    home: Path,
) -> None:
    url = f"backtest://?start=20250605&end=20250625&period=1m&codes={INDEX}"
    real = dd.read_bars(FIXTURES, INDEX, "1m")
    seen: list[int] = []
    async with qmtkit.connect(url, home=home) as qk, qk.subscribe([INDEX], "1m") as sub:
        async for batch in sub:
            seen.extend(b.time for b in batch)
            if len(seen) % 500 == 1:  # now and then: nothing after the bar just pushed
                frame = await qk.data.bars([INDEX], "1m")
                assert frame["time"].dt.epoch("ms").max() == seen[-1] == qk.now()
    assert seen == real["time"].tolist()


async def test_a_tick_replay_of_the_real_file_pushes_every_snapshot(home: Path) -> None:
    url = f"backtest://?start=20250529&end=20250529&period=tick&codes={INDEX}"
    real = dd.read_ticks(FIXTURES, INDEX, 20250529)
    prices: list[float] = []
    async with qmtkit.connect(url, home=home) as qk, qk.subscribe([INDEX], "tick") as sub:
        async for batch in sub:
            prices.extend(t.lastPrice for t in batch)
    assert prices == real["lastPrice"].tolist()
    assert len(prices) == len(np.unique(real["time"])) == 5988
