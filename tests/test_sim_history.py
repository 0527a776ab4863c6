"""The simulator's universe and synthetic history: listing, limits, sectors, bars, dividends."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from qmtkit.backends.sim.history import (
    DAY_MS,
    MINUTES_PER_DAY,
    SyntheticHistory,
    day_ms,
    minute_rows,
    minute_table,
)
from qmtkit.backends.sim.universe import Universe, limit_prices, listing_of
from qmtkit.codes import Board, board_of, parse_code
from qmtkit.data import calendar
from qmtkit.data.schema import BAR_DTYPES
from qmtkit.errors import InvalidArgument, InvalidCode

BEIJING = dt.timezone(dt.timedelta(hours=8))
END = int(dt.datetime(2025, 11, 14, tzinfo=BEIJING).timestamp() * 1000)


def bj_ms(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=BEIJING).timestamp() * 1000)


@pytest.fixture(scope="module")
def history(universe: Universe) -> SyntheticHistory:
    return SyntheticHistory(universe)


def reference_price(prev: float, interest: float, shares: float) -> float:
    """The exchanges' ex-rights reference price, in exact decimal arithmetic."""
    d = lambda x: Decimal(repr(float(x)))  # noqa: E731
    ref = (d(prev) - d(interest)) / (1 + d(shares))
    return float(ref.quantize(Decimal("0.01"), ROUND_HALF_UP))


# --------------------------------------------------------------------------- universe


def test_universe_lists_a_few_hundred_codes_on_every_board(universe: Universe) -> None:
    assert 300 <= len(universe) <= 400
    boards = {lst.board for lst in universe}
    assert boards == set(Board)
    for lst in universe:
        sc = parse_code(lst.code)
        assert board_of(sc.symbol, sc.exchange) is lst.board
    bj = [lst.code for lst in universe if lst.board is Board.BJ]
    assert {c[:2] for c in bj} <= {"43", "83", "87", "92"}


def test_universe_has_the_famous_codes_indices_and_etfs(universe: Universe) -> None:
    names = {lst.code: lst.name for lst in universe}
    assert names["600000.SH"] == "浦发银行"
    assert names["600519.SH"] == "贵州茅台"
    assert names["000001.SZ"] == "平安银行"
    assert names["300750.SZ"] == "宁德时代"
    assert names["688981.SH"] == "中芯国际"
    assert names["000001.SH"] == "上证指数"
    assert names["000300.SH"] == "沪深300"
    for code in ("000016.SH", "000905.SH", "399001.SZ", "399006.SZ", "899050.BJ"):
        assert universe.listing(code).kind == "index"
    for code in ("510300.SH", "510500.SH", "159915.SZ"):
        assert universe.listing(code).kind == "etf"
    assert "430047.BJ" in universe
    assert 1000 < universe.listing("600519.SH").base_price < 2000


def test_about_five_percent_st_names_all_on_the_main_boards(universe: Universe) -> None:
    stocks = [lst for lst in universe if lst.kind == "stock"]
    st = [lst for lst in stocks if lst.is_st]
    assert 0.04 <= len(st) / len(stocks) <= 0.06
    for lst in st:
        assert lst.board is Board.MAIN
        assert lst.name.startswith(("ST", "*ST"))
    assert not any(lst.name.startswith(("ST", "*ST")) for lst in stocks if not lst.is_st)


def test_universe_parameters_are_plausible(universe: Universe) -> None:
    for lst in universe:
        if lst.kind == "index":
            continue
        assert 0.5 <= lst.base_price <= 2000, lst
        assert 0 < lst.float_shares <= lst.total_shares
        assert 0.005 <= lst.volatility <= 0.06
        assert 19900101 <= lst.list_date <= 20251231


def test_same_seed_same_universe_other_seed_other_synthetic_codes() -> None:
    a, b, c = Universe(7), Universe(7), Universe(8)
    assert list(a) == list(b)
    assert a.codes() != c.codes()
    # the fixed part does not depend on the seed
    assert a.listing("600519.SH") == c.listing("600519.SH")


