"""A quiet account's logged day close (``sim.dayclose``) gives the frames of the eager close:
the same positions and equity rows, and the same answers to queries in between, whatever
happens to the holdings (fills on lagging holdings, sells to nothing and buying back, T+1,
ex-rights cash and bonus shares, closes the log cannot take, state reports turned on)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.replay.market import SparsePrices, StepPrices
from qmtkit.backends.replay.record import Recorder
from qmtkit.backends.sim import dayclose, marks
from qmtkit.backends.sim.accounts import value_q
from qmtkit.backends.sim.broker import Broker, HeldArrays
from qmtkit.backends.sim.dayclose import DayLog, DayRows, day_values
from qmtkit.backends.sim.marks import exact_value_sum
from support.broker import BUY, SELL, T0, book, instrument, order
from support.marks_replay import run_small_backtest

ACC = "Q"


def _submit(
    broker: Broker, side: int, code: str, volume: int, price: float, t: int, day: int
) -> None:
    tick = book(code, last=price, asks=[(price, 10**7)], bids=[(price, 10**7)], time=t)
    inst = instrument(code, pre_close=price, up=round(price * 1.1, 2), down=round(price * 0.9, 2))
    broker.submit(
        order(side, volume, price, code=code, account=ACC),
        book=tick,
        instrument=inst,
        now_ms=t,
        day=day,
    )


def _quiet_broker() -> Broker:
    broker = Broker(initial_cash=10**9, allow_new_accounts=False)
    broker.open_account(ACC)
    broker.state_reports(ACC, False)
    return broker


def _eager_close(broker: Broker, rec: Recorder, day: int, prices: object, codes: list[str]) -> None:
    held = broker.mark_and_snapshot(prices, lambda code: None)  # type: ignore[arg-type]
    rows = held[ACC]
    asset = broker.asset(ACC)
    if isinstance(rows, HeldArrays):
        rec.record_day_keyed(ACC, day, asset, codes, rows, None)
    else:
        rec.record_day_columns(ACC, day, asset, rows, None)


def _scenario(seed: int, codes: list[str], days: int, orders: int) -> int:
    """Random days on an eager and a logging broker; every frame and query compared.
    Returns how many closes were logged."""
    rng = random.Random(seed)
    index = {c: i for i, c in enumerate(codes)}
    eager, logged = _quiet_broker(), _quiet_broker()
    want, got = Recorder(), Recorder()
    closes = {c: round(rng.uniform(5, 50), 2) for c in codes}
    t, count, loud = T0, 0, 0
    for n in range(days):
        date = dt.date(2025, 1, 2) + dt.timedelta(days=n)
        day = date.year * 10000 + date.month * 100 + date.day
        for b in (eager, logged):
            b.roll_day(day)
        if rng.random() < 0.25:  # ex-rights on some code: cash, bonus shares or both
            code = rng.choice(codes)
            cash, shares = rng.choice(((0.3, 0.0), (0.0, 0.2), (0.15, 0.1), (0.0, 1.0)))
            for b in (eager, logged):
                b.ex_rights(code, cash, shares)
        for _ in range(rng.randint(0, orders)):
            code = rng.choice(codes)
            price = round(closes[code] * rng.uniform(0.95, 1.05), 2)
            t += 1
            held, usable = eager.holding(ACC, code)
            assert (held, usable) == logged.holding(ACC, code)
            if usable and rng.random() < 0.6:
                # All of it (sold to nothing, maybe bought back below) or part of it.
                volume = usable if rng.random() < 0.5 else max(100, usable // 200 * 100)
                side = SELL
            else:
                volume, side = rng.choice((100, 300, 1000)), BUY
            for b in (eager, logged):
                _submit(b, side, code, volume, price, t, day)
            if rng.random() < 0.1:  # bought back the same day
                for b in (eager, logged):
                    _submit(b, BUY, code, 200, price, t, day)
            if rng.random() < 0.05:  # a query in the day: lagging holdings brought up
                assert logged.asset(ACC) == eager.asset(ACC)
                assert logged.positions(ACC) == eager.positions(ACC)
        if loud:
            loud -= 1
            if not loud:
                for b in (eager, logged):
                    b.state_reports(ACC, False)
        elif rng.random() < 0.05:  # someone follows the account for a few days
            loud = rng.randint(1, 4)
            for b in (eager, logged):
                b.state_reports(ACC, True)
        for code in codes:
            closes[code] = round(closes[code] * rng.uniform(0.93, 1.07), 2)
        values = np.asarray([closes[c] for c in codes])
        if rng.random() < 0.1:  # a close without some code's price: eager
            keys = np.asarray([i for i in range(len(codes)) if i % 5], dtype=np.int64)
            prices: object = SparsePrices(index, codes, keys, values[keys])
            plain: object = {codes[i]: closes[codes[i]] for i in keys.tolist()}
        else:
            prices = StepPrices(index, values)
            plain = dict(zip(codes, values.tolist(), strict=True))
        _eager_close(eager, want, day, plain, codes)
        log = logged.close_quietly(prices)  # type: ignore[arg-type]
        if log is None:
            _eager_close(logged, got, day, prices, codes)
        else:
            count += 1
            got.record_day_logged(log, day, codes, None)
        if rng.random() < 0.1:
            assert logged.holdings(ACC) == eager.holdings(ACC)
        if rng.random() < 0.15:  # a fill after the close, before the roll: a buy or a sale
            code = rng.choice(codes)
            t += 1
            usable = eager.holding(ACC, code)[1]
            side, volume = (SELL, usable) if usable and rng.random() < 0.5 else (BUY, 500)
            for b in (eager, logged):
                _submit(b, side, code, volume, closes[code], t, day)
    assert logged.asset(ACC) == eager.asset(ACC)
    assert logged.positions(ACC) == eager.positions(ACC)
    for name in ("positions", "equity"):
        assert got.frames(ACC)[name].equals(want.frames(ACC)[name]), name
    assert want.frames(ACC)["positions"].height > days
    return count


@pytest.mark.parametrize("seed", range(6))
def test_logged_closes_give_the_eager_frames_over_random_days(seed: int) -> None:
    codes = [f"60{i:04d}.SH" for i in range(12)]
    assert _scenario(seed, codes, days=80, orders=8) > 40


@pytest.mark.parametrize("seed", range(4))
def test_logged_and_columns_closes_by_turns(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log dropped from 10 holdings on (the columns mark those closes, from 2 holdings
    on), and started again below 8."""
    monkeypatch.setattr(dayclose, "LOG_FROM", 8)
    monkeypatch.setattr(dayclose, "LOG_UNTIL", 10)
    monkeypatch.setattr(marks, "COLUMNS_FROM", 2)
    monkeypatch.setattr(marks, "COLUMNS_UNTIL", 2)
    codes = [f"60{i:04d}.SH" for i in range(12)]
    logged = _scenario(50 + seed, codes, days=80, orders=8)
    assert 0 < logged < 75


