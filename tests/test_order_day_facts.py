"""An order's instrument of the day without an ``InstrumentDetail``: the same facts, the same
rules, the same reports.

A backtest works out the day's pre-close, trading flag and price limits of every code for a
block of days in one vector step (``ReplayMarket._block``, ``daylimits.ordinary_limits``) and
hands an order the rules' view of its instrument (``rules.Listing``) instead of building an
``InstrumentDetail``. Each piece is checked here against the general path it stands in for, on
the edge cases the rules care about.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from qmtkit.backends.base import SubmitOrder
from qmtkit.backends.daylimits import (
    CHINEXT_REFORM,
    LIMITS_BEGAN,
    RATIO_CHANGES,
    board_ratio,
    day_limits,
    ordinary_limits,
)
from qmtkit.backends.replay.market import ReplayMarket, day_ms
from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.rules import Listing
from qmtkit.codes import Board, band_prices
from qmtkit.data.cache import Cache
from qmtkit.data.calendar import yyyymmdd_to_ms
from qmtkit.data.reference import Reference
from qmtkit.errors import InvalidArgument
from qmtkit.models import InstrumentDetail, OrderError, TradeReportItem
from support.broker import BUY, FIX, SELL, T0, instrument

BOARDS = list(Board)
ERA_DAYS = [19960102, LIMITS_BEGAN - 1, LIMITS_BEGAN, 20100104, CHINEXT_REFORM - 1, CHINEXT_REFORM]


# --------------------------------------------------------------------------- the limits


def test_a_boards_ordinary_ratio_changes_only_on_the_listed_days() -> None:
    import datetime as dt

    day, end = dt.date(1990, 1, 1), dt.date(2035, 12, 31)
    last: dict[tuple[Board, bool], float | None] = {}
    while day <= end:
        ymd = day.year * 10000 + day.month * 100 + day.day
        for board, st in itertools.product(BOARDS, (False, True)):
            ratio = board_ratio(board, st, ymd)
            key = (board, st)
            if key in last and ratio != last[key]:
                assert ymd in RATIO_CHANGES, (board, st, ymd)
            last[key] = ratio
        day += dt.timedelta(days=1)


def test_ordinary_limits_round_every_cent_as_band_prices_does_at_each_ratio() -> None:
    # Main 10 %, main ST 5 %, ChiNext 20 % (after its reform), BJ 30 %: every ratio in use.
    boards, st = [Board.MAIN, Board.MAIN, Board.CHINEXT, Board.BJ], [False, True, False, False]
    rng = np.random.default_rng(7)
    cents = np.concatenate([np.arange(1, 50_001), rng.integers(50_001, 10**8, 20_000)])
    pre = cents / 100.0
    day = CHINEXT_REFORM
    down, up = ordinary_limits(np.tile(pre[:, None], (1, 4)), boards, st, [day] * len(pre))
    for b, (board, is_st) in enumerate(zip(boards, st, strict=True)):
        want = [day_limits(p, board, is_st, day) for p in pre.tolist()]
        assert down[:, b].tolist() == [w[0] for w in want], board
        assert up[:, b].tolist() == [w[1] for w in want], board


@pytest.mark.parametrize("st", [False, True])
def test_ordinary_limits_are_day_limits_on_every_board_and_era(st: bool) -> None:
    rng = np.random.default_rng(11)
    pre = np.concatenate(
        [[0.01, 0.02, 0.05, 0.1, 1.0, 9.99, 10.0, 10.05], rng.integers(1, 10**6, 300) / 100]
    )
    days = ERA_DAYS * len(pre)
    grid = np.repeat(pre, len(ERA_DAYS))[:, None].repeat(len(BOARDS), axis=1)
    down, up = ordinary_limits(grid, BOARDS, [st] * len(BOARDS), days)
    for (d, day), (b, board) in itertools.product(enumerate(days), enumerate(BOARDS)):
        want = day_limits(float(grid[d, b]), board, st, day)
        assert (float(down[d, b]), float(up[d, b])) == want, (board, day, grid[d, b])


def test_ordinary_limits_leave_odd_pre_closes_to_day_limits_and_check_the_shape() -> None:
    odd = np.asarray([[10.005], [0.0], [-1.0], [np.nan], [np.inf], [12.3456], [1e15]])
    down, up = ordinary_limits(odd, [Board.MAIN], [False], [20240102] * len(odd))
    assert np.isnan(down).all() and np.isnan(up).all()
    # A day without a limit needs no pre-close: (0, 0) as day_limits says.
    down, up = ordinary_limits(odd, [Board.INDEX], [False], [20240102] * len(odd))
    assert (down == 0).all() and (up == 0).all()
    down, up = ordinary_limits(odd, [Board.MAIN], [False], [19960102] * len(odd))
    assert (down == 0).all() and (up == 0).all()
    assert band_prices(10.005, 0.1, 0.1) == day_limits(10.005, Board.MAIN, False, 20240102)
    with pytest.raises(ValueError, match=r"shape \(7, 1\), expected \(7, 2\)"):
        ordinary_limits(odd, [Board.MAIN, Board.STAR], [False, False], [20240102] * len(odd))


# --------------------------------------------------------------------------- the market

DAYS20 = [
    20200810, 20200811, 20200812, 20200813, 20200814, 20200817, 20200818, 20200819,
    20200820, 20200821, 20200824, 20200825, 20200826, 20200827, 20200828, 20200831,
]  # fmt: skip
MAIN, ST, CHINEXT, STAR, BJ, ETF, INDEX, NEW_MAIN, NEW_CHINEXT, ODD = (
    "600000.SH",
    "000002.SZ",
    "300001.SZ",
    "688001.SH",
    "830799.BJ",
    "510300.SH",
    "000300.SH",
    "605001.SH",
    "301001.SZ",
    "600004.SH",
)
CODES = [MAIN, ST, CHINEXT, STAR, BJ, ETF, INDEX, NEW_MAIN, NEW_CHINEXT, ODD]


def _columns(code: str, seed: int, days: list[int]) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    cents = np.cumsum(rng.integers(-60, 61, len(days))) + 1000
    close = cents / 100.0
    if code == ETF:
        close = np.round(close / 3.0, 3)  # three decimals, off the cent grid
    pre = np.concatenate([[close[0]], close[:-1]])
    volume = np.full(len(days), 10_000, dtype=np.int64)
    suspend = np.zeros(len(days), dtype=np.int8)
    if code == MAIN:
        pre[3] = 0.0  # no pre-close field: the close a step back
        suspend[5] = 1
        volume[6] = 0
    if code == ODD:
        pre[2:5] = [10.005, 12.3456, np.nan]
    return {
        "time": yyyymmdd_to_ms(days),
        "open": close,
        "high": close,
        "low": close,
        "close": close,
        "volume": volume,
        "amount": close * volume * 100,
        "preClose": pre,
        "suspendFlag": suspend,
    }


def _replay(home: Path, days: list[int] = DAYS20) -> tuple[ReplayMarket, ReplayMarket]:
    """The same replay twice: one reading the timeline's columns, one per code."""
    cache = Cache(home)
    cache.write_bars("1d", {c: _columns(c, i, days) for i, c in enumerate(CODES)})
    listed = [
        InstrumentDetail(ExchangeID=x, InstrumentID=s, InstrumentName="n", OpenDate=d)
        for x, s, d in (("SH", "605001", "20200817"), ("SZ", "301001", "20200824"))
    ]
    Reference(cache.root).write_instruments("baostock", listed)

    def make() -> ReplayMarket:
        return ReplayMarket(
            cache, CODES, "1d", day_ms(DAYS20[0]), day_ms(DAYS20[-1]) + 1, st_codes=[ST]
        )

    fast = make()
    fast.long_columns()
    return fast, make()


