"""``ReplayMarket.bars``: every step's ``Bar`` records equal those built field by field.

The replay builds a step's bars from the timeline's columns in one pass (one time for the
step, ``suspendFlag`` left at its default when no record of the replay is flagged); these
tests hold it to the plain reading of each record from the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qmtkit.backends.replay.market import ReplayMarket
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import yyyymmdd_to_ms
from qmtkit.models import Bar
from support.history import DAYS, FLAT, RISING, A, B
from support.history import daily_bars as _bars

C = "600004.SH"


def _market(home: Path, data: dict[str, dict[str, Any]]) -> ReplayMarket:
    cache = Cache(home)
    cache.write_bars("1d", data)
    start, end = yyyymmdd_to_ms([DAYS[0], DAYS[-1]]).tolist()
    return ReplayMarket(cache, sorted(data), "1d", int(start), int(end) + 86_400_000 - 1)


def _expected(market: ReplayMarket, k: int) -> list[Bar]:
    """Step ``k``'s bars read one field at a time from each code's cached arrays."""
    out = []
    for code, row in market.records(k):
        c = market.cache.arrays("1d", code)
        out.append(
            Bar(
                stock_code=code,
                period="1d",
                time=int(c["time"][row]),
                open=float(c["open"][row]),
                high=float(c["high"][row]),
                low=float(c["low"][row]),
                close=float(c["close"][row]),
                volume=int(c["volume"][row]),
                amount=float(c["amount"][row]),
                preClose=float(c["preClose"][row]),
                suspendFlag=int(c["suspendFlag"][row]),
            )
        )
    return out


def _check_every_step(market: ReplayMarket) -> None:
    for k in range(len(market)):
        got = market.bars(k)
        assert got == _expected(market, k), k
        for bar in got:
            assert type(bar) is Bar
            assert type(bar.time) is int and type(bar.volume) is int
            assert type(bar.close) is float and type(bar.suspendFlag) is int


@pytest.mark.parametrize("flag_day", [None, 2])
def test_aligned_codes(tmp_path: Path, flag_day: int | None) -> None:
    data = {A: _bars(RISING), B: _bars(FLAT), C: _bars(RISING)}
    if flag_day is not None:
        data[B]["suspendFlag"] = np.zeros(len(DAYS), dtype=np.int8)
        data[B]["suspendFlag"][flag_day] = 1
    market = _market(tmp_path, data)
    assert market._aligned
    _check_every_step(market)
    flagged = [b for k in range(len(market)) for b in market.bars(k) if b.suspendFlag]
    assert len(flagged) == (0 if flag_day is None else 1)


@pytest.mark.parametrize("flag_day", [None, 3])
def test_codes_on_different_days(tmp_path: Path, flag_day: int | None) -> None:
    late = _bars(RISING[2:], DAYS[2:])  # starts on the third day
    gap = _bars(FLAT[:2] + FLAT[3:], DAYS[:2] + DAYS[3:])  # no bar on the third day
    if flag_day is not None:
        late["suspendFlag"] = np.zeros(len(late["time"]), dtype=np.int8)
        late["suspendFlag"][flag_day - 2] = 1
    market = _market(tmp_path, {A: late, B: gap, C: _bars(RISING)})
    assert not market._aligned
    _check_every_step(market)
    assert [b.stock_code for b in market.bars(0)] == [B, C]
    assert [b.stock_code for b in market.bars(2)] == [A, C]
