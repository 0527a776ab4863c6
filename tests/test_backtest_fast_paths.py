"""The backtest's cheap paths give the answers of the general ones they stand in for:
marks over the held codes, ex-rights by day, rows by step, reports without numbered copies,
remembered value units, board lookups, daily positions kept in typed columns, bars and
instruments read from the timeline's columns, and an account
nobody follows changing without its Asset and Position reports."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from qmtkit.backends.base import Dividend, OpenAccount
from qmtkit.backends.replay.market import ReplayMarket, day_ms
from qmtkit.backends.replay.record import POSITION_COLUMNS, Recorder, to_fen
from qmtkit.backends.sim.accounts import VALUE_SCALE, value_q
from qmtkit.backends.sim.broker import Broker
from qmtkit.backends.sim.paper_accounts import PaperAccounts
from qmtkit.codes import Board, limit_prices
from qmtkit.data.cache import Cache
from qmtkit.errors import InvalidArgument
from qmtkit.models import AccountReport, Asset, Order, Position, Trade, TradeReportItem
from support.broker import ACC, BUY, DAY, SELL, T0, book, instrument, order
from support.history import DAYS, FLAT, RISING, A, B
from support.history import daily_bars as _bars

C = "600004.SH"


def _broker_holding(codes: tuple[str, ...], accounts: tuple[str, ...] = (ACC,)) -> Broker:
    broker = Broker(initial_cash=10_000_000.0, allow_new_accounts=False)
    for acc in accounts:
        broker.open_account(acc)
    for code in codes:
        for acc in accounts:
            tick = book(code, last=10.0, asks=[(10.0, 10_000)], bids=[], time=T0)
            broker.submit(
                order(BUY, 1000, 10.0, code=code, account=acc),
                book=tick,
                instrument=instrument(code),
                now_ms=T0,
                day=DAY,
            )
    return broker


def test_mark_held_prices_held_codes_and_asks_the_fallback_for_the_others() -> None:
    broker = _broker_holding((A, C))
    asked: list[str] = []

    def fallback(code: str) -> float | None:
        asked.append(code)
        return 12.5

    broker.mark_held({A: 11.0, B: 99.0}, fallback)
    assert asked == [C]
    assert {h[0]: h[3] for h in broker.holdings(ACC)} == {A: 11.0, C: 12.5}
    assert broker.asset(ACC).market_value == 1000 * 11.0 + 1000 * 12.5


def test_mark_held_with_two_accounts_equals_mark_to_market_of_the_held_codes() -> None:
    marked = _broker_holding((A, C), accounts=(ACC, "A2"))
    expected = _broker_holding((A, C), accounts=(ACC, "A2"))
    marked.mark_held({A: 11.0, B: 99.0}, lambda code: 12.5)
    expected.mark_to_market({A: 11.0, C: 12.5})
    for acc in (ACC, "A2"):
        assert marked.holdings(acc) == expected.holdings(acc)
        assert marked.asset(acc) == expected.asset(acc)


def _market(tmp_path: Path, bars: dict[str, dict[str, object]]) -> ReplayMarket:
    cache = Cache(tmp_path)
    cache.write_bars("1d", bars)
    return ReplayMarket(cache, list(bars), "1d", day_ms(DAYS[0]), day_ms(DAYS[-1]) + 1)


def test_ex_codes_on_lists_the_codes_with_an_ex_date_that_day_sorted(tmp_path: Path) -> None:
    market = _market(tmp_path, {A: _bars(RISING), B: _bars(FLAT)})
    cache = market.cache
    cache.write_dividends(A, [Dividend(time=day_ms(DAYS[2]), interest=0.1)])
    cache.write_dividends(B, [Dividend(time=day_ms(DAYS[2]), interest=0.2)])
    assert market.ex_codes_on(DAYS[2]) == sorted([A, B])
    assert market.ex_codes_on(DAYS[3]) == []


def test_row_of_a_step_equals_the_searched_row_when_codes_start_on_different_days(
    tmp_path: Path,
) -> None:
    late = {k: v[2:] for k, v in _bars(FLAT).items()}  # B's bars begin on the third day
    market = _market(tmp_path, {A: _bars(RISING), B: late})
    for k in range(len(market)):
        for code in (A, B):
            assert market.row_of(code, k) == market.row_at(code, int(market.steps[k]))


def test_reports_no_one_keeps_or_follows_are_observed_unnumbered_and_counted() -> None:
    seen: list[tuple[str, list[TradeReportItem]]] = []
    accounts = PaperAccounts(
        Broker(allow_new_accounts=False), observe=lambda a, i: seen.append((a, i))
    )
    accounts.keep_log = False
    accounts.publish(ACC, accounts.broker.open_account(ACC))
    item = accounts.broker.asset(ACC)
    accounts.publish_many([(ACC, item), ("A2", item), ("A2", item)])
    assert [(a, len(items)) for a, items in seen] == [(ACC, 1), (ACC, 1), ("A2", 2)]
    assert accounts.last_seq == {ACC: 2, "A2": 2}
    assert accounts.report_count == 4
    assert accounts.reports == {}


def test_a_followed_account_still_gets_numbered_reports_beside_the_observer() -> None:
    pushed: list[AccountReport] = []

    class Sink:
        def on_report(self, report: AccountReport) -> None:
            pushed.append(report)

    seen: list[str] = []
    accounts = PaperAccounts(Broker(allow_new_accounts=False), observe=lambda a, i: seen.append(a))
    accounts.keep_log = False
    accounts.sink = Sink()  # type: ignore[assignment]
    accounts.streaming.add(ACC)
    accounts.publish(ACC, accounts.broker.open_account(ACC))
    accounts.publish_many([(ACC, accounts.broker.asset(ACC))])
    assert [r.seq for r in pushed] == [1, 2]
    assert seen == [ACC, ACC]


def test_limit_prices_read_a_board_member_an_int_price_and_a_name_alike() -> None:
    assert limit_prices(10, Board.STAR) == limit_prices(10.0, "star") == (8.0, 12.0)


def test_value_q_is_exact_whether_or_not_the_price_was_seen_before() -> None:
    for _ in range(2):  # the second round reads the remembered units
        for price in (10.05, 0.001, 123.456, 7.0):
            assert Fraction(value_q(300, price), VALUE_SCALE) == 300 * Fraction(price)


def test_mark_held_values_exactly_at_a_price_never_seen_and_at_one_remembered() -> None:
    broker = _broker_holding((A, C))
    fresh = 10.0 + 2.0**-30  # not on the cent grid: no unit remembered for it yet
    for price in (fresh, 11.0, fresh):  # the third mark reads the unit the first remembered
        broker.mark_held({A: price, C: 11.0}, lambda code: None)
        exact = 1000 * Fraction(price) + 1000 * Fraction(11.0)
        assert Fraction(broker._accounts[ACC].market_value, VALUE_SCALE) == exact


def _asset() -> Asset:
    return Asset(
        account_id=ACC,
        cash=1.0,
        frozen_cash=0.0,
        market_value=0.0,
        total_asset=1.0,
        fetch_balance=1.0,
    )


def test_daily_positions_keep_codes_numbers_and_fen_values() -> None:
    recorder = Recorder()
    asset = _asset()
    recorder.record_day(ACC, 20240102, asset, [(A, 300, 0, 10.005), (B, 0, 0, 5.0)], None)
    recorder.record_day(ACC, 20240103, asset, [(B, 2**40, 100, 0.5), (A, 300, 300, 10.01)], None)
    frame = recorder.frames(ACC)["positions"]
    assert frame.schema == pl.Schema(POSITION_COLUMNS)
    assert frame.rows() == [
        (date(2024, 1, 2), A, 300, 0, 10.005, round(300 * 10.005, 2)),
        (date(2024, 1, 3), B, 2**40, 100, 0.5, 2**39),
        (date(2024, 1, 3), A, 300, 300, 10.01, 3003.0),
    ]


def test_daily_positions_of_an_account_that_never_held_anything_are_empty_and_typed() -> None:
    recorder = Recorder()
    recorder.record_day(ACC, 20240102, _asset(), [], None)
    frame = recorder.frames(ACC)["positions"]
    assert frame.height == 0
    assert frame.schema == pl.Schema(POSITION_COLUMNS)


def test_to_fen_gives_the_floats_python_round_gives_ties_and_large_amounts_included() -> None:
    rng = np.random.default_rng(5)
    shares = rng.integers(1, 100_000, 20_000) * 100
    prices = np.round(rng.uniform(0.5, 3_000.0, 20_000), 2)
    tricky = [0.125, 1.005, 2.675, 0.005, 0.015, 12.345, 0.0, 2.0**40 + 0.125, 1e15 + 0.5]
    amounts = np.concatenate(
        [shares.astype(np.float64) * prices, rng.uniform(0.0, 1e12, 20_000), np.array(tricky)]
    )
    assert to_fen(amounts).tolist() == [round(float(x), 2) for x in amounts]


def test_mark_held_leaves_a_holding_priced_zero_as_it_was_and_refuses_a_negative_price() -> None:
    broker = _broker_holding((A, C))
    broker.mark_held({A: 0.0, C: 0}, lambda code: None)
    assert {h[0]: h[3] for h in broker.holdings(ACC)} == {A: 10.0, C: 10.0}
    with pytest.raises(InvalidArgument, match="finite price >= 0"):
        broker.mark_held({A: -1.0}, lambda code: None)


def _buy_sell_expire(broker: Broker, account: str) -> list[TradeReportItem]:
    """A filled buy, the next day's roll, a resting sell that expires: every kind of change."""
    out: list[TradeReportItem] = []
    tick = book(A, last=10.0, asks=[(10.0, 10_000)], bids=[], time=T0)
    buy = order(BUY, 1000, 10.0, code=A, account=account)
    out += broker.submit(buy, book=tick, instrument=instrument(A), now_ms=T0, day=DAY)[1]
    out += [item for _, item in broker.roll_day(DAY + 1)]
    sell = order(SELL, 500, 11.0, code=A, account=account)
    out += broker.submit(sell, book=None, instrument=instrument(A), now_ms=T0, day=DAY + 1)[1]
    out += [item for _, item in broker.roll_day(DAY + 2)]
    return out