def _slots(listing: Listing) -> tuple[Any, ...]:
    return tuple(getattr(listing, n) for n in Listing.__slots__ if n != "source")


def _rules_listing(detail: InstrumentDetail) -> Listing:
    """The listing the rules make from an InstrumentDetail (the general path)."""
    from qmtkit.backends.sim import rules

    code = detail.stock_code
    if detail.board == "index" or not detail.IsTrading:
        return Listing(
            code,
            detail.ExchangeID,
            detail.InstrumentName,
            detail.PriceTick,
            detail.UpStopPrice,
            detail.DownStopPrice,
            detail.IsTrading,
            detail.board == "index",
        )
    return rules._listing(code, detail)


@pytest.mark.parametrize("block", [0, 1, 3, 7])
def test_the_days_facts_of_every_code_from_blocks_equal_those_worked_out_per_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    import qmtkit.backends.replay.market as market_module

    if block:  # blocks of that many days (the default: every day of this replay at once)
        monkeypatch.setattr(market_module, "_BLOCK_RECORDS", block * len(CODES))
    fast, slow = _replay(tmp_path)
    assert fast._aligned and fast.listings.dates == {NEW_MAIN: 20200817, NEW_CHINEXT: 20200824}
    for day in DAYS20:
        for code in CODES:
            detail = fast.instrument(code, day)
            assert detail == slow.instrument(code, day), (code, day)
            assert _slots(fast.listing(code, day)) == _slots(_rules_listing(detail)), (code, day)
            # The bar books (barbook.quote) read the listing and the pre-close alone.
            assert fast.pre_close(code, day) == detail.PreClose, (code, day)
            assert slow.pre_close(code, day) == detail.PreClose, (code, day)
    assert fast._blk_k1 == len(DAYS20)  # the blocks were read
    assert slow._blk_k1 == 0
    # What the edge cases came to.
    main = [fast.instrument(MAIN, d) for d in DAYS20]
    bar = fast.bar_at(MAIN, 2)
    assert bar is not None and main[3].PreClose == bar[3]  # no field: the close a step back
    assert [m.IsTrading for m in main[4:8]] == [True, False, False, True]
    assert (
        fast.instrument(ST, DAYS20[4]).UpStopPrice
        == band_prices(fast.instrument(ST, DAYS20[4]).PreClose, 0.05, 0.05)[1]
    )
    chinext = [fast.instrument(CHINEXT, d) for d in DAYS20]
    assert [round(c.UpStopPrice / c.PreClose - 1, 1) for c in chinext[9:11]] == [0.1, 0.2]
    new = [fast.instrument(NEW_CHINEXT, d) for d in DAYS20[10:]]
    assert [n.UpStopPrice for n in new[:5]] == [0.0] * 5 and new[5].UpStopPrice > 0
    assert fast.instrument(INDEX, DAYS20[4]).UpStopPrice == 0.0
    assert fast.listing(INDEX, DAYS20[4]).index and not fast.listing(MAIN, DAYS20[5]).trading


