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


def test_pre_closes_share_the_closes_of_the_step_before_only_when_the_bits_match(
    tmp_path: Path,
) -> None:
    # Every code's pre-close is its previous close, except: step 2 of B (an ex-rights day:
    # a lower pre-close) and step 4 of C (the same value but the other zero's sign would not
    # do: here a pre-close one ulp away from the close before).
    data = {A: _bars(RISING), B: _bars(FLAT), C: _bars(RISING)}
    data[B]["preClose"][2] = 9.5
    data[C]["preClose"][4] = np.nextafter(data[C]["close"][3], 0.0)
    market = _market(tmp_path, data)
    assert market._aligned
    _check_every_step(market)  # in order: every step after the first may share
    steps = [market.bars(k) for k in range(len(market))]
    for k in range(1, len(market)):
        before, now = steps[k - 1], steps[k]
        shared = all(n.preClose is b.close for n, b in zip(now, before, strict=True))
        # Made again, so each step's bars come after the step before's.
        assert shared == (k not in (2, 4)), k
        assert [n.preClose for n in now] == [b.preClose for b in _expected(market, k)]
    assert steps[2][0].preClose == 9.5  # codes in order: B, A, C
    assert steps[4][2].preClose == float(data[C]["preClose"][4])


def test_a_step_out_of_order_reads_its_own_pre_closes(tmp_path: Path) -> None:
    data = {A: _bars(RISING), B: _bars(FLAT)}
    data[A]["preClose"][3] = 1.0  # not the close before: step 3 must not take step 2's
    market = _market(tmp_path, data)
    for k in (0, 2, 1, 3, 5, 4, 4, 0):
        assert market.bars(k) == _expected(market, k), k


def test_closes_share_the_step_price_maps_objects_of_the_same_step_only(tmp_path: Path) -> None:
    data = {A: _bars(RISING), B: _bars(FLAT), C: _bars(RISING)}
    market = _market(tmp_path, data)
    assert market._aligned
    for k in range(len(market)):
        prices = market.step_prices(k)
        made = k % 2 == 0
        if made:  # the map's list of closes is made on its first lookup by code
            assert prices.get(A) == float(data[A]["close"][k])
        got = market.bars(k)
        assert got == _expected(market, k), k
        listed = [prices[b.stock_code] for b in got]
        shared = all(b.close is p for b, p in zip(got, listed, strict=True))
        assert shared == made, k
    market.step_prices(3).get(A)
    assert market.bars(2) == _expected(market, 2)  # another step's map: its own closes
    assert not any(b.close is market.step_prices(3)[b.stock_code] for b in market.bars(2))


def test_closes_of_codes_on_different_days_are_read_from_the_step(tmp_path: Path) -> None:
    data = {A: _bars(RISING), B: _bars(FLAT[:4], DAYS[2:])}
    market = _market(tmp_path, data)
    assert not market._aligned
    for k in range(len(market)):
        market.step_prices(k).get(A)
        assert market.bars(k) == _expected(market, k), k