def test_an_account_without_state_reports_changes_alike_and_reports_only_orders_and_trades() -> (
    None
):
    followed, quiet = Broker(allow_new_accounts=False), Broker(allow_new_accounts=False)
    followed.open_account(ACC)
    quiet.open_account(ACC)
    quiet.state_reports(ACC, False)
    loud, hushed = _buy_sell_expire(followed, ACC), _buy_sell_expire(quiet, ACC)
    assert {type(r) for r in loud} == {Order, Trade, Asset, Position}
    assert hushed == [r for r in loud if type(r) in (Order, Trade)]
    assert quiet.asset(ACC) == followed.asset(ACC)
    assert quiet.positions(ACC) == followed.positions(ACC)


def test_state_reports_refuses_a_switch_that_is_not_a_bool_naming_it() -> None:
    broker = Broker(allow_new_accounts=False)
    broker.open_account(ACC)
    with pytest.raises(InvalidArgument, match=r"on must be True or False, got 'no'"):
        broker.state_reports(ACC, "no")  # type: ignore[arg-type]


def test_an_account_a_client_opens_on_an_unlogged_venue_gets_its_state_reports() -> None:
    pushed: list[TradeReportItem] = []

    class Sink:
        def on_report(self, report: AccountReport) -> None:
            pushed.append(report.item)

    accounts = PaperAccounts(Broker(allow_new_accounts=False))
    accounts.keep_log = False
    accounts.sink = Sink()  # type: ignore[assignment]
    accounts.broker.open_account(ACC)
    accounts.broker.state_reports(ACC, False)  # made quiet before anyone followed it
    accounts.handle(OpenAccount(account_id=ACC, after_seq=0), T0)
    tick = book(A, last=10.0, asks=[(10.0, 10_000)], bids=[], time=T0)
    req = order(BUY, 100, 10.0, code=A)
    accounts.submit(req, book=tick, instrument=instrument(A), now=T0, day=DAY)
    assert [type(r).__name__ for r in pushed] == [
        "Order",
        "Asset",
        "Trade",
        "Order",
        "Position",
        "Asset",
    ]