@pytest.mark.parametrize("gather_from", [1, 4, 1000])
def test_listings_for_a_batch_equal_the_listings_made_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gather_from: int
) -> None:
    import qmtkit.backends.replay.market as market_module

    # 1: every batch gathers its facts as arrays; 1000: none does; 4: some do.
    monkeypatch.setattr(market_module, "_GATHER_FROM", gather_from)
    batched, single = _replay(tmp_path)
    single.long_columns()
    batch = [*CODES, MAIN, CODES[3], MAIN]  # a code twice in one batch
    for k, day in enumerate(DAYS20):
        if k % 3 == 1:  # some listings made before the batch asks for them
            batched.listing(CHINEXT, day)
        codes = batch if k % 2 else batch[::-1]
        got = batched.listings_for(codes, day, [CODES.index(c) for c in codes])
        want = [single.listing(c, day) for c in codes]
        assert [_slots(g) for g in got] == [_slots(w) for w in want], day
        # One listing per code and day, whichever way it was made.
        assert got[0] is batched.listing(got[0].code, day)
    assert batched.listings_for([], DAYS20[2], []) == []


# --------------------------------------------------------------------------- the broker


def _both(
    brokers: tuple[Broker, Broker],
    fast: ReplayMarket,
    req: SubmitOrder,
    day: int,
    **kw: Any,
) -> list[TradeReportItem]:
    """Submit ``req`` to one broker with the InstrumentDetail, to the other with the market's
    listing; both must answer alike. Returns the reports."""
    code = req.stock_code
    norm = code.upper() if isinstance(code, str) else ""
    known = norm in fast._code_index
    by_detail, by_listing = brokers
    kw.setdefault("book", None)
    a = by_detail.submit(
        req, instrument=fast.instrument(norm, day) if known else None, day=day, now_ms=T0, **kw
    )
    b = by_listing.submit(
        req,
        instrument=None,
        listing=fast.listing(norm, day) if known else None,
        day=day,
        now_ms=T0,
        **kw,
    )
    assert msgspec.to_builtins(a) == msgspec.to_builtins(b), req
    return a[1]


def _req(code: str, side: int, volume: int, price: float, pt: int = FIX) -> SubmitOrder:
    return SubmitOrder("A1", code, side, volume, pt, price, "s", "r")


