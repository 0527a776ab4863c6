"""Price limits of a new listing's first days, by board and listing date (backends.daylimits).

Rule dates: limits began 1996-12-16; STAR (from 2019-07-22), ChiNext listed from 2020-08-24
and the main board listed from 2023-04-10 trade five days without limits; BJ one day; main
board and ChiNext listings of 2014 .. their reform have a +44 % / -36 % band on day one, earlier
ones no limit that day. Every price below is the pre-close times the ratio, rounded to the cent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.daylimits import NO_LIMIT, day_limits, listing_day
from qmtkit.backends.replay.listings import first_trading_days, listing_dates
from qmtkit.backends.sim.history import SyntheticHistory
from qmtkit.backtest.runner import BarContext, run_backtest
from qmtkit.codes import Board
from qmtkit.constants import OrderStatus
from qmtkit.data.cache import Cache
from qmtkit.data.reference import Reference
from qmtkit.models import InstrumentDetail
from support.history import DAYS
from support.history import daily_bars as _bars

MAIN, CHINEXT, STAR, BJ = Board.MAIN, Board.CHINEXT, Board.STAR, Board.BJ


@pytest.mark.parametrize(
    ("board", "list_date", "free"),
    [
        (STAR, 20190722, 5),
        (CHINEXT, 20200824, 5),
        (MAIN, 20230410, 5),
        (BJ, 20211115, 1),
    ],
)
def test_registration_listings_trade_their_first_days_without_limits(
    board: Board, list_date: int, free: int
) -> None:
    for nth in range(1, free + 1):
        assert day_limits(10.0, board, False, 20240102, list_date=list_date, nth_day=nth) == (
            NO_LIMIT
        )
    after = day_limits(10.0, board, False, 20240102, list_date=list_date, nth_day=free + 1)
    ratio = {STAR: 0.2, CHINEXT: 0.2, MAIN: 0.1, BJ: 0.3}[board]
    assert after == (round(10 * (1 - ratio), 2), round(10 * (1 + ratio), 2))


@pytest.mark.parametrize(
    ("board", "list_date"), [(MAIN, 20230407), (MAIN, 20140117), (CHINEXT, 20200821)]
)
def test_approval_era_listings_are_bounded_at_44_up_and_36_down_of_the_issue_price(
    board: Board, list_date: int
) -> None:
    # Issue price 12.35: 12.35 x 1.44 = 17.784, 12.35 x 0.64 = 7.904.
    assert day_limits(12.35, board, False, list_date, list_date=list_date, nth_day=1) == (
        7.90,
        17.78,
    )
    # The second day is an ordinary day of the era: 10 % on both boards.
    assert day_limits(17.78, board, False, list_date, list_date=list_date, nth_day=2) == (
        16.0,
        19.56,
    )


def test_listings_before_2014_had_no_limit_on_their_first_day_only() -> None:
    assert day_limits(8.0, MAIN, False, 20100105, list_date=20100105, nth_day=1) == NO_LIMIT
    assert day_limits(8.0, MAIN, False, 20100106, list_date=20100105, nth_day=2) == (7.2, 8.8)


def test_chinext_had_10_percent_limits_until_its_2020_reform() -> None:
    assert day_limits(10.0, CHINEXT, False, 20200821) == (9.0, 11.0)
    assert day_limits(10.0, CHINEXT, True, 20200821) == (9.5, 10.5)
    assert day_limits(10.0, CHINEXT, False, 20200824) == (8.0, 12.0)
    assert day_limits(10.0, CHINEXT, True, 20200824) == (8.0, 12.0)


def test_there_were_no_daily_limits_before_1996_12_16() -> None:
    assert day_limits(10.0, MAIN, False, 19961213) == NO_LIMIT
    assert day_limits(10.0, MAIN, False, 19961216) == (9.0, 11.0)


def test_without_a_listing_date_every_day_has_the_boards_ordinary_limit() -> None:
    assert day_limits(10.0, STAR, False, 20240102) == (8.0, 12.0)
    assert day_limits(10.0, STAR, False, 20240102, list_date=20240102) == (8.0, 12.0)


def test_the_first_five_days_are_counted_on_the_exchange_calendar() -> None:
    # Listed on Wednesday 2024-02-07: the Spring Festival closed 02-09 .. 02-16.
    first = first_trading_days(20240207, "SH", None)
    assert first == (20240207, 20240208, 20240219, 20240220, 20240221)
    assert [listing_day(d, 20240207, first) for d in (20240206, 20240207, 20240219, 20240222)] == [
        0,
        1,
        3,
        6,
    ]


def test_the_simulators_new_listings_follow_the_same_rules() -> None:
    history = SyntheticHistory()
    chinext = history.listing("300022.SZ")  # ChiNext, listed 2022-03-21 in the seeded universe
    assert chinext.list_date == 20220321
    first = history.instrument("300022.SZ", 20220325)  # its fifth trading day
    sixth = history.instrument("300022.SZ", 20220328)
    assert (first.UpStopPrice, first.DownStopPrice, first.OpenDate) == (0.0, 0.0, "20220321")
    assert (sixth.DownStopPrice, sixth.UpStopPrice) == (
        round(sixth.PreClose * 0.8 + 1e-9, 2),
        round(sixth.PreClose * 1.2 + 1e-9, 2),
    )
    # A main-board listing of 2022 (before the reform): day one has the +44 % / -36 % band.
    day_one = history.instrument("002550.SZ", 20221017)
    assert day_one.UpStopPrice == round(day_one.PreClose * 1.44 + 1e-9, 2)
    assert day_one.DownStopPrice == round(day_one.PreClose * 0.64 + 1e-9, 2)


# --------------------------------------------------------------------------- in a backtest

NEW = "688981.SH"  # a STAR code listed on the replay's first day
URL = f"backtest://?start={DAYS[0]}&end={DAYS[-1]}&codes={NEW}&fill=close"
# Issue price 10.00; the stock more than doubles in its first week.
CLOSES = [22.0, 24.0, 26.0, 28.0, 30.0, 31.0]
ROWS = [(c - 2, c + 3, c - 4, c, 30_000) for c in CLOSES]  # open, high, low, close, lots


def write_listing(home: Path, open_date: str | None) -> None:
    cols = _bars(ROWS)
    cols["preClose"] = np.asarray([10.0, *CLOSES[:-1]])
    Cache(home).write_bars("1d", {NEW: cols})
    if open_date is not None:
        item = InstrumentDetail(
            ExchangeID="SH", InstrumentID="688981", InstrumentName="new", OpenDate=open_date
        )
        Reference(Cache(home).root).write_instruments("baostock", [item])


def buy_at_half_above_the_close(frame: pl.DataFrame, ctx: BarContext) -> None:
    close = float(frame["close"][0])
    ctx.buy(NEW, 100, round(close * 1.5, 2))


@pytest.mark.filterwarnings("ignore:fill=close")
async def test_a_backtest_gives_a_new_listing_its_free_days_from_the_cached_listing_date(
    tmp_path: Path,
) -> None:
    write_listing(tmp_path, "20240102")
    assert listing_dates(Cache(tmp_path).root, [NEW]) == {NEW: 20240102}
    result = await run_backtest(URL, on_bars=buy_at_half_above_the_close, home=tmp_path)
    orders = result.orders.sort("time")
    # Days 1-5 take a price 50 % above the close and fill at the close; day 6 has 20 % limits
    # from its pre-close 30.00, so 46.50 is refused.
    assert orders["status"].to_list() == [int(OrderStatus.SUCCEEDED)] * 5 + [int(OrderStatus.JUNK)]
    assert orders["traded_price"].to_list()[:5] == CLOSES[:5]
    assert "outside today's limits of 688981.SH [24.00, 36.00]" in orders["error"][5]


@pytest.mark.filterwarnings("ignore:fill=close")
async def test_without_a_listing_date_the_first_days_have_the_ordinary_limit(
    tmp_path: Path,
) -> None:
    write_listing(tmp_path, None)
    result = await run_backtest(URL, on_bars=buy_at_half_above_the_close, home=tmp_path)
    errors = result.orders.sort("time")["error"].to_list()
    # Day one is limited at 20 % of the issue price 10.00, and so on.
    assert errors[0] is not None and "[8.00, 12.00]" in errors[0]
    assert all(e is not None and "outside today's limits" in e for e in errors)