def test_synthetic_names_are_unique(universe: Universe) -> None:
    names = [lst.name for lst in universe]
    assert len(names) == len(set(names))


def test_unknown_code_is_refused_with_the_code_named(universe: Universe) -> None:
    with pytest.raises(InvalidCode, match=r"999999\.SZ"):
        universe.listing("999999.SZ")
    absent = next(c for c in ("600998.SH", "600997.SH", "600996.SH") if c not in universe)
    with pytest.raises(InvalidCode, match=re.escape(absent) + ".*not listed"):
        universe.listing(absent)


def test_bad_seed_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="seed"):
        Universe(-1)


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("pre", "board", "st", "down", "up"),
    [
        (10.05, Board.MAIN, False, 9.05, 11.06),  # 11.055 rounds half-up
        (10.00, Board.MAIN, False, 9.00, 11.00),
        (2.25, Board.MAIN, True, 2.14, 2.36),  # ST 5%: 2.1375 / 2.3625
        (13.33, Board.CHINEXT, False, 10.66, 16.00),  # 10.664 / 15.996
        (88.88, Board.STAR, False, 71.10, 106.66),  # 71.104 / 106.656
        (12.35, Board.BJ, False, 8.65, 16.06),  # 8.645 / 16.055, both halves up
        (3.95, Board.ETF, False, 3.56, 4.35),  # 3.555 / 4.345
        (3200.12, Board.INDEX, False, 0.0, 0.0),
    ],
)
def test_limit_prices_follow_the_board_and_round_half_up(
    pre: float, board: Board, st: bool, down: float, up: float
) -> None:
    assert limit_prices(pre, board, st) == (down, up)


def test_limit_prices_refuse_a_non_positive_pre_close() -> None:
    with pytest.raises(InvalidArgument, match="pre_close"):
        limit_prices(0.0, Board.MAIN, False)


def test_instrument_detail_carries_pre_close_and_limits(
    universe: Universe, history: SyntheticHistory
) -> None:
    bars = history.daily_bars("300750.SZ", bj_ms(2025, 11, 3), bj_ms(2025, 11, 14))
    for i in range(1, len(bars["time"])):
        day = int(calendar.ms_to_yyyymmdd(bars["time"][i]))
        d = history.instrument("300750.SZ", day)
        assert d.PreClose == bars["preClose"][i] == bars["close"][i - 1]
        assert (d.DownStopPrice, d.UpStopPrice) == limit_prices(d.PreClose, Board.CHINEXT, False)
        assert d.InstrumentName == "宁德时代"
        assert d.board == "chinext" and d.stock_code == "300750.SZ"
        assert d.OpenDate == "20180611"


def test_index_instrument_has_no_limits_and_does_not_trade(history: SyntheticHistory) -> None:
    d = history.instrument("000300.SH", 20251114)
    assert d.UpStopPrice == 0 and d.DownStopPrice == 0
    assert d.PreClose > 0
    assert d.IsTrading is False


def test_instrument_on_a_holiday_is_refused(history: SyntheticHistory) -> None:
    with pytest.raises(InvalidArgument, match="20251001"):
        history.instrument("600000.SH", 20251001)


# --------------------------------------------------------------------------- sectors


def test_sectors_have_xtquant_names_and_the_right_members(universe: Universe) -> None:
    secs = universe.sectors()
    for name in (
        "沪深A股",
        "上证A股",
        "深证A股",
        "创业板",
        "科创板",
        "北证A股",
        "沪深ETF",
        "沪深指数",
        "沪深300",
    ):
        assert secs[name], name
    stocks = {lst.code: lst for lst in universe if lst.kind == "stock"}
    assert set(secs["沪深A股"]) == {c for c, x in stocks.items() if x.board is not Board.BJ}
    assert set(secs["上证A股"]) | set(secs["深证A股"]) == set(secs["沪深A股"])
    assert all(c.endswith(".SH") for c in secs["上证A股"])
    assert all(stocks[c].board is Board.CHINEXT for c in secs["创业板"])
    assert all(c.startswith("688") for c in secs["科创板"])
    assert all(stocks[c].board is Board.BJ for c in secs["北证A股"])
    assert all(universe.listing(c).kind == "etf" for c in secs["沪深ETF"])
    assert all(universe.listing(c).board is Board.INDEX for c in secs["沪深指数"])
    assert "600519.SH" in secs["沪深300"]
    assert set(secs["沪深300"]) < set(secs["沪深A股"])
    assert not set(secs["沪深300"]) & set(secs["中证500"])
    assert len(secs["沪深300"]) == len(set(secs["沪深300"])) == 60


