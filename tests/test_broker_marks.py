"""Marking a quiet account as columns (``sim.marks``) gives what the plain mark gives: the same
rows, market values, reports and query answers, whatever happens to the holdings between the
closes (fills on holdings that lag the book, sells to nothing, codes dropped and bought back,
ex-rights, prices missing or zero, switching state reports on), and the same refusals."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qmtkit.backends.replay.market import SparsePrices, StepPrices
from qmtkit.backends.replay.record import Recorder
from qmtkit.backends.sim import marks
from qmtkit.backends.sim.accounts import value_q
from qmtkit.backends.sim.broker import Broker, HeldArrays
from qmtkit.backends.sim.marks import exact_value_sum
from qmtkit.errors import InvalidArgument
from support.broker import BUY, SELL, T0, book, instrument, order
from support.marks_replay import run_small_backtest

CODES = [f"60{i:04d}.SH" for i in range(12)]
INDEX = {c: i for i, c in enumerate(CODES)}
ACC = "Q"


@pytest.fixture
def always_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mark as columns from the first holding on (the thresholds are a cost trade-off)."""
    monkeypatch.setattr(marks, "COLUMNS_FROM", 0)
    monkeypatch.setattr(marks, "COLUMNS_UNTIL", 0)


@pytest.fixture
def small_room(monkeypatch: pytest.MonkeyPatch) -> None:
    """A book starts with room for a few slots only: growing it is exercised early."""
    monkeypatch.setattr(marks, "_FIRST_ROOM", 2)


def test_exact_value_sum_is_the_sum_of_value_q_in_range_and_beyond_it() -> None:
    rng = np.random.default_rng(3)
    cases: list[tuple[np.ndarray, np.ndarray]] = []
    for n in (1, 2, 17, 300):
        for low, high in ((2.0**-27, 1.0), (0.01, 100.0), (1.0, 1e6), (1e9, 2.0**48)):
            volume = rng.integers(0, 2**32, n).astype(np.int64)
            price = rng.uniform(low, high, n)
            cases.append((volume, np.minimum(price, np.nextafter(2.0**48, 0))))
    edges = np.asarray([2.0**-27, np.nextafter(2.0**48, 0), 0.01, 0.07, 1.0 / 3])
    cases.append((np.full(5, 2**32 - 1, dtype=np.int64), edges))
    # Beyond the vector step's range: one by one, the same sums.
    cases.append((np.asarray([2**32, 5], dtype=np.int64), np.asarray([1.5, 2.5])))
    cases.append((np.asarray([3, 5], dtype=np.int64), np.asarray([2.0**-30, 2.0**60])))
    cases.append((np.ones(2**15 + 1, dtype=np.int64), np.full(2**15 + 1, 0.1)))
    cases.append((np.zeros(0, dtype=np.int64), np.zeros(0)))
    for volume, price in cases:
        want = sum(map(value_q, volume.tolist(), price.tolist()))
        assert exact_value_sum(volume, price) == want


def _submit(
    broker: Broker, side: int, code: str, volume: int, price: float, t: int, day: int
) -> None:
    tick = book(code, last=price, asks=[(price, 10**7)], bids=[(price, 10**7)], time=t)
    inst = instrument(code, pre_close=price, up=round(price * 1.1, 2), down=round(price * 0.9, 2))
    req = order(side, volume, price, code=code, account=ACC)
    broker.submit(req, book=tick, instrument=inst, now_ms=t, day=day)


def _rows(held: Any, codes: list[str] = CODES) -> list[tuple[str, int, int, float]]:
    if isinstance(held, HeldArrays):
        return list(
            zip(
                [codes[k] for k in held.keys.tolist()],
                held.volume.tolist(),
                held.usable.tolist(),
                held.close.tolist(),
                strict=True,
            )
        )
    return list(zip(*held, strict=True))


def _pair() -> tuple[Broker, Broker]:
    out = []
    for _ in range(2):
        broker = Broker(initial_cash=10**9, allow_new_accounts=False)
        broker.open_account(ACC)
        broker.state_reports(ACC, False)
        out.append(broker)
    return out[0], out[1]