@pytest.mark.parametrize("late", [False, True], ids=["aligned", "codes-start-apart"])
def test_bar_at_reads_the_same_bar_from_the_timeline_as_from_the_codes_own_columns(
    tmp_path: Path, late: bool
) -> None:
    flat = {k: v[2:] for k, v in _bars(FLAT).items()} if late else _bars(FLAT)
    market = _market(tmp_path, {A: _bars(RISING), B: flat})
    before = [market.bar_at(c, k) for k in range(len(market)) for c in (A, B)]
    market.long_columns()  # a fast form lays the records out in timeline order
    after = [market.bar_at(c, k) for k in range(len(market)) for c in (A, B)]
    searched = [
        None if (r := market.row_at(c, int(market.steps[k]))) is None else market.ohlcv(c, r)
        for k in range(len(market))
        for c in (A, B)
    ]
    assert before == after == searched
    assert (None in searched) == late


def test_an_instrument_priced_from_the_timeline_equals_the_one_from_the_codes_columns(
    tmp_path: Path,
) -> None:
    # No pre-close field: a day's pre-close is the close of the code's bar before it.
    bars = {
        c: {**_bars(rows), "preClose": np.zeros(len(rows))} for c, rows in ((A, RISING), (B, FLAT))
    }
    first = _market(tmp_path, bars)
    second = ReplayMarket(first.cache, [A, B], "1d", day_ms(DAYS[0]), day_ms(DAYS[-1]) + 1)
    second.long_columns()
    for day in DAYS:
        for code in (A, B):
            assert first.instrument(code, day) == second.instrument(code, day)
    assert second.instrument(A, DAYS[1]).PreClose == RISING[0][3]  # a step back
    assert second.instrument(A, DAYS[4]).PreClose == RISING[3][3]


def test_step_prices_of_an_aligned_replay_read_each_codes_close_of_that_step(
    tmp_path: Path,
) -> None:
    bars = {A: _bars(RISING), B: _bars(FLAT)}
    market = _market(tmp_path, bars)
    for k in range(len(market)):
        prices = market.step_prices(k)
        expected = {code: float(np.asarray(bars[code]["close"])[k]) for code in (A, B)}
        assert dict(prices) == expected
        assert [prices.get(code) for code in (A, B, C)] == [expected[A], expected[B], None]
        assert type(prices[A]) is float and len(prices) == 2 and list(prices) == [A, B]