def test_orders_judged_on_the_markets_listing_get_the_reports_of_the_instrument_path(
    tmp_path: Path,
) -> None:
    from support.broker import book

    fast, _ = _replay(tmp_path)
    brokers = (Broker(initial_cash=200_000.0), Broker(initial_cash=200_000.0))
    errors: set[int] = set()
    for n, day in enumerate(DAYS20):
        if n:
            for b in brokers:
                b.roll_day(day)
        for code in CODES:
            detail = fast.instrument(code, day)
            pre, up, down = detail.PreClose, detail.UpStopPrice, detail.DownStopPrice
            price = round(pre, 2) if pre > 0 else 10.0
            tick = book(code, last=price, asks=[(price, 100_000)], bids=[(price, 100_000)])
            orders = [
                (_req(code, BUY, 100, price), tick),  # fills at once where it trades
                (_req(code, SELL, 100, price), None),  # T+1: not sellable today
                (_req(code, BUY, 150, price), None),  # bad lot
                (_req(code, BUY, 100, price + 0.005), None),  # off the tick
                (_req(code, BUY, 100, round(up + 0.01, 2)), None),  # above the limit
                (_req(code, BUY, 100, max(round(down - 0.01, 2), 0.01)), None),
                (_req(code, BUY, 100, up), None),  # the limits themselves
                (_req(code, SELL, 100, down), None),
                (_req(code, BUY, 1_000_000, price), None),  # no cash
                (_req(code, SELL, 50, price), None),  # odd lot of part of a holding
                (_req(code.lower(), BUY, 100, price), None),  # a code to normalise
                (_req(code, BUY, 100, 0.0, 42), tick),  # a market kind: the protective limit
                (_req(code, BUY, 100, 0.0, 5), None),  # LATEST_PRICE without a quote
                (_req(code, 99, 100, price), None),  # a bad side
            ]
            for req, tick_ in orders:
                for item in _both(brokers, fast, req, day, book=tick_):
                    if isinstance(item, OrderError):
                        errors.add(item.error_id)
    # Unknown and malformed codes go through the general path on both.
    for code in ("600999.SH", "60000X.SH"):
        last = _both(brokers, fast, _req(code, BUY, 100, 10.0), DAYS20[-1])[-1]
        assert isinstance(last, OrderError)
        errors.add(last.error_id)
    assert errors == {2, 4, 5, 6, 7, 8, 10, 11, 12, 13}, errors
    trades = brokers[1].trades("A1")
    assert trades and brokers[0].trades("A1") == trades


def test_a_listing_for_another_code_or_of_another_type_is_refused_by_name(tmp_path: Path) -> None:
    fast, _ = _replay(tmp_path)
    broker = Broker()
    listing = fast.listing(MAIN, DAYS20[1])
    with pytest.raises(
        InvalidArgument, match=r"listing 600000\.SH was passed for an order on 688001\.SH"
    ):
        broker.submit(
            _req(STAR, BUY, 100, 10.0), book=None, instrument=None, listing=listing,
            now_ms=T0, day=DAYS20[1],
        )  # fmt: skip
    with pytest.raises(
        InvalidArgument, match="listing must be a Listing or None, got InstrumentDetail"
    ):
        broker.submit(
            _req(MAIN, BUY, 100, 10.0), book=None, instrument=None,
            listing=instrument(MAIN),  # type: ignore[arg-type]
            now_ms=T0, day=DAYS20[1],
        )  # fmt: skip
    assert broker.orders("A1") == []


# --------------------------------------------------------------------------- the replay


async def test_a_backtests_latest_price_order_still_meets_the_last_close_under_next_open(
    tmp_path: Path,
) -> None:
    # A limit order under next_open rests without a book; a LATEST_PRICE order is priced
    # from the last close (refused "no quote" without it), a limit one from its own price.
    from qmtkit.backtest.runner import BarContext, run_backtest
    from support.history import DAYS, FLAT, RISING, A
    from support.history import daily_bars as bars

    Cache(tmp_path).write_bars("1d", {A: bars(RISING), "000001.SZ": bars(FLAT)})

    def place(frame: Any, ctx: BarContext) -> None:
        if ctx.now() < day_ms(DAYS[2]):
            ctx.order(A, BUY, 100, 0.0, price_type=5)
            ctx.buy(A, 100, 11.0)

    result = await run_backtest(
        f"backtest://?start={DAYS[0]}&end={DAYS[-1]}&codes={A},000001.SZ",
        on_bars=place,
        home=tmp_path,
    )
    orders = result.orders.sort("order_id")
    assert orders["price_type"].to_list() == [5, FIX] * 2
    assert orders["price"].to_list() == [RISING[0][3], 11.0, RISING[1][3], 11.0]
    assert orders["error"].to_list() == [None] * 4