def test_sector_membership_is_deterministic() -> None:
    assert Universe(3).sectors() == Universe(3).sectors()


def test_unknown_sector_names_the_known_ones(universe: Universe) -> None:
    with pytest.raises(InvalidArgument, match="沪深A股"):
        universe.sector("不存在")


# --------------------------------------------------------------------------- daily bars


def test_daily_bars_have_the_stored_columns_and_dtypes(history: SyntheticHistory) -> None:
    bars = history.daily_bars("600000.SH", 0, END)
    assert list(bars) == list(BAR_DTYPES)
    for name, dtype in BAR_DTYPES.items():
        assert bars[name].dtype == dtype, name
    assert len({len(v) for v in bars.values()}) == 1


def test_daily_bars_follow_the_trading_calendar_at_beijing_midnight(
    history: SyntheticHistory,
) -> None:
    bars = history.daily_bars("600000.SH", bj_ms(2024, 1, 1), bj_ms(2024, 12, 31))
    expected = calendar.trading_days("SH", 20240101, 20241231)
    assert np.array_equal(bars["time"], expected)
    assert np.all((bars["time"] + 8 * 3_600_000) % DAY_MS == 0)
    assert bj_ms(2024, 10, 1) not in set(bars["time"].tolist())
    assert len(history.daily_bars("600000.SH", bj_ms(2024, 1, 1), bj_ms(2024, 1, 31))["time"]) == 22


def test_history_starts_in_2015_or_at_listing(history: SyntheticHistory) -> None:
    old = history.daily_bars("600000.SH", 0, END)
    assert old["time"][0] == bj_ms(2015, 1, 5)
    young = history.daily_bars("301269.SZ", 0, END)
    assert young["time"][0] == bj_ms(2022, 7, 29)
    bj = history.daily_bars("430047.BJ", 0, END)
    assert bj["time"][0] == bj_ms(2021, 11, 15)


def test_same_seed_same_bars_other_seed_other_bars(universe: Universe) -> None:
    a = SyntheticHistory(universe).daily_bars("600519.SH", 0, END)
    b = SyntheticHistory(universe).daily_bars("600519.SH", 0, END)
    c = SyntheticHistory(universe, seed=99).daily_bars("600519.SH", 0, END)
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert not np.array_equal(a["close"], c["close"])


def test_a_range_is_a_slice_of_the_longer_history(history: SyntheticHistory) -> None:
    full = history.daily_bars("002594.SZ", 0, END)
    part = SyntheticHistory(history.universe).daily_bars(
        "002594.SZ", bj_ms(2020, 3, 2), bj_ms(2020, 6, 30)
    )
    lo = int(np.searchsorted(full["time"], part["time"][0]))
    for k in full:
        assert np.array_equal(full[k][lo : lo + len(part["time"])], part[k]), k


def test_any_valid_code_has_a_history_of_its_own(universe: Universe) -> None:
    code = "603999.SH" if "603999.SH" not in universe else "603998.SH"
    a = SyntheticHistory(universe).daily_bars(code, 0, END)
    b = SyntheticHistory(universe).daily_bars(code, 0, END)
    assert len(a["time"]) > 100
    assert np.array_equal(a["close"], b["close"])
    assert listing_of(code) == listing_of(code)


