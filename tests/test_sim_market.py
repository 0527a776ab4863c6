"""The simulator's live market: deterministic ticks, the 5-level book and today's bars."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from qmtkit.backends.sim.history import MINUTES_PER_DAY, day_ms
from qmtkit.backends.sim.market import (
    SyntheticMarket,
    bars_from_ticks,
    virtual_session_time,
)
from qmtkit.backends.sim.universe import Universe
from qmtkit.data import calendar
from qmtkit.data.schema import TICK_DTYPES
from qmtkit.errors import InvalidArgument, InvalidCode
from qmtkit.models import Tick

BEIJING = dt.timezone(dt.timedelta(hours=8))
DAY = 20251114  # a Friday


def bj_ms(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return int(dt.datetime(y, m, d, hh, mm, ss, tzinfo=BEIJING).timestamp() * 1000)


def at(hh: int, mm: int, ss: int = 0, day: int = DAY) -> int:
    return bj_ms(day // 10000, day // 100 % 100, day % 100, hh, mm, ss)


@pytest.fixture(scope="module")
def market(universe: Universe) -> SyntheticMarket:
    return SyntheticMarket(universe.seed, universe)


SAMPLE = ["600000.SH", "600519.SH", "000001.SZ", "300750.SZ", "688981.SH", "430047.BJ", "510300.SH"]


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_ticks(universe: Universe) -> None:
    a = SyntheticMarket(universe.seed, universe).ticks(SAMPLE, at(10, 15, 7))
    b = SyntheticMarket(universe.seed, universe).ticks(SAMPLE, at(10, 15, 7))
    assert a == b


def test_other_seed_other_ticks() -> None:
    a = SyntheticMarket(1).tick("600000.SH", at(10, 15))
    b = SyntheticMarket(2).tick("600000.SH", at(10, 15))
    assert a.lastPrice != b.lastPrice or a.volume != b.volume


def test_a_tick_holds_for_its_whole_step(market: SyntheticMarket) -> None:
    a = market.tick("600519.SH", at(10, 15, 6))
    b = market.tick("600519.SH", at(10, 15, 8) + 999)
    assert a == b
    assert a.time == at(10, 15, 6)


def test_vectorised_ticks_equal_single_ticks(market: SyntheticMarket) -> None:
    now = at(14, 2, 33)
    batch = market.ticks(SAMPLE, now)
    assert [t.stock_code for t in batch] == SAMPLE
    for t in batch:
        assert market.tick(t.stock_code, now) == t


def test_preparing_a_day_in_bulk_changes_no_tick(universe: Universe) -> None:
    bulk = SyntheticMarket(universe.seed, universe)
    bulk.prepare(None, DAY)
    alone = SyntheticMarket(universe.seed, universe)
    for code in [*SAMPLE, "000300.SH", "399006.SZ"]:
        assert bulk.tick(code, at(13, 31, 12)) == alone.tick(code, at(13, 31, 12))


def test_tick_columns_use_the_stored_tick_schema(market: SyntheticMarket) -> None:
    cols = market.tick_columns(SAMPLE, at(10, 0))
    assert set(cols) == set(TICK_DTYPES)
    for name, dtype in TICK_DTYPES.items():
        assert cols[name].dtype == dtype, name
    day = market.day_ticks("600000.SH", DAY, at(9, 31))
    assert set(day) == set(TICK_DTYPES)
    assert len(day["time"]) == 1 + 20  # the auction tick and one minute of 3-second ticks


def test_no_codes_no_ticks(market: SyntheticMarket) -> None:
    assert market.ticks([], at(10, 0)) == []


def test_the_order_of_asking_does_not_matter(universe: Universe) -> None:
    m1 = SyntheticMarket(universe.seed, universe)
    m2 = SyntheticMarket(universe.seed, universe)
    m2.ticks(list(reversed(universe.codes()[:50])), at(11, 0))
    assert m1.tick("000002.SZ", at(13, 45)) == m2.tick("000002.SZ", at(13, 45))


# --------------------------------------------------------------------------- the day's path


def test_the_day_opens_from_the_previous_close(market: SyntheticMarket) -> None:
    for code in SAMPLE:
        d = market.instrument(code, DAY)
        pre = market.tick(code, at(9, 20))
        assert pre.lastClose == d.PreClose
        assert pre.volume == 0 and pre.open == 0 and pre.lastPrice == d.PreClose
        first = market.tick(code, at(9, 30))
        daily = market.history.daily_bars(code, at(0, 0), at(23, 59))
        assert first.open == first.lastPrice == daily["open"][0]
        assert first.volume > 0
        assert d.DownStopPrice <= first.open <= d.UpStopPrice


def test_every_tick_of_the_day_stays_inside_the_limits(market: SyntheticMarket) -> None:
    for code in SAMPLE:
        d = market.instrument(code, DAY)
        ticks = market.day_ticks(code, DAY)
        assert len(ticks["time"]) == market.steps_per_day
        for field in ("lastPrice", "high", "low", "open"):
            assert np.all(ticks[field] <= d.UpStopPrice), (code, field)
            assert np.all(ticks[field] >= d.DownStopPrice), (code, field)
        assert np.all(np.diff(ticks["volume"]) >= 0)
        assert np.all(np.diff(ticks["amount"]) >= -1e-6)
        assert np.all(np.diff(ticks["high"]) >= 0) and np.all(np.diff(ticks["low"]) <= 0)
        assert np.all(ticks["high"] == np.maximum.accumulate(ticks["lastPrice"]))
        assert np.all(ticks["low"] == np.minimum.accumulate(ticks["lastPrice"]))
        assert np.all(ticks["open"] == ticks["open"][0])
        assert np.all(ticks["lastClose"] == d.PreClose)
        assert np.all(np.diff(ticks["time"]) > 0)


def test_day_ticks_are_exactly_what_tick_returns(market: SyntheticMarket) -> None:
    code = "300750.SZ"
    ticks = market.day_ticks(code, DAY)
    rng = np.random.default_rng(5)
    for k in [0, *sorted(rng.choice(market.steps_per_day, size=25, replace=False).tolist())]:
        t = market.tick(code, int(ticks["time"][k]))
        assert t.time == ticks["time"][k]
        assert t.lastPrice == ticks["lastPrice"][k]
        assert t.volume == ticks["volume"][k] and t.amount == ticks["amount"][k]
        assert t.high == ticks["high"][k] and t.low == ticks["low"][k]
        assert t.askPrice[0] == ticks["askPrice1"][k] and t.bidVol[4] == ticks["bidVol5"][k]


def test_ticks_pause_for_lunch_and_stop_at_the_close(market: SyntheticMarket) -> None:
    code = "600000.SH"
    morning_end = market.tick(code, at(11, 30))
    assert market.tick(code, at(12, 15)) == morning_end
    assert market.tick(code, at(13, 0)) == morning_end
    assert market.tick(code, at(13, 0, 3)).time == at(13, 0, 3)
    close = market.tick(code, at(15, 0))
    assert market.tick(code, at(20, 0)) == close
    daily = market.history.daily_bars(code, at(0, 0), at(23, 59))
    assert close.lastPrice == daily["close"][0]
    assert close.volume == daily["volume"][0]
    assert close.amount == pytest.approx(daily["amount"][0], rel=1e-12)
    assert (close.high, close.low) == (daily["high"][0], daily["low"][0])


def test_weekend_shows_fridays_close(market: SyntheticMarket) -> None:
    sat = market.tick("600000.SH", bj_ms(2025, 11, 15, 10, 0))
    fri = market.tick("600000.SH", at(15, 0))
    assert sat == fri


def test_volume_units(market: SyntheticMarket) -> None:
    t = market.tick("600000.SH", at(10, 0))
    assert t.pvolume == t.volume * 100  # volume in lots, pvolume in shares
    assert 5 < t.amount / (t.volume * 100) < 50  # a plausible average price in yuan


# --------------------------------------------------------------------------- the book


def test_book_sanity_for_the_whole_universe(market: SyntheticMarket, universe: Universe) -> None:
    codes = [c for c in universe.codes() if universe.listing(c).list_date < 20251001]
    for now in (at(9, 30), at(9, 45, 3), at(11, 29, 57), at(13, 30), at(14, 59, 57)):
        for t in market.ticks(codes, now):
            d = market.instrument(t.stock_code, DAY)
            _check_book(t, d.UpStopPrice, d.DownStopPrice, d.board == "index")


def _check_book(t: Tick, up: float, down: float, is_index: bool) -> None:
    assert len(t.askPrice) == len(t.bidPrice) == len(t.askVol) == len(t.bidVol) == 5
    if is_index:
        assert not any(t.askPrice) and not any(t.bidPrice) and not any(t.askVol)
        return
    asks = [(p, v) for p, v in zip(t.askPrice, t.askVol, strict=True) if p > 0]
    bids = [(p, v) for p, v in zip(t.bidPrice, t.bidVol, strict=True) if p > 0]
    assert asks or bids
    if asks and bids:
        assert asks[0][0] > bids[0][0], t
    assert [p for p, _ in asks] == sorted({p for p, _ in asks})
    assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
    for p, v in asks + bids:
        assert down <= p <= up
        assert round(p * 100) == pytest.approx(p * 100, abs=1e-6)
        assert v > 0 and v % 100 == 0
    # absent levels are all-zero and come after the present ones
    for prices, vols in ((t.askPrice, t.askVol), (t.bidPrice, t.bidVol)):
        n = sum(1 for p in prices if p > 0)
        assert all(p == 0 and v == 0 for p, v in zip(prices[n:], vols[n:], strict=True))
    assert t.bidPrice[0] <= t.lastPrice <= (t.askPrice[0] or up)


def test_a_stock_locked_at_limit_up_has_no_sellers(market: SyntheticMarket) -> None:
    found = None
    for code in market.universe.sectors()["沪深A股"]:
        p = market.history.path(code, at(23, 59))
        today = calendar.day_number(DAY)
        hit = np.flatnonzero((p.close == p.up) & (p.days <= today) & (p.days >= today - 120))
        if len(hit):
            found = code, int(calendar.ms_to_yyyymmdd(day_ms(p.days[hit[-1]])))
            break
    assert found is not None
    code, day = found
    t = market.tick(code, at(15, 0, day=day))
    d = market.instrument(code, day)
    assert t.lastPrice == d.UpStopPrice
    assert t.askPrice == [0.0] * 5 and t.askVol == [0] * 5
    assert t.bidPrice[0] == d.UpStopPrice and t.bidVol[0] > 0


# --------------------------------------------------------------------------- today's bars


def test_intraday_bars_from_ticks_equal_the_history_of_the_day(market: SyntheticMarket) -> None:
    for code in SAMPLE:
        minute, daily = market.intraday_bars(code, DAY)
        hm = market.history.minute_bars(code, at(0, 0), at(23, 59))
        hd = market.history.daily_bars(code, at(0, 0), at(23, 59))
        assert len(minute["time"]) == MINUTES_PER_DAY
        for k in hm:
            if k == "amount":
                assert np.allclose(minute[k], hm[k], rtol=1e-12, atol=1e-6)
                assert daily[k][0] == pytest.approx(hd[k][0], rel=1e-12)
            else:
                assert np.array_equal(minute[k], hm[k]), (code, k)
                assert np.array_equal(daily[k], hd[k]), (code, k)


def test_intraday_bars_with_another_step_agree_too(universe: Universe) -> None:
    market = SyntheticMarket(universe.seed, universe, step_ms=6000)
    minute, _ = market.intraday_bars("600036.SH", DAY)
    hm = market.history.minute_bars("600036.SH", at(0, 0), at(23, 59))
    assert np.array_equal(minute["close"], hm["close"])
    assert np.array_equal(minute["volume"], hm["volume"])
    assert market.steps_per_day == 1 + 240 * 10


def test_half_second_ticks_build_the_same_bars_as_the_history(universe: Universe) -> None:
    market = SyntheticMarket(universe.seed, universe, step_ms=500)
    for code in ("600036.SH", "300750.SZ"):
        minute, daily = market.intraday_bars(code, DAY)
        hm = market.history.minute_bars(code, at(0, 0), at(23, 59))
        hd = market.history.daily_bars(code, at(0, 0), at(23, 59))
        for k in ("open", "high", "low", "close", "volume"):
            assert np.array_equal(minute[k], hm[k]), (code, k)
            assert np.array_equal(daily[k], hd[k]), (code, k)
    assert market.steps_per_day == 1 + 240 * 120


def test_intraday_bars_so_far_include_the_minute_in_progress(market: SyntheticMarket) -> None:
    now = at(10, 0, 31)
    minute, daily = market.intraday_bars("000001.SZ", DAY, now)
    assert len(minute["time"]) == 1 + 31  # 09:30 auction bar, 09:31 .. 10:01 (in progress)
    assert minute["time"][-1] == at(10, 1)
    t = market.tick("000001.SZ", now)
    assert daily["volume"][0] == t.volume == minute["volume"].sum()
    assert daily["close"][0] == t.lastPrice == minute["close"][-1]
    assert (daily["high"][0], daily["low"][0]) == (t.high, t.low)


def test_bars_from_ticks_of_nothing_are_empty() -> None:
    empty = {k: np.zeros(0) for k in ("time", "lastPrice", "volume", "amount")}
    minute, daily = bars_from_ticks(empty, 10.0)
    assert len(minute["time"]) == 0 and len(daily["time"]) == 0


def test_history_until_now_ends_with_todays_bar_so_far(market: SyntheticMarket) -> None:
    now = at(11, 0)
    bars = market.history_until("600519.SH", "1d", bj_ms(2025, 11, 1), 0, now)
    assert bars["time"][-1] == at(0, 0)
    assert bars["close"][-1] == market.tick("600519.SH", now).lastPrice
    past = market.history.daily_bars("600519.SH", bj_ms(2025, 11, 1), at(0, 0) - 1)
    assert np.array_equal(bars["close"][:-1], past["close"])
    minutes = market.history_until("600519.SH", "1m", at(9, 0), 0, now)
    assert minutes["time"][-1] == at(11, 0)


# --------------------------------------------------------------------------- session time


def test_virtual_session_folds_the_beijing_day_into_the_trading_hours() -> None:
    assert virtual_session_time(bj_ms(2025, 11, 14, 0, 0)) == at(9, 30)
    assert virtual_session_time(bj_ms(2025, 11, 14, 6, 0)) == at(10, 30)
    assert virtual_session_time(bj_ms(2025, 11, 14, 12, 0)) == at(13, 0)
    assert virtual_session_time(bj_ms(2025, 11, 14, 18, 0)) == at(14, 0)
    walls = np.arange(bj_ms(2025, 11, 14), bj_ms(2025, 11, 15), 997_000)
    mapped = [virtual_session_time(int(w)) for w in walls]
    assert mapped == sorted(mapped)
    assert all(at(9, 30) <= s < at(15, 0) for s in mapped)


def test_virtual_session_on_a_weekend_replays_friday() -> None:
    assert virtual_session_time(bj_ms(2025, 11, 16, 6, 0)) == at(10, 30)


def test_strict_session_time_is_wall_time(market: SyntheticMarket) -> None:
    assert market.session_time(at(10, 0), strict=True) == at(10, 0)
    assert market.session_time(bj_ms(2025, 11, 14, 6, 0)) == at(10, 30)


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_are_refused(market: SyntheticMarket, universe: Universe) -> None:
    with pytest.raises(InvalidArgument, match="step_ms"):
        SyntheticMarket(1, universe, step_ms=7000)
    with pytest.raises(InvalidArgument, match="seed"):
        SyntheticMarket(-3)
    with pytest.raises(InvalidCode, match="not listed"):
        market.tick("600998.SH" if "600998.SH" not in universe else "600997.SH", at(10, 0))
    with pytest.raises(InvalidCode):
        market.tick("abc", at(10, 0))
    with pytest.raises(InvalidArgument, match="time"):
        market.tick("600000.SH", -1)
    with pytest.raises(InvalidArgument, match="does not trade"):
        market.tick("301269.SZ", bj_ms(2020, 6, 1, 10, 0))
    with pytest.raises(InvalidArgument, match="not a trading day"):
        market.day_ticks("600000.SH", 20251115)
    with pytest.raises(InvalidArgument, match="period"):
        market.history_until("600000.SH", "5m", 0, 0, at(10, 0))