@pytest.mark.parametrize("seed", range(3))
def test_logged_closes_with_many_holdings_turned_over(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dayclose, "LOG_FROM", 10**9)
    monkeypatch.setattr(dayclose, "LOG_UNTIL", 10**9)
    codes = [f"00{i:04d}.SZ" for i in range(150)]
    assert _scenario(100 + seed, codes, days=40, orders=60) > 30


def test_the_eager_close_is_kept_where_the_log_cannot_take_a_close() -> None:
    codes = ["600000.SH", "600001.SH"]
    index = {c: i for i, c in enumerate(codes)}
    broker = _quiet_broker()
    broker.roll_day(20250106)
    _submit(broker, BUY, codes[0], 100, 10.0, T0, 20250106)
    # A price out of the exact sum's range, or missing: eager.
    assert broker.close_quietly(StepPrices(index, np.asarray([10.0, 0.0]))) is None
    keys = np.asarray([0], dtype=np.int64)
    assert broker.close_quietly(SparsePrices(index, codes, keys, np.asarray([10.0]))) is None
    assert broker.close_quietly({codes[0]: 10.0}) is None  # prices not by number
    # A code held without a number: the log is dropped, the holdings are up to date.
    log = broker.close_quietly(StepPrices(index, np.asarray([10.5, 3.0])))
    assert isinstance(log, DayLog)
    broker.roll_day(20250107)
    _submit(broker, BUY, "600002.SH", 100, 5.0, T0 + 1, 20250107)
    assert broker.close_quietly(StepPrices(index, np.asarray([11.0, 3.0]))) is None
    assert broker._accounts[ACC].marks is None
    assert [p.last_price for p in broker.positions(ACC)] == [10.5, 5.0]
    assert broker.asset(ACC).market_value == 10.5 * 100 + 5.0 * 100
    # Several accounts, or state reports on: eager.
    broker.state_reports(ACC, True)
    assert broker.close_quietly(StepPrices(index, np.asarray([11.0, 3.0]))) is None
    two = _quiet_broker()
    two.open_account("R")
    assert two.close_quietly(StepPrices(index, np.asarray([11.0, 3.0]))) is None
    off = _quiet_broker()
    dayclose.DEFER = False
    try:
        assert off.close_quietly(StepPrices(index, np.asarray([11.0, 3.0]))) is None
    finally:
        dayclose.DEFER = True