def test_every_bar_of_every_code_stays_inside_its_limits(history: SyntheticHistory) -> None:
    for lst in history.universe:
        p = history.path(lst.code, END)
        for arr in (p.open, p.high, p.low, p.close):
            assert np.all(arr <= p.up) and np.all(arr >= p.down), lst.code
        assert np.all(p.high >= np.maximum(p.open, p.close))
        assert np.all(p.low <= np.minimum(p.open, p.close))
        assert np.all(p.low > 0) and np.all(p.volume > 0)


def test_the_limits_are_those_of_the_published_pre_close(history: SyntheticHistory) -> None:
    for code, board, st in (("600000.SH", Board.MAIN, False), ("688981.SH", Board.STAR, False)):
        bars = history.daily_bars(code, bj_ms(2023, 1, 1), END)
        for pre, o, h, lo, c in zip(
            bars["preClose"], bars["open"], bars["high"], bars["low"], bars["close"], strict=True
        ):
            down, up = limit_prices(float(pre), board, st)
            assert down <= lo <= min(o, c) and max(o, c) <= h <= up


def test_st_stocks_move_at_most_five_percent(history: SyntheticHistory) -> None:
    st = next(lst for lst in history.universe if lst.is_st)
    bars = history.daily_bars(st.code, 0, END)
    moves = np.abs(bars["close"] / bars["preClose"] - 1)
    assert moves.max() <= 0.05 + 0.005 / bars["preClose"].min() + 1e-9
    assert moves.max() > 0.03  # some days do reach the limit


def test_limit_up_days_happen(history: SyntheticHistory) -> None:
    hits = 0
    for code in history.universe.codes()[:80]:
        p = history.path(code, END)
        hits += int(np.sum(p.close == p.up))
    assert hits > 10


# --------------------------------------------------------------------------- dividends


def test_stocks_pay_a_few_dividends_indices_none(history: SyntheticHistory) -> None:
    divs = history.dividends("600000.SH", END)
    assert 2 <= len(divs) <= 12
    assert [d.time for d in divs] == sorted(d.time for d in divs)
    assert history.dividends("000300.SH", END) == []
    for d in divs:
        assert d.interest >= 0 and d.allotNum == 0 and d.dr > 1.0


def test_dividends_are_applied_to_the_raw_prices(history: SyntheticHistory) -> None:
    seen_gift = False
    for code in history.universe.sectors()["沪深A股"][:120]:
        bars = history.daily_bars(code, 0, END)
        times = bars["time"].tolist()
        for d in history.dividends(code, END):
            i = times.index(d.time)
            prev = float(bars["close"][i - 1])
            ref = reference_price(prev, d.interest, d.stockBonus + d.stockGift)
            assert bars["preClose"][i] == pytest.approx(ref, abs=1e-9)
            assert d.dr == pytest.approx(prev / ref)
            if d.stockGift >= 0.3:
                seen_gift = True
                # the unadjusted price visibly drops on the ex-date
                assert bars["open"][i] < prev * 0.85
    assert seen_gift


def test_pre_close_is_the_previous_close_except_on_ex_dates(history: SyntheticHistory) -> None:
    bars = history.daily_bars("000858.SZ", 0, END)
    ex = {d.time for d in history.dividends("000858.SZ", END)}
    same = bars["preClose"][1:] == bars["close"][:-1]
    for i, ok in enumerate(same.tolist(), start=1):
        assert ok == (int(bars["time"][i]) not in ex)


# --------------------------------------------------------------------------- minute bars


def test_minute_bars_have_241_bars_a_day_with_end_labels(history: SyntheticHistory) -> None:
    m = history.minute_bars("600000.SH", bj_ms(2025, 11, 10), bj_ms(2025, 11, 14, 23, 59))
    assert list(m) == list(BAR_DTYPES)
    assert len(m["time"]) == 5 * MINUTES_PER_DAY
    day = m["time"][:MINUTES_PER_DAY]
    labels = [dt.datetime.fromtimestamp(t / 1000, BEIJING).strftime("%H:%M") for t in day.tolist()]
    assert labels[0] == "09:30" and labels[1] == "09:31"
    assert labels[120] == "11:30" and labels[121] == "13:01" and labels[-1] == "15:00"
    assert not any("11:31" <= x <= "13:00" for x in labels)
    assert len(set(labels)) == MINUTES_PER_DAY