def _scenario(
    seed: int,
    plain: Broker,
    columns: Broker,
    days: int = 60,
    codes: list[str] | None = None,
    orders: int = 8,
) -> int:
    """Random days on both brokers: the plain one marked with a dict, the other with prices
    by number; every observable compared. Returns how many closes were marked as columns."""
    rng = random.Random(seed)
    day, t = 20250102, T0
    if codes is None:
        codes = CODES
    index = {c: i for i, c in enumerate(codes)}
    closes = {c: round(rng.uniform(5, 50), 2) for c in codes}
    as_columns = 0
    for _ in range(days):
        day += 1
        for b in (plain, columns):
            b.roll_day(day)
        if rng.random() < 0.2:  # ex-rights on a held code (cash and/or bonus shares)
            code = rng.choice(codes)
            cash, shares = rng.choice(((0.3, 0.0), (0.0, 0.2), (0.15, 0.1)))
            for b in (plain, columns):
                b.ex_rights(code, cash, shares)
        for _ in range(rng.randint(0, orders)):
            code = rng.choice(codes)
            price = round(closes[code] * rng.uniform(0.95, 1.05), 2)
            t += 1
            held, usable = plain.holding(ACC, code)
            assert (held, usable) == columns.holding(ACC, code)
            if usable and rng.random() < 0.5:
                volume = usable if rng.random() < 0.5 else max(100, usable // 200 * 100)
                side = SELL
            else:
                volume, side = rng.choice((100, 300, 1000)), BUY
            for b in (plain, columns):
                _submit(b, side, code, volume, price, t, day)
        for code in codes:
            closes[code] = round(closes[code] * rng.uniform(0.93, 1.07), 2)
        shown = [c for c in codes if rng.random() < 0.85]  # the others have no record today
        if rng.random() < 0.3:
            shown = list(codes)  # every code has a record (an aligned replay's close)
        zeros = rng.random() < 0.3  # some prices zero: the mark keeps their last price
        values = {c: (0.0 if zeros and rng.random() < 0.03 else closes[c]) for c in shown}
        stand = {c: round(closes[c] * 0.99, 2) for c in codes if rng.random() < 0.5}

        def fallback(code: str, stand: dict[str, float] = stand) -> float | None:
            return stand.get(code)

        if len(shown) == len(codes) and rng.random() < 0.7:
            keyed: Any = StepPrices(index, np.asarray([values[c] for c in codes]))
        else:
            keys = np.asarray([index[c] for c in shown], dtype=np.int64)
            keyed = SparsePrices(index, codes, keys, np.asarray([values[c] for c in shown]))
        want = plain.mark_and_snapshot(values, fallback)[ACC]
        got = columns.mark_and_snapshot(keyed, fallback)[ACC]
        as_columns += isinstance(got, HeldArrays)
        assert _rows(got, codes) == _rows(want, codes)
        assert columns.asset(ACC) == plain.asset(ACC)
        if rng.random() < 0.15:  # queries bring lagging holdings up to date
            assert columns.positions(ACC) == plain.positions(ACC)
            assert columns.holdings(ACC) == plain.holdings(ACC)
    assert columns.positions(ACC) == plain.positions(ACC)
    assert columns.holdings(ACC) == plain.holdings(ACC)
    return as_columns


@pytest.mark.usefixtures("always_columns")
@pytest.mark.parametrize("seed", range(8))
def test_columns_mark_like_the_plain_pass_over_random_days(seed: int) -> None:
    plain, columns = _pair()
    assert _scenario(seed, plain, columns) > 30
    assert columns._accounts[ACC].marks is not None  # still marked as columns at the end


@pytest.mark.usefixtures("always_columns", "small_room")
@pytest.mark.parametrize("seed", range(4))
def test_columns_mark_like_the_plain_pass_with_many_holdings_turned_over(seed: int) -> None:
    """Hundreds of codes, dozens of orders a day: the book grows, many slots die and are
    packed, codes sold out are bought back, whole-day closes take the vector sum's path."""
    codes = [f"00{i:04d}.SZ" for i in range(150)]
    plain, columns = _pair()
    assert _scenario(200 + seed, plain, columns, days=40, codes=codes, orders=60) > 30
    book = columns._accounts[ACC].marks
    assert book is not None and len(book.keys) > 2


@pytest.mark.usefixtures("always_columns")
def test_shares_beyond_the_vector_sums_range_are_summed_one_by_one() -> None:
    plain, columns = _pair()
    for b in (plain, columns):
        b.roll_day(20250106)
        for i, code in enumerate(CODES[:3]):
            _submit(b, BUY, code, 100 * (i + 1), 10.0, T0 + i, 20250106)
        pos = b._accounts[ACC].positions[CODES[1]]
        pos.volume = pos.can_use = 2**33  # no real account holds this many: the sum's edge
        b._accounts[ACC].touched.add(CODES[1])
    prices = [11.5, 12.25, 13.0] + [1.0] * (len(CODES) - 3)
    for day in (0, 1):
        if day:
            for b in (plain, columns):
                b.roll_day(20250107)
        plain.mark_and_snapshot(dict(zip(CODES, prices, strict=True)), lambda c: None)
        got = columns.mark_and_snapshot(StepPrices(INDEX, np.asarray(prices)), lambda c: None)
        assert isinstance(got[ACC], HeldArrays)
        assert columns._accounts[ACC].market_value == plain._accounts[ACC].market_value
        assert columns.asset(ACC) == plain.asset(ACC)
        prices = [p * 1.01 for p in prices]


def test_step_prices_say_whether_they_are_in_the_vector_sums_range() -> None:
    assert StepPrices(INDEX, np.full(len(CODES), 10.5)).in_range
    for bad in (0.0, float("nan"), float("inf"), -1.0, 2.0**-30, 2.0**48):
        values = np.full(len(CODES), 10.5)
        values[3] = bad
        assert not StepPrices(INDEX, values).in_range
        keys = np.asarray([1, 3], dtype=np.int64)
        assert not SparsePrices(INDEX, CODES, keys, values[[1, 3]]).in_range
    # A replay that looked at all its prices once passes its answer on.
    assert StepPrices(INDEX, np.zeros(len(CODES)), True).in_range


def test_the_book_is_made_from_enough_holdings_and_dropped_below_fewer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(marks, "COLUMNS_FROM", 6)
    monkeypatch.setattr(marks, "COLUMNS_UNTIL", 4)
    for seed in range(4):
        plain, columns = _pair()
        made = _scenario(100 + seed, plain, columns, days=80)
        assert 0 < made < 80


@pytest.mark.usefixtures("always_columns")
def test_a_fill_on_a_lagging_holding_and_state_reports_turned_on_see_the_last_mark() -> None:
    plain, columns = _pair()
    for b in (plain, columns):
        b.roll_day(20250106)
        for i, code in enumerate(CODES[:4]):
            _submit(b, BUY, code, 1000, 10.0 + i, T0 + i, 20250106)
    prices = [11.5, 12.25, 0.0, 14.0] + [1.0] * (len(CODES) - 4)
    plain.mark_and_snapshot(dict(zip(CODES, prices, strict=True)), lambda c: None)
    held = columns.mark_and_snapshot(StepPrices(INDEX, np.asarray(prices)), lambda c: None)
    assert isinstance(held[ACC], HeldArrays)
    for b in (plain, columns):
        b.roll_day(20250107)
        _submit(b, SELL, CODES[0], 400, 11.0, T0 + 10, 20250107)  # a fill on a lagging one
        b.ex_rights(CODES[1], 0.5, 0.3)
    assert columns.asset(ACC) == plain.asset(ACC)
    columns.state_reports(ACC, True)
    plain.state_reports(ACC, True)
    assert columns.positions(ACC) == plain.positions(ACC)
    assert columns.asset(ACC) == plain.asset(ACC)


@pytest.mark.usefixtures("always_columns")
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_a_bad_price_is_refused_as_the_plain_mark_refuses_it(bad: float) -> None:
    plain, columns = _pair()
    for b in (plain, columns):
        b.roll_day(20250106)
        for code in CODES[:3]:
            _submit(b, BUY, code, 100, 10.0, T0, 20250106)
    prices = [10.5, bad, 11.0] + [1.0] * (len(CODES) - 3)
    errors = []
    for b, p in ((plain, dict(zip(CODES, prices, strict=True))), (columns, None)):
        keyed = StepPrices(INDEX, np.asarray(prices)) if p is None else p
        with pytest.raises(InvalidArgument) as err:
            b.mark_and_snapshot(keyed, lambda c: None)
        errors.append(str(err.value))
    assert errors[0] == errors[1] and CODES[1] in errors[0]
    # A bad price from the fallback (a code with no record at this moment) too.
    for b in (plain, columns):
        keys = np.asarray([0, 2], dtype=np.int64)
        sparse = SparsePrices(INDEX, CODES, keys, np.asarray([10.5, 11.0]))
        with pytest.raises(InvalidArgument, match=CODES[1]):
            b.mark_and_snapshot(sparse, lambda c: bad)


def test_keyed_positions_rows_equal_the_listed_ones() -> None:
    listed, keyed = Recorder(), Recorder()
    rows = [
        (20250106, [CODES[3], CODES[1]], [100, 200], [0, 200], [10.5, 3.25]),
        (20250107, [CODES[1], CODES[7], CODES[3]], [300, 100, 100], [300, 0, 100], [3.5, 7.0, 1.0]),
        (20250108, [], [], [], []),
        (20250109, [CODES[7]], [100], [100], [7.25]),
    ]
    for day, codes, volumes, usable, closes in rows:
        for r in (listed, keyed):
            asset = Broker().asset("X")
            if r is listed:
                r.record_day_columns("X", day, asset, (codes, volumes, usable, closes), None)
            else:
                held = HeldArrays(
                    np.asarray([INDEX[c] for c in codes], dtype=np.int64),
                    np.asarray(volumes, dtype=np.int64),
                    np.asarray(usable, dtype=np.int64),
                    np.asarray(closes, dtype=np.float64),
                )
                r.record_day_keyed("X", day, asset, CODES, held, None)
    assert keyed.frames()["positions"].equals(listed.frames()["positions"])


def test_keyed_and_listed_days_mixed_keep_their_order_and_codes() -> None:
    """An account recorded by code number on some closes and by name on others (state
    reports turned on and off), with two name lists: the rows of the all-listed recording."""
    other = list(reversed(CODES))
    days = [
        (20250106, "keyed", CODES, [CODES[3], CODES[1]], [100, 200], [0, 200], [10.5, 3.25]),
        (20250107, "listed", CODES, [CODES[1], CODES[7]], [300, 100], [300, 0], [3.5, 7.0]),
        (20250108, "listed", CODES, [CODES[2]], [100], [100], [2.5]),
        (20250109, "keyed", other, [CODES[7], CODES[0]], [100, 500], [100, 0], [7.25, 1.5]),
        (20250110, "keyed", CODES, [], [], [], []),
        (20250113, "keyed", CODES, [CODES[11]], [900], [900], [4.0]),
        (20250114, "listed", CODES, [CODES[11], CODES[4]], [900, 100], [900, 0], [4.5, 8.0]),
    ]
    listed, mixed = Recorder(), Recorder()
    asset = Broker().asset("X")
    for day, how, names, codes, volumes, usable, closes in days:
        listed.record_day_columns("X", day, asset, (codes, volumes, usable, closes), None)
        if how == "listed":
            mixed.record_day_columns("X", day, asset, (codes, volumes, usable, closes), None)
            continue
        held = HeldArrays(
            np.asarray([names.index(c) for c in codes], dtype=np.int64),
            np.asarray(volumes, dtype=np.int64),
            np.asarray(usable, dtype=np.int64),
            np.asarray(closes, dtype=np.float64),
        )
        mixed.record_day_keyed("X", day, asset, names, held, None)
    want = listed.frames()["positions"]
    assert want.height == 10
    assert mixed.frames()["positions"].equals(want)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("extra", ["", "&fill=close", "&fill=qmt&participation=0.1&slippage=1"])
def test_a_backtest_marked_as_columns_has_the_results_of_the_plain_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, aligned: bool
) -> None:
    monkeypatch.setattr(marks, "COLUMNS_FROM", 10**9)  # never as columns
    plain = run_small_backtest(tmp_path / "a", extra, aligned=aligned)
    monkeypatch.setattr(marks, "COLUMNS_FROM", 0)
    monkeypatch.setattr(marks, "COLUMNS_UNTIL", 0)
    columns = run_small_backtest(tmp_path / "b", extra, aligned=aligned)
    assert columns.positions.height > 500
    assert columns.positions["code"].n_unique() > 20
    assert columns.digest() == plain.digest()
