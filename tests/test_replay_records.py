"""An aligned replay's record columns (time, code number, row of every record in timeline
order) are made on first use and equal the ones the general sort gives; its fast paths
(frames, prices, bars, instruments) never need them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qmtkit.backends.replay.market import ReplayMarket, day_ms
from qmtkit.data.cache import Cache
from support.history import DAYS, FLAT, RISING, A, B
from support.history import daily_bars as _bars

C = "600004.SH"


def _market(home: Path, bars: dict[str, dict[str, object]]) -> ReplayMarket:
    cache = Cache(home)
    cache.write_bars("1d", bars)
    return ReplayMarket(cache, list(bars), "1d", day_ms(DAYS[0]), day_ms(DAYS[-1]) + 1)


def _sorted_records(market: ReplayMarket) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The general way: every code's records concatenated, stably sorted by time."""
    times, codes, rows = [], [], []
    for i, code in enumerate(market.codes):
        t = market.cache.arrays("1d", code)["time"]
        a = int(np.searchsorted(t, market.start_ms, "left"))
        b = int(np.searchsorted(t, market.end_ms, "right"))
        times.append(np.asarray(t[a:b], dtype=np.int64))
        codes.append(np.full(b - a, i, dtype=np.int64))
        rows.append(np.arange(a, b, dtype=np.int64))
    order = np.argsort(np.concatenate(times), kind="stable")
    return tuple(np.concatenate(x)[order] for x in (times, codes, rows))  # type: ignore[return-value]


def test_an_aligned_replays_records_are_made_late_and_equal_the_sorted_ones(
    tmp_path: Path,
) -> None:
    # C's history starts two days before the replay: its rows are not its positions.
    early = _bars(RISING)
    bars = {A: _bars(RISING), B: _bars(FLAT), C: early}
    market = _market(tmp_path, bars)
    start = day_ms(DAYS[2])
    market = ReplayMarket(market.cache, [A, B, C], "1d", start, day_ms(DAYS[-1]) + 1)
    rows = []
    for k in range(len(market)):
        rows += [market.row_of(code, k) for code in (A, B, C)]
        frame = market.frame(k)
        assert frame["code"].cast(str).to_list() == [A, B, C]
        market.step_prices(k)
        market.bars(k)
        for code in (A, B, C):
            market.bar_at(code, k)
            market.instrument(code, market.step_day(k))
    assert market._rec is None  # the fast paths read none of them
    want = _sorted_records(market)
    assert rows == want[2].tolist()  # found by arithmetic
    for got, expected in zip((market.rec_time, market.rec_code, market.rec_row), want, strict=True):
        assert got.tolist() == expected.tolist()
    assert int(market.rec_row[0]) == 2  # a row in C's own columns, not a position


def test_an_unaligned_replays_records_are_the_sorted_ones(tmp_path: Path) -> None:
    late = {k: v[2:] for k, v in _bars(FLAT).items()}
    market = _market(tmp_path, {A: _bars(RISING), B: late})
    want = _sorted_records(market)
    for got, expected in zip((market.rec_time, market.rec_code, market.rec_row), want, strict=True):
        assert got.tolist() == expected.tolist()
    assert [market.frame(k).height for k in range(len(market))][:3] == [1, 1, 2]
