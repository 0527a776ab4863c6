"""A bar's fills without a ``Tick``: ``Broker.on_bar`` and the replay's resting-order path that
uses it give exactly what the general path (``on_tick`` against the ``Tick`` of the same
one-level book) gives: the same reports in the same order, the same state, the same result
frames, over partial fills under the participation cap, slippage, locked limit days,
suspensions, several orders on one code, two accounts and the ``close`` and ``qmt`` models."""

from __future__ import annotations

import itertools
import math
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import qmtkit.backends.replay.backend as replay_backend
from qmtkit.backends.replay import ReplayBackend
from qmtkit.backends.replay.barbook import quote, quotes, round3_array
from qmtkit.backends.replay.market import ReplayMarket
from qmtkit.backends.sim.accounts import round3
from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.rules import Listing
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.client import Account, Client
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import ms_to_yyyymmdd, trading_days, yyyymmdd_to_ms
from qmtkit.errors import InvalidArgument
from qmtkit.models import Tick, TradeReportItem
from support.broker import (
    BUY,
    DAY,
    SELL,
    T0,
    book,
    broker_state,
    instrument,
    one_level_tick,
    order,
)

CODE = "600000.SH"
ACCOUNTS = ("A1", "A2")


# --------------------------------------------------------------------------- the broker


def _resting_broker(quiet: bool) -> Broker:
    """Two accounts with buys and sells resting on CODE at several limits (both hold shares)."""
    broker = Broker(initial_cash=10_000_000.0, allow_new_accounts=False)
    for acc in ACCOUNTS:
        broker.open_account(acc)
    seed = book(CODE, asks=[(10.0, 100_000)], bids=[], time=T0 - 60_000)
    inst = instrument(CODE, up=11.0, down=9.0)
    for acc in ACCOUNTS:
        broker.submit(
            order(BUY, 5000, 10.0, account=acc),
            book=seed,
            instrument=inst,
            now_ms=T0 - 60_000,
            day=DAY,
        )
    broker.roll_day(DAY + 1)  # the shares become sellable
    if quiet:
        broker.state_reports("A2", False)
    reqs = [
        ("A1", BUY, 700, 10.05),
        ("A2", BUY, 300, 10.20),
        ("A1", BUY, 500, 10.05),
        ("A2", SELL, 800, 9.95),
        ("A1", SELL, 400, 10.10),
        ("A2", BUY, 200, 9.80),
        ("A1", SELL, 300, 9.95),
    ]
    for acc, side, volume, price in reqs:
        broker.submit(
            order(side, volume, price, account=acc),
            book=None,
            instrument=inst,
            now_ms=T0,
            day=DAY + 1,
        )
    return broker


def _tick(time: int, ask: float | None, bid: float | None, volume: int) -> Tick:
    return one_level_tick(CODE, time, ask, bid, volume)


def _state(broker: Broker) -> list[Any]:
    return broker_state(broker, ACCOUNTS)


PRICES = [None, 0.0, 9.80, 9.95, 10.0, 10.05, 10.10, 10.20, 10.30]


@pytest.mark.parametrize("quiet", [False, True])
@pytest.mark.parametrize("volume", [0, 100, 400, 1000, 5000])
def test_on_bar_gives_the_reports_and_state_of_on_tick_with_that_book(
    quiet: bool, volume: int
) -> None:
    for ask, bid in itertools.product(PRICES, PRICES):
        general, fast = _resting_broker(quiet), _resting_broker(quiet)
        # Two books at one time share their volume; a later time brings it back afresh.
        for time in (T0 + 1000, T0 + 1000, T0 + 2000):
            want = general.on_tick(_tick(time, ask, bid, volume), T0 + 5000)
            got = fast.on_bar(CODE, time, ask, bid, volume, T0 + 5000)
            assert got == want, (ask, bid, volume, time)
        assert _state(fast) == _state(general), (ask, bid, volume)


