"""The timeline's long columns: every record of every code in timeline order, laid out in
memory of their own (``replay.fresh``) for large replays, equal to the plain stack/sort."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from qmtkit.backends.replay import fresh
from qmtkit.backends.replay.market import ReplayMarket, day_ms
from qmtkit.data.cache import Cache
from qmtkit.data.schema import BAR_DTYPES
from support.history import DAYS, FLAT, RISING, A, B
from support.history import daily_bars as _bars

C = "600004.SH"


def _reference(market: ReplayMarket) -> dict[str, np.ndarray]:
    """Each code's records concatenated and stably sorted by time (the general way)."""
    out = {}
    slices = []
    for code in market.codes:
        t = market.cache.arrays("1d", code)["time"]
        a = int(np.searchsorted(t, market.start_ms, "left"))
        b = int(np.searchsorted(t, market.end_ms, "right"))
        slices.append((code, a, b))
    times = np.concatenate([market.cache.arrays("1d", c)["time"][a:b] for c, a, b in slices])
    order = np.argsort(times, kind="stable")
    for name, dt in BAR_DTYPES.items():
        parts = [
            np.asarray(market.cache.arrays("1d", c)[name][a:b], dtype=dt) for c, a, b in slices
        ]
        out[name] = np.concatenate(parts)[order]
    return out


@pytest.mark.parametrize("mapped", [False, True], ids=["numpy", "mapped"])
@pytest.mark.parametrize("late", [False, True], ids=["aligned", "codes-start-apart"])
def test_long_columns_equal_the_records_sorted_by_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapped: bool, late: bool
) -> None:
    if mapped:  # every column in a mapping of its own, however small
        monkeypatch.setattr(fresh, "MAPPED_FROM", 0)
    flat = {k: v[2:] for k, v in _bars(FLAT).items()} if late else _bars(FLAT)
    cache = Cache(tmp_path)
    cache.write_bars("1d", {A: _bars(RISING), B: flat, C: _bars(RISING)})
    market = ReplayMarket(cache, [A, B, C], "1d", day_ms(DAYS[0]), day_ms(DAYS[-1]) + 1)
    long = market.long_columns()
    want = _reference(market)
    assert list(long) == list(want)
    for name, values in want.items():
        assert long[name].dtype == values.dtype
        assert long[name].tobytes() == values.tobytes()  # bit for bit
        if mapped and hasattr(mmap, "MAP_ANONYMOUS"):
            assert isinstance(memoryview(long[name].base).obj, mmap.mmap)
    assert market.long_columns() is long  # built once
    assert len(market.frame(0)) == (2 if late else 3)


def test_fresh_arrays_are_numpys_below_the_bound_and_mapped_from_it() -> None:
    small = fresh.empty(10, np.dtype(np.float64))
    assert small.shape == (10,) and small.dtype == np.float64 and small.flags.writeable
    count = fresh.MAPPED_FROM // 8 + 3
    big = fresh.empty(count, np.dtype(np.int64))
    assert big.shape == (count,) and big.dtype == np.int64 and big.flags.writeable
    big[:] = np.arange(count)
    assert int(big[-1]) == count - 1
    view = big[5:9]
    del big
    assert view.tolist() == [5, 6, 7, 8]  # the mapping lives as long as a view of it
    assert fresh.empty(0, np.dtype(np.int8)).shape == (0,)


def test_a_negative_length_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="-1"):
        fresh.empty(-1, np.dtype(np.float64))