@pytest.mark.parametrize("code", ["600000.SH", "600519.SH", "300750.SZ", "430047.BJ", "510300.SH"])
def test_minute_bars_aggregate_to_the_daily_bar(history: SyntheticHistory, code: str) -> None:
    start, end = bj_ms(2025, 10, 9), bj_ms(2025, 11, 14, 23, 59)
    m = history.minute_bars(code, start, end)
    d = history.daily_bars(code, start, end)
    n = len(d["time"])
    shape = (n, MINUTES_PER_DAY)
    assert np.array_equal(m["open"].reshape(shape)[:, 0], d["open"])
    assert np.array_equal(m["close"].reshape(shape)[:, -1], d["close"])
    assert np.array_equal(m["high"].reshape(shape).max(axis=1), d["high"])
    assert np.array_equal(m["low"].reshape(shape).min(axis=1), d["low"])
    assert np.array_equal(m["volume"].reshape(shape).sum(axis=1), d["volume"])
    assert np.allclose(m["amount"].reshape(shape).sum(axis=1), d["amount"], rtol=1e-12, atol=0)


def test_minute_bars_are_sane_inside(history: SyntheticHistory) -> None:
    m = history.minute_bars("002415.SZ", bj_ms(2025, 9, 1), bj_ms(2025, 11, 14, 23, 59))
    assert np.all(m["high"] >= np.maximum(m["open"], m["close"]))
    assert np.all(m["low"] <= np.minimum(m["open"], m["close"]))
    traded = m["volume"] > 0
    vwap = m["amount"][traded] / (m["volume"][traded] * 100)
    assert np.all(vwap >= m["low"][traded] - 1e-9)
    assert np.all(vwap <= m["high"][traded] + 1e-9)
    cents = m["close"] * 100
    assert np.allclose(cents, np.rint(cents))


def test_minute_bars_of_many_codes_at_once_equal_one_by_one(history: SyntheticHistory) -> None:
    codes = ["600000.SH", "000300.SH", "688111.SH"]
    paths = [history.path(c, END) for c in codes]
    rows = np.array([len(p.days) // 2 for p in paths], dtype=np.int64)
    batch = minute_rows(history.seed, paths, rows)
    for i, (p, r) in enumerate(zip(paths, rows.tolist(), strict=True)):
        alone = minute_table(history.seed, p.code, p, np.array([r], dtype=np.int64))
        for field in ("open", "high", "low", "close", "volume", "amount"):
            assert np.array_equal(getattr(batch, field)[i], getattr(alone, field)[0]), field


def test_minute_bars_are_deterministic_and_bounded_by_range(history: SyntheticHistory) -> None:
    start, end = bj_ms(2025, 11, 13, 10, 0), bj_ms(2025, 11, 13, 14, 0)
    a = history.minute_bars("601318.SH", start, end)
    b = SyntheticHistory(history.universe).minute_bars("601318.SH", start, end)
    assert np.array_equal(a["close"], b["close"])
    assert a["time"][0] == start and a["time"][-1] == end


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_are_refused(history: SyntheticHistory) -> None:
    with pytest.raises(InvalidCode):
        history.daily_bars("600000", 0, END)
    with pytest.raises(InvalidArgument, match="start_ms"):
        history.daily_bars("600000.SH", -5, END)
    with pytest.raises(InvalidArgument, match="after end_ms"):
        history.daily_bars("600000.SH", END, END - DAY_MS)
    with pytest.raises(InvalidArgument, match="end_ms"):
        history.minute_bars("600000.SH", 0, "20240101")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="universe"):
        SyntheticHistory(universe="x")  # type: ignore[arg-type]


def test_day_ms_is_beijing_midnight() -> None:
    n = calendar.day_number(20240102)
    assert int(day_ms(n)) == bj_ms(2024, 1, 2)