def test_on_bar_and_on_tick_share_one_tick_s_volume_at_the_same_time() -> None:
    general, mixed = _resting_broker(False), _resting_broker(False)
    t = T0 + 1000
    want = general.on_tick(_tick(t, 10.0, 10.0, 600), T0)
    want += general.on_tick(_tick(t, 10.0, 10.0, 600), T0)
    got = mixed.on_bar(CODE, t, 10.0, 10.0, 600, T0)
    got += mixed.on_tick(_tick(t, 10.0, 10.0, 600), T0)
    assert got == want
    assert _state(mixed) == _state(general)
    # The tick after a bar read as numbers: its book is read in full again.
    got = mixed.on_tick(_tick(t + 1, 10.0, 10.0, 600), T0)
    assert got == general.on_tick(_tick(t + 1, 10.0, 10.0, 600), T0)


def test_on_bar_on_a_code_with_nothing_resting_reports_nothing_and_refuses_a_bad_time() -> None:
    broker = _resting_broker(False)
    assert broker.on_bar("000001.SZ", T0, 10.0, 10.0, 1000, T0) == []
    with pytest.raises(InvalidArgument, match="now_ms"):
        broker.on_bar(CODE, T0, 10.0, 10.0, 1000, -1)


# --------------------------------------------------------------------------- the replay


def _general_match(backend: ReplayBackend) -> None:
    """Make ``backend`` meet resting orders the general way: a ``Tick`` per code, ``on_tick``."""
    fast = backend._match_resting

    def match(k: int, phase: str) -> None:
        spec = backend.spec
        if phase == "close" and spec.fill == "qmt":
            fast(k, phase)  # by each order's own limit: books and on_tick_for already
            return
        broker = backend.broker
        now = backend.clock.now_ms()
        pairs: list[tuple[str, TradeReportItem]] = []
        for code in broker.resting_codes:
            book = backend._book(code, k, phase)
            if book is not None:
                pairs += broker.on_tick(book, now)
        backend.accounts.publish_many(pairs)
        backend._collect_taxes()

    backend._match_resting = match  # type: ignore[method-assign]


def _write_days(home: Path, n_days: int = 40) -> tuple[list[str], str]:
    """Four codes: one locked at its limits on some days, one suspended on some (and one
    day without volume), one with thin volume (partial fills), one plain."""
    codes = ["000001.SZ", "000002.SZ", "600000.SH", "600001.SH"]
    t = np.asarray(trading_days("SH", "20240102", None, count=-1)[:n_days], dtype=np.int64)
    days = [int(d) for d in ms_to_yyyymmdd(t[[0, -1]])]
    rng = np.random.default_rng(5)
    bars = {}
    for i, code in enumerate(codes):
        close = np.round(10 * np.cumprod(1 + rng.normal(0, 0.02, n_days)), 2)
        pre = np.concatenate([[10.0], close[:-1]])
        opn = np.round(pre * (1 + rng.normal(0, 0.01, n_days)), 2)
        high = np.round(np.maximum(opn, close) * 1.01, 2)
        low = np.round(np.minimum(opn, close) * 0.99, 2)
        vol = rng.integers(50, 500, n_days) if i == 2 else rng.integers(5_000, 50_000, n_days)
        keep = np.ones(n_days, bool)
        if i == 0:
            for d in range(5, n_days, 6):  # locked: up on odd rounds, down on even ones
                lim = round(
                    pre[d] * (1.1 if d % 12 == 5 else 0.9) + (-1e-9 if d % 12 == 5 else 1e-9), 2
                )
                opn[d] = high[d] = low[d] = close[d] = lim
                if d + 1 < n_days:
                    pre[d + 1] = lim
        if i == 1:
            keep[10:13] = False
            keep[25] = False
            vol[30] = 0
        bars[code] = {
            "time": t[keep],
            "open": opn[keep],
            "high": high[keep],
            "low": low[keep],
            "close": close[keep],
            "volume": vol[keep].astype(np.int64),
            "amount": (close * vol * 100)[keep],
            "preClose": pre[keep],
        }
    Cache(home).write_bars("1d", bars)
    return codes, f"start={days[0]}&end={days[-1]}&codes={','.join(codes)}&cash=1000000"