def test_day_values_are_the_exact_sums_also_beyond_the_vector_range() -> None:
    rng = np.random.default_rng(5)
    cases = []
    for low, high in ((2.0**-27, 1.0), (0.01, 100.0), (1.0, 3000.0), (1e9, 2.0**48)):
        for shares_high in (2, 10**6, 2**33):
            cases.append((low, high, shares_high))
    for low, high, shares_high in cases:
        closes = 7
        counts = np.bincount(rng.integers(0, closes, 300), minlength=closes + 2)
        volume = rng.integers(1, shares_high, 300).astype(np.int64)
        prices = np.minimum(rng.uniform(low, high, 300), np.nextafter(2.0**48, 0))
        rows = DayRows(counts, np.zeros(300, dtype=np.int64), volume, volume)
        starts = np.cumsum(counts) - counts
        want = [
            exact_value_sum(volume[a : a + n], prices[a : a + n])
            for a, n in zip(starts.tolist(), counts.tolist(), strict=True)
        ]
        assert day_values(rows, prices) == want
        assert want == [
            sum(map(value_q, volume[a : a + n].tolist(), prices[a : a + n].tolist()))
            for a, n in zip(starts.tolist(), counts.tolist(), strict=True)
        ]
    empty = DayRows(np.zeros(3, dtype=np.int64), *(np.zeros(0, dtype=np.int64),) * 3)
    assert day_values(empty, np.zeros(0)) == [0, 0, 0]


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("extra", ["", "&benchmark=600003.SH"])
def test_a_backtest_with_logged_closes_has_the_eager_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aligned: bool, extra: str
) -> None:
    logged = 0
    close = DayLog.close

    def counted(self: DayLog, *args: object) -> bool:
        nonlocal logged
        logged += 1
        return close(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(dayclose, "DEFER", False)
    eager = run_small_backtest(tmp_path / "a", extra, aligned=aligned)
    monkeypatch.setattr(dayclose, "DEFER", True)
    monkeypatch.setattr(DayLog, "close", counted)
    got = run_small_backtest(tmp_path / "b", extra, aligned=aligned)
    assert (logged > 100) == aligned  # suspensions and late starts: closes with codes missing
    assert got.positions.height > 500
    assert got.positions.equals(eager.positions)
    assert got.equity.equals(eager.equity)
    assert got.digest() == eager.digest()
    assert isinstance(got.equity, pl.DataFrame)


@pytest.mark.parametrize("bound", [50, 1 << 16, (1 << 16) + 1, 1 << 20, 1 << 33])
def test_the_stable_order_is_numpys_whatever_the_bound(bound: int) -> None:
    rng = np.random.default_rng(bound % 1000)
    values = rng.integers(0, bound, 5000).astype(np.int64)
    values[:50] = values[50:100]  # ties: the order among them is kept
    want = np.argsort(values, kind="stable")
    assert np.array_equal(dayclose._stable_order(values, bound), want)