class _Orders:
    """Several orders a day per code, buys and sells, limits around the close, seeded."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: pl.DataFrame, ctx: BarContext) -> None:
        rng = self.rng
        for code, close in zip(frame["code"].to_list(), frame["close"].to_list(), strict=True):
            for _ in range(int(rng.integers(0, 4))):
                price = round(close * (1 + float(rng.uniform(-0.04, 0.04))), 2)
                volume = int(rng.integers(1, 30)) * 100
                if rng.random() < 0.5:
                    ctx.buy(code, volume, price)
                elif ctx.sellable(code) >= 100:
                    ctx.sell(code, min(volume, ctx.sellable(code) // 100 * 100), price)


async def _per_bar(qk: Client, account: Account) -> None:
    """The same kind of orders from ordinary async code (a followed account)."""
    rng = np.random.default_rng(11)
    codes = await qk.sector_members("backtest")
    async with qk.subscribe(codes, "1d", max_records=100_000) as bars:
        async for batch in bars:
            for bar in batch:
                for _ in range(int(rng.integers(0, 3))):
                    price = round(bar.close * (1 + float(rng.uniform(-0.04, 0.04))), 2)
                    volume = int(rng.integers(1, 30)) * 100
                    if rng.random() < 0.6:
                        await account.buy(bar.stock_code, volume, price)
                    else:
                        await account.sell(bar.stock_code, volume, price)


FRAMES = ("orders", "trades", "positions", "equity")
OHLC = ("open", "high", "low", "close")
EXTRAS = [
    "",
    "&participation=0.05",
    "&slippage=2",
    "&fill=close",
    "&fill=qmt",
    "&fill=qmt&participation=0.1&slippage=1",
    "&fill=close&participation=0.02&slippage=3",
]


@pytest.mark.parametrize("vector", [False, True])
@pytest.mark.parametrize("extra", EXTRAS)
async def test_the_replays_bar_fills_equal_the_general_path(
    tmp_path: Path, extra: str, vector: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if vector:  # every step's books by vectors (a whole market's way), however few codes
        monkeypatch.setattr(replay_backend, "_VECTOR_FROM", 1)
    _, query = _write_days(tmp_path)
    url = f"backtest://?{query}{extra}"
    runs = []
    logs = []
    for general in (False, True):
        backends: list[ReplayBackend] = []

        def hook(
            backend: ReplayBackend, general: bool = general, backends: list[Any] = backends
        ) -> None:
            backends.append(backend)
            if general:
                _general_match(backend)

        fast = await run_backtest(url, on_bars=_Orders(3), home=tmp_path, backend_hook=hook)
        followed = await run_backtest(url, _per_bar, home=tmp_path, backend_hook=hook)
        runs.append((fast, followed))
        logs.append(backends[1].accounts.reports)
    (fast, followed), (fast_g, followed_g) = runs
    assert fast.trades.height > 50 and followed.trades.height > 50
    for name in FRAMES:
        assert getattr(fast, name).equals(getattr(fast_g, name)), name
        assert getattr(followed, name).equals(getattr(followed_g, name)), name
    assert fast.digest() == fast_g.digest()
    assert followed.digest() == followed_g.digest()
    # The followed account's reports, the ones streamed to the client, in the same order.
    assert logs[0] == logs[1]


async def test_the_bar_fills_meet_partial_fills_locks_and_suspensions(tmp_path: Path) -> None:
    _, query = _write_days(tmp_path)
    result = await run_backtest(
        f"backtest://?{query}&participation=0.05", on_bars=_Orders(3), home=tmp_path
    )
    orders = result.orders
    # Some orders filled in part under the cap, some not at all (a lock or a suspension).
    assert (
        orders.filter(pl.col("status") == 55).height
        + orders.filter(
            (pl.col("traded_volume") > 0) & (pl.col("traded_volume") < pl.col("volume"))
        ).height
        > 0
    )
    assert orders.filter((pl.col("traded_volume") == 0) & (pl.col("status") == 54)).height > 0


def _write_minutes(home: Path) -> str:
    """One day of minute bars of one code, with thin and thick minutes."""
    rng = np.random.default_rng(9)
    n = 60
    day0 = int(yyyymmdd_to_ms([20240102])[0])
    t = day0 + (9 * 60 + 31) * 60_000 + np.arange(n, dtype=np.int64) * 60_000
    close = np.round(10 * np.cumprod(1 + rng.normal(0, 0.003, n)), 2)
    opn = np.round(np.concatenate([[10.0], close[:-1]]) + rng.normal(0, 0.01, n), 2)
    Cache(home).write_bars(
        "1m",
        {
            CODE: {
                "time": t,
                "open": opn,
                "high": np.round(np.maximum(opn, close) + 0.02, 2),
                "low": np.round(np.minimum(opn, close) - 0.02, 2),
                "close": close,
                "volume": rng.integers(2, 40, n).astype(np.int64),
                "amount": close * 1000,
                "preClose": np.full(n, 10.0),
            }
        },
    )
    return f"backtest://?start=20240102&end=20240102&period=1m&codes={CODE}"


class _MinuteOrders:
    def __init__(self) -> None:
        self.rng = np.random.default_rng(4)

    def __call__(self, frame: pl.DataFrame, ctx: BarContext) -> None:
        close = frame["close"].to_list()[0]
        for _ in range(int(self.rng.integers(0, 4))):
            price = round(close * (1 + float(self.rng.uniform(-0.003, 0.003))), 2)
            ctx.buy(CODE, int(self.rng.integers(1, 8)) * 100, price)


@pytest.mark.parametrize("vector", [False, True])
@pytest.mark.parametrize("extra", ["", "&fill=close", "&fill=qmt", "&fill=close&slippage=1"])
async def test_minute_bars_fill_alike_where_a_close_and_the_next_open_share_a_time(
    tmp_path: Path, extra: str, vector: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if vector:
        monkeypatch.setattr(replay_backend, "_VECTOR_FROM", 1)
    # A minute bar's open is the previous bar's close time: one tick's volume for both.
    url = _write_minutes(tmp_path) + extra
    results = []
    for general in (False, True):

        def hook(backend: ReplayBackend, general: bool = general) -> None:
            if general:
                _general_match(backend)

        results.append(
            await run_backtest(url, on_bars=_MinuteOrders(), home=tmp_path, backend_hook=hook)
        )
    fast, slow = results
    assert fast.trades.height > 10
    for name in FRAMES:
        assert getattr(fast, name).equals(getattr(slow, name)), name


def _round3_cases() -> list[float]:
    rng = random.Random(20261206)
    out = [0.0, -0.0, 0.0004, 0.0005, -0.0005, 0.0015, 2.6745, 1e-300, 5e-324, 1e10, -1e10]
    out += [math.inf, -math.inf, 2.0**40 / 1000, 2.0**40 / 1000 + 0.0005]
    for _ in range(20_000):
        li = rng.randrange(-(10**12), 10**12)
        for x in (li / 1000, (li + 0.5) / 1000, (li + rng.random()) / 1000):
            out += [x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf)]
        # what a bar's book rounds: a price on the cent grid, plus or minus slippage ticks
        price = rng.randrange(1, 300_000) / 100
        out += [price, price + rng.randrange(0, 10) * 0.01, price - rng.randrange(0, 10) * 0.01]
        out.append(price + rng.randrange(0, 10) * 0.001)
    return out


def test_round3_equals_round_to_three_decimals_bit_for_bit() -> None:
    wrong = [x for x in _round3_cases() if _bits(round3(x)) != _bits(round(x, 3))]
    assert wrong == []
    assert math.isnan(round3(math.nan))


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_round3_array_equals_round3_of_each_value() -> None:
    cases = np.asarray([*_round3_cases(), math.nan], dtype=np.float64)
    got = round3_array(cases)
    assert [_bits(v) for v in got.tolist()] == [_bits(round(v, 3)) for v in cases.tolist()]


def _instrument_cases(rng: np.random.Generator, n: int) -> list[Any]:
    out = []
    for _ in range(n):
        pre = round(float(rng.uniform(1, 60)), 2)
        kind = int(rng.integers(0, 6))
        up, down = round(pre * 1.1, 2), round(pre * 0.9, 2)
        if kind == 0:
            up = down = 0.0  # an index: no limits
        out.append(
            instrument(
                CODE,
                pre_close=pre,
                up=up,
                down=down,
                trading=kind != 1,
                tick=[0.01, 0.001, 0.0][int(rng.integers(0, 3))],
            )
        )
    return out


@pytest.mark.parametrize("slippage", [0, 1, 2, 0.5])
@pytest.mark.parametrize("participation", [0.25, 0.05, 1.0, 1])
def test_quotes_by_vectors_equal_quote_of_each_bar(slippage: float, participation: float) -> None:
    rng = np.random.default_rng(int(slippage * 10 + participation * 100))
    n = 4000
    insts = _instrument_cases(rng, n)
    price = np.empty(n)
    for i, inst in enumerate(insts):
        pre = inst.PreClose
        kind = int(rng.integers(0, 8))
        if kind == 0 and inst.UpStopPrice:
            price[i] = inst.UpStopPrice  # locked up
        elif kind == 1 and inst.DownStopPrice:
            price[i] = inst.DownStopPrice  # locked down
        elif kind == 2 and inst.UpStopPrice:
            price[i] = inst.UpStopPrice - 0.01  # a tick from the limit: slippage clamps
        elif kind == 3:
            price[i] = float(rng.uniform(0, 100))  # off the cent grid
        else:
            price[i] = round(pre * float(rng.uniform(0.9, 1.1)), 2)
    volume = rng.integers(0, 200, n).astype(np.int64)
    volume[::7] = rng.integers(10**5, 10**9, len(volume[::7]))
    listings = [_listing_of(inst) for inst in insts]
    got = quotes(price, volume, listings, participation, slippage)
    for phase in ("open", "close"):
        want = []
        for p, v, one in zip(price.tolist(), volume.tolist(), listings, strict=True):
            bar = (p, p, p, p, v) if phase == "open" else (p + 1.0, p + 2, p - 1, p, v)
            want.append(quote(bar, one, phase, "next_open", participation, slippage))
        assert [_quote_bits(q) for q in got] == [_quote_bits(q) for q in want]
    assert any(q is None for q in got) and any(q is not None and q[0] is None for q in got)


def _listing_of(inst: Any) -> Listing:
    """What the bar books read of an instrument (a zero tick kept: ``quote`` reads it as a cent)."""
    return Listing(
        inst.stock_code,
        inst.ExchangeID,
        inst.InstrumentName,
        inst.PriceTick,
        inst.UpStopPrice,
        inst.DownStopPrice,
        inst.IsTrading,
        False,
    )


def _quote_bits(q: Any) -> Any:
    if q is None:
        return None
    return (*(None if x is None else _bits(float(x)) for x in q[:2]), q[2], type(q[2]))


@pytest.mark.parametrize("aligned", [True, False])
def test_bars_at_gathers_what_bar_at_reads_code_by_code(tmp_path: Path, aligned: bool) -> None:
    codes, _ = _write_days(tmp_path)
    if aligned:  # the suspended code left out: every code has every day
        codes = [c for c in codes if c != "000002.SZ"]
    cache = Cache(tmp_path)
    t = cache.arrays("1d", codes[0])["time"]
    market = ReplayMarket(cache, codes, "1d", int(t[0]), int(t[-1]) + 1)
    asked = [*codes, "999999.SH", codes[0]]
    assert market.bars_at(asked, 0) is None  # the timeline's columns not laid out yet
    market.long_columns()
    assert market._aligned is aligned
    for k in range(len(market)):
        found = market.bars_at(asked, k)
        assert found is not None
        have, cols = found
        got = {
            i: (
                *(float(cols[n][j]) for n in ("open", "high", "low", "close")),
                int(cols["volume"][j]),
            )
            for j, i in enumerate(have.tolist())
        }
        want = {i: market.bar_at(c, k) for i, c in enumerate(asked)}
        assert got == {i: b for i, b in want.items() if b is not None}
