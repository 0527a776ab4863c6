"""Accepted orders: freezing, fills against the book, market kinds, cancels and the day roll."""

from __future__ import annotations

import msgspec
import pytest

from qmtkit.backends.sim.broker import Broker
from qmtkit.errors import InvalidArgument
from qmtkit.models import Asset, CancelError, Order, Position, Trade, TradeReportItem
from support.broker import (
    ACC,
    BUY,
    DAY,
    LATEST,
    SELL,
    T0,
    book,
    instrument,
    kinds,
    order,
    submit,
)

INITIAL = 1_000_000.0


def _orders(reports: list[TradeReportItem]) -> list[Order]:
    return [r for r in reports if isinstance(r, Order)]


def _trades(reports: list[TradeReportItem]) -> list[Trade]:
    return [r for r in reports if isinstance(r, Trade)]


def _last(reports: list[TradeReportItem], kind: type) -> object:
    return [r for r in reports if isinstance(r, kind)][-1]


def _held(b: Broker, volume: int = 1000, price: float = 10.0) -> None:
    """``volume`` sellable shares of 600000.SH bought at ``price`` yesterday; today is DAY + 1."""
    submit(b, order(BUY, volume, price), book(asks=[(price, volume)]))
    b.roll_day(DAY + 1)


# ---------------------------------------------------------------- freezing


def test_resting_buy_freezes_amount_plus_estimated_fees() -> None:
    b = Broker()
    reports = submit(b, order(BUY, 1000, 10.0), book(asks=[(10.01, 1000)]))
    assert kinds(reports) == ["asset", "order:50", "asset"]
    asset = b.asset(ACC)
    # 10000 + 5.00 commission + 0.10 transfer fee
    assert asset.frozen_cash == 10_005.10
    assert asset.cash == pytest.approx(INITIAL - 10_005.10, abs=1e-9)
    assert reports[-1] == asset


def test_resting_sell_freezes_shares() -> None:
    b = Broker()
    _held(b, 1000)
    reports = submit(b, order(SELL, 400, 10.5), day=DAY + 1)
    assert kinds(reports) == ["order:50", "position"]
    pos = b.positions(ACC)[0]
    assert (pos.volume, pos.can_use_volume, pos.frozen_volume) == (1000, 600, 400)
    assert reports[-1] == pos


def test_cancel_unfreezes_cash() -> None:
    b = Broker()
    submit(b, order(BUY, 1000, 10.0))
    (o,) = b.orders(ACC)
    resp, reports = b.cancel(ACC, o.order_id, T0 + 1000, seq=7)
    assert (resp.cancel_result, resp.order_id, resp.seq) == (0, o.order_id, 7)
    assert kinds(reports) == ["order:54", "asset"]
    assert b.asset(ACC) == Asset(
        account_id=ACC,
        cash=INITIAL,
        frozen_cash=0.0,
        market_value=0.0,
        total_asset=INITIAL,
        fetch_balance=INITIAL,
    )


def test_cancel_unfreezes_shares() -> None:
    b = Broker()
    _held(b, 1000)
    submit(b, order(SELL, 400, 10.5), day=DAY + 1)
    (o,) = b.orders(ACC)
    _, reports = b.cancel(ACC, o.order_id, T0)
    assert kinds(reports) == ["order:54", "position"]
    pos = b.positions(ACC)[0]
    assert (pos.can_use_volume, pos.frozen_volume) == (1000, 0)


# ---------------------------------------------------------------- fills


def test_full_fill_status_sequence_and_cash() -> None:
    b = Broker()
    reports = submit(b, order(BUY, 1000, 10.0), book(asks=[(10.0, 5000)]))
    assert kinds(reports) == [
        "asset",
        "order:50",
        "asset",
        "trade",
        "order:56",
        "position",
        "asset",
    ]
    (t,) = _trades(reports)
    assert (t.traded_price, t.traded_volume, t.traded_amount, t.commission) == (
        10.0,
        1000,
        10_000.0,
        5.10,
    )
    assert t.order_id == reports[1].order_id  # type: ignore[union-attr]
    asset = b.asset(ACC)
    assert (asset.cash, asset.frozen_cash) == (INITIAL - 10_005.10, 0.0)
    assert (asset.market_value, asset.total_asset) == (10_000.0, INITIAL - 5.10)
    pos = b.positions(ACC)[0]
    assert (pos.volume, pos.can_use_volume, pos.open_price) == (1000, 0, 10.0)
    assert pos.avg_price == pytest.approx(10.0051)  # cost includes the 5.10 fees


def test_buy_walks_the_ask_levels_up_to_its_limit() -> None:
    b = Broker()
    tick = book(asks=[(10.01, 300), (10.02, 300), (10.03, 300)])
    reports = submit(b, order(BUY, 1000, 10.02), tick)
    assert [(t.traded_price, t.traded_volume) for t in _trades(reports)] == [
        (10.01, 300),
        (10.02, 300),
    ]
    final = _orders(reports)[-1]
    assert (final.order_status, final.traded_volume) == (55, 600)
    assert final.traded_price == pytest.approx((10.01 * 300 + 10.02 * 300) / 600)
    # the 400 left still hold 4008 + 5.00 + 0.04 frozen
    assert b.asset(ACC).frozen_cash == 4013.04


def test_sell_hits_bids_at_or_above_its_limit() -> None:
    b = Broker()
    _held(b, 1000)
    tick = book(bids=[(10.2, 200), (10.1, 300), (10.0, 1000)])
    reports = submit(b, order(SELL, 1000, 10.1), tick, day=DAY + 1)
    assert [(t.traded_price, t.traded_volume) for t in _trades(reports)] == [
        (10.2, 200),
        (10.1, 300),
    ]
    sold = 10.2 * 200 + 10.1 * 300
    t1, t2 = _trades(reports)
    assert t1.commission == 6.04  # 2040: commission 5.00, stamp 1.02, transfer 0.02
    assert t2.commission == 6.55  # 3030: 5.00, stamp 1.515 -> 1.52, transfer 0.0303 -> 0.03
    pos = b.positions(ACC)[0]
    assert (pos.volume, pos.frozen_volume, pos.can_use_volume) == (500, 500, 0)
    cash_after_buy = INITIAL - 10_005.10
    assert b.asset(ACC).cash == pytest.approx(cash_after_buy + sold - 6.04 - 6.55, abs=1e-9)


def test_partial_fill_then_cancel_ends_part_canceled() -> None:
    b = Broker()
    submit(b, order(BUY, 1000, 10.0), book(asks=[(10.0, 300)]))
    (o,) = b.orders(ACC)
    assert (o.order_status, o.traded_volume) == (55, 300)
    _, reports = b.cancel(ACC, o.order_id, T0)
    assert kinds(reports) == ["order:53", "asset"]
    asset = b.asset(ACC)
    # paid 3000 + 5.00 + 0.03; everything else is free again
    assert asset.frozen_cash == 0.0
    assert asset.cash == pytest.approx(INITIAL - 3005.03, abs=1e-9)


def test_latest_price_order_works_at_the_last_price() -> None:
    b = Broker()
    reports = submit(b, order(BUY, 100, 0.0, price_type=LATEST), book(last=10.05))
    placed = _orders(reports)[0]
    assert placed.price == 10.05 and placed.price_type == LATEST
    # ask 10.01 <= 10.05: fills at the ask
    assert _trades(reports)[0].traded_price == 10.01


def test_order_ids_increase_and_trade_ids_are_unique() -> None:
    b = Broker()
    ids = []
    traded: list[str] = []
    for i in range(3):
        resp, reports = b.submit(
            order(BUY, 200, 10.02),
            book=book(time=T0 + i, asks=[(10.01, 100), (10.02, 100)]),
            instrument=instrument(),
            now_ms=T0 + i * 1000,
            day=DAY,
        )
        ids.append(resp.order_id)
        traded += [t.traded_id for t in _trades(reports)]
    assert ids == [1, 2, 3]
    assert len(traded) == len(set(traded)) == 6
    orders = b.orders(ACC)
    assert [o.order_time for o in orders] == [T0 // 1000, T0 // 1000 + 1, T0 // 1000 + 2]
    assert len({o.order_sysid for o in orders}) == 3


# ---------------------------------------------------------------- the book over time


def test_resting_order_fills_on_a_later_tick() -> None:
    b = Broker()
    submit(b, order(BUY, 500, 10.0), book())
    later = b.on_tick(book(time=T0 + 3000, asks=[(9.99, 200), (10.0, 1000)]), T0 + 3000)
    assert {acc for acc, _ in later} == {ACC}
    items = [item for _, item in later]
    assert [(t.traded_price, t.traded_volume) for t in _trades(items)] == [(9.99, 200), (10.0, 300)]
    assert _orders(items)[-1].order_status == 56
    assert _trades(items)[0].traded_time == (T0 + 3000) // 1000


def test_a_tick_is_consumed_once_across_orders_with_price_then_time_priority() -> None:
    b = Broker()
    submit(b, order(BUY, 300, 10.0))  # id 1, lower price
    submit(b, order(BUY, 300, 10.01))  # id 2, better price: first in line
    submit(b, order(BUY, 300, 10.01))  # id 3, same price, later
    tick = book(time=T0 + 5000, asks=[(10.0, 400)])
    fills = [
        (item.order_id, item.traded_volume)
        for _, item in b.on_tick(tick, T0 + 5000)
        if isinstance(item, Trade)
    ]
    assert fills == [(2, 300), (3, 100)]
    # the same tick again has nothing left
    assert b.on_tick(tick, T0 + 5001) == []


def test_submit_against_a_consumed_book_sees_the_rest_only() -> None:
    b = Broker()
    tick = book(asks=[(10.0, 500)])
    submit(b, order(BUY, 300, 10.0), tick)
    reports = submit(b, order(BUY, 300, 10.0), tick)
    assert [t.traded_volume for t in _trades(reports)] == [200]


def test_a_book_listing_one_price_twice_offers_both_levels_once() -> None:
    b = Broker()
    tick = book(asks=[(10.01, 300), (10.01, 300)])
    first = submit(b, order(BUY, 500, 10.01), tick)
    assert [(t.traded_price, t.traded_volume) for t in _trades(first)] == [
        (10.01, 300),
        (10.01, 200),
    ]
    # the 500 taken at 10.01 are taken from each listed level for the rest of the tick
    again = submit(b, order(BUY, 100, 10.01), tick)
    assert _trades(again) == []


def test_ticks_of_other_codes_do_not_touch_orders() -> None:
    b = Broker()
    submit(b, order(BUY, 300, 10.0))
    assert b.on_tick(book("600036.SH", asks=[(1.0, 10_000)]), T0) == []


# ---------------------------------------------------------------- market kinds


def test_sh_five_level_cancel_fills_what_is_there_and_cancels_the_rest() -> None:
    b = Broker()
    tick = book(asks=[(10.01, 100), (10.02, 100), (10.03, 100)])
    reports = submit(b, order(BUY, 500, 0.0, price_type=42), tick)
    placed = _orders(reports)[0]
    assert placed.price == 11.0  # the up-limit protects and prices the freeze
    assert kinds(reports)[-2:] == ["order:53", "asset"]
    assert _orders(reports)[-1].traded_volume == 300
    assert b.asset(ACC).frozen_cash == 0.0
    assert b.orders(ACC, cancelable_only=True) == []


def test_market_order_without_liquidity_is_canceled() -> None:
    b = Broker()
    reports = submit(b, order(BUY, 500, 0.0, price_type=42), book(asks=[]))
    assert kinds(reports) == ["asset", "order:50", "asset", "order:54", "asset"]
    assert b.asset(ACC).cash == INITIAL


def test_market_sell_is_protected_by_the_down_limit() -> None:
    b = Broker()
    _held(b, 1000)
    reports = submit(b, order(SELL, 1000, 0.0, price_type=42), book(), day=DAY + 1)
    assert _orders(reports)[0].price == 9.0
    assert [t.traded_volume for t in _trades(reports)] == [1000]


def test_sz_full_or_cancel_fills_all_or_nothing() -> None:
    inst = instrument("000001.SZ")
    thin = book("000001.SZ", asks=[(10.0, 300), (10.01, 100)])
    b = Broker()
    reports = submit(b, order(BUY, 500, 0.0, code="000001.SZ", price_type=48), thin, inst)
    assert _trades(reports) == [] and _orders(reports)[-1].order_status == 54
    deep = book("000001.SZ", asks=[(10.0, 300), (10.01, 300)], time=T0 + 1)
    reports = submit(b, order(BUY, 500, 0.0, code="000001.SZ", price_type=48), deep, inst)
    assert [t.traded_volume for t in _trades(reports)] == [300, 200]
    assert _orders(reports)[-1].order_status == 56


@pytest.mark.parametrize("price_type", [46, 47])
def test_sz_immediate_kinds_cancel_the_remainder(price_type: int) -> None:
    inst = instrument("000001.SZ")
    tick = book("000001.SZ", asks=[(10.0, 300)])
    reports = submit(
        Broker(), order(BUY, 500, 0.0, code="000001.SZ", price_type=price_type), tick, inst
    )
    assert _orders(reports)[-1].order_status == 53


def test_sh_five_level_then_limit_rests_at_the_last_fill_price() -> None:
    b = Broker()
    tick = book(asks=[(10.01, 100), (10.02, 100)])
    reports = submit(b, order(BUY, 500, 0.0, price_type=43), tick)
    rest = _orders(reports)[-1]
    assert (rest.order_status, rest.price, rest.traded_volume) == (55, 10.02, 200)
    # 300 x 10.02 = 3006 + 5.00 + 0.03 stays frozen
    assert b.asset(ACC).frozen_cash == 3011.03
    later = b.on_tick(book(time=T0 + 1, asks=[(10.02, 1000)]), T0 + 1)
    assert _orders([i for _, i in later])[-1].order_status == 56


def test_sh_five_level_then_limit_with_no_fill_is_canceled() -> None:
    reports = submit(Broker(), order(BUY, 500, 0.0, price_type=43), book(asks=[]))
    assert _orders(reports)[-1].order_status == 54


def test_peer_price_first_takes_the_best_opposite_quote_and_rests() -> None:
    b = Broker()
    tick = book(asks=[(10.01, 100), (10.02, 1000)])
    reports = submit(b, order(BUY, 300, 0.0, price_type=44), tick)
    assert _orders(reports)[0].price == 10.01
    assert [t.traded_volume for t in _trades(reports)] == [100]
    assert _orders(reports)[-1].order_status == 55  # 200 rest at 10.01


def test_mine_price_first_joins_the_best_own_side_quote() -> None:
    b = Broker()
    reports = submit(b, order(BUY, 300, 0.0, price_type=45), book(bids=[(9.98, 100)]))
    assert _orders(reports)[0].price == 9.98
    assert kinds(reports)[-1] == "asset" and _trades(reports) == []


# ---------------------------------------------------------------- cancels


def test_cancel_of_a_filled_order_is_refused() -> None:
    b = Broker()
    submit(b, order(BUY, 100, 10.01), book())
    (o,) = b.orders(ACC)
    before = b.asset(ACC)
    resp, reports = b.cancel(ACC, o.order_id, T0)
    assert resp.cancel_result == -1
    (err,) = reports
    assert isinstance(err, CancelError)
    assert "already final" in err.error_msg and "SUCCEEDED" in err.error_msg
    assert b.asset(ACC) == before


def test_cancel_of_an_unknown_order_is_refused() -> None:
    b = Broker()
    submit(b, order())
    resp, reports = b.cancel(ACC, 999, T0)
    assert resp.cancel_result == -1 and "no order 999" in resp.error_msg
    assert isinstance(reports[0], CancelError) and reports[0].order_id == 999


def test_cancel_in_an_unknown_account_is_refused() -> None:
    resp, reports = Broker().cancel("ghost", 1, T0)
    assert resp.cancel_result == -1 and "'ghost'" in resp.error_msg
    assert len(reports) == 1


def test_cancel_by_sysid() -> None:
    b = Broker()
    submit(b, order(BUY, 100, 9.5))
    (o,) = b.orders(ACC)
    resp, reports = b.cancel_by_sysid(ACC, 0, o.order_sysid, T0)
    assert (resp.cancel_result, resp.order_id, resp.order_sysid) == (0, o.order_id, o.order_sysid)
    assert kinds(reports) == ["order:54", "asset"]


def test_cancel_by_sysid_on_the_wrong_market_is_refused() -> None:
    b = Broker()
    submit(b, order(BUY, 100, 9.5))
    (o,) = b.orders(ACC)
    resp, reports = b.cancel_by_sysid(ACC, 1, o.order_sysid, T0)
    assert isinstance(reports[0], CancelError) and reports[0].market == 0
    assert resp.cancel_result == -1 and "not on market 1 (SZ)" in resp.error_msg
    assert b.orders(ACC, cancelable_only=True) != []


def test_cancel_by_sysid_checks_the_market_argument() -> None:
    with pytest.raises(InvalidArgument, match="bad market 5"):
        Broker().cancel_by_sysid(ACC, 5, "1", T0)


# ---------------------------------------------------------------- the day roll


def test_roll_day_expires_open_orders_and_settles_t_plus_1() -> None:
    b = Broker()
    submit(b, order(BUY, 1000, 10.0), book(asks=[(10.0, 600)]))
    out = b.roll_day(DAY + 1)
    items = [i for _, i in out]
    assert kinds(items) == ["order:53", "asset", "position"]
    assert "expired" in _orders(items)[0].status_msg
    pos = b.positions(ACC)[0]
    assert (pos.volume, pos.can_use_volume, pos.yesterday_volume) == (600, 600, 600)
    assert b.asset(ACC).frozen_cash == 0.0
    assert b.orders(ACC) == [] and b.trades(ACC) == []
    # now sellable
    assert kinds(submit(b, order(SELL, 600, 10.0), day=DAY + 1)) == ["order:50", "position"]


def test_rolling_to_the_same_day_does_nothing_and_back_is_refused() -> None:
    b = Broker()
    submit(b, order(BUY, 1000, 10.0), book(asks=[(10.0, 600)]))
    b.roll_day(DAY + 1)
    assert b.roll_day(DAY + 1) == []
    with pytest.raises(InvalidArgument, match="roll back"):
        b.roll_day(DAY)


def test_sold_out_position_shows_zero_until_the_day_ends() -> None:
    b = Broker()
    _held(b, 1000)
    submit(b, order(SELL, 1000, 10.0), book(), day=DAY + 1)
    assert [(p.volume, p.market_value) for p in b.positions(ACC)] == [(0, 0.0)]
    b.roll_day(DAY + 2)
    assert b.positions(ACC) == []


def test_mark_to_market_values_positions() -> None:
    b = Broker()
    submit(b, order(BUY, 1000, 10.0), book(asks=[(10.0, 1000)]))
    b.mark_to_market({"600000.SH": 11.0, "000001.SZ": 5.0})
    pos = b.positions(ACC)[0]
    assert (pos.last_price, pos.market_value) == (11.0, 11_000.0)
    assert pos.profit_rate == pytest.approx(11.0 / 10.0051 - 1)
    asset = b.asset(ACC)
    assert asset.total_asset == pytest.approx(INITIAL - 10_005.10 + 11_000.0)


def test_mark_to_market_checks_prices() -> None:
    with pytest.raises(InvalidArgument, match=r"600000\.SH"):
        Broker().mark_to_market({"600000.SH": float("nan")})


def test_position_report_after_fill_matches_the_query() -> None:
    b = Broker()
    reports = submit(b, order(BUY, 1000, 10.0), book(asks=[(10.0, 1000)]))
    assert _last(reports, Position) == b.positions(ACC)[0]
    assert _last(reports, Asset) == b.asset(ACC)


def test_order_query_finds_todays_order_by_id() -> None:
    b = Broker()
    resp, _ = b.submit(order(BUY, 100, 9.5), book=None, instrument=instrument(), now_ms=T0, day=DAY)
    found = b.order(ACC, resp.order_id)
    assert found is not None and (found.order_volume, found.price) == (100, 9.5)
    assert b.order(ACC, resp.order_id + 1) is None


def test_open_account_reports_its_creation_once() -> None:
    b = Broker(allow_new_accounts=False, initial_cash=7.0)
    (first,) = b.open_account("X")
    assert isinstance(first, Asset) and first.cash == 7.0
    assert b.open_account("X") == []
    assert b.known_accounts == {"X"}


def test_resting_codes_lists_the_codes_with_orders_that_can_still_trade() -> None:
    b = Broker()
    assert b.resting_codes == []
    submit(b, order(BUY, 1000, 10.0))
    (o,) = b.orders(ACC)
    assert b.resting_codes == [o.stock_code]
    b.cancel(ACC, o.order_id, T0 + 1000)
    assert b.resting_codes == []


def test_the_same_tick_as_another_object_is_matched_on_its_own_levels() -> None:
    # The ledger reads a tick's levels once, but a book passed again under the same time as a
    # new object (a venue that rebuilds its ticks) is read anew: its levels, not the first's.
    b = Broker()
    first = book(asks=[(10.05, 1000)])
    assert _trades(submit(b, order(BUY, 100, 10.05), first))[0].traded_price == 10.05
    again = book(asks=[(10.02, 1000)])  # same time, other prices
    assert _trades(submit(b, order(BUY, 100, 10.05), again))[0].traded_price == 10.02


def test_book_volume_taken_this_tick_stays_taken_for_the_same_tick_as_another_object() -> None:
    b = Broker()
    submit(b, order(BUY, 600, 10.01), book(asks=[(10.01, 1000)]))
    reports = submit(b, order(BUY, 600, 10.01), book(asks=[(10.01, 1000)]))
    assert sum(t.traded_volume for t in _trades(reports)) == 400


def test_an_order_reads_only_its_own_side_of_a_new_book() -> None:
    # A backtest meets every book once, with one order on one side: the matcher reads a side's
    # levels when an order on that side first asks. Bids that could not even be read (None
    # where a price belongs) are never read by a buy, which fills on the asks alone.
    b = Broker()
    unreadable = msgspec.structs.replace(book(asks=[(10.03, 1000)]), bidPrice=[None], bidVol=[1])
    (trade,) = _trades(submit(b, order(BUY, 100, 10.05), unreadable))
    assert (trade.traded_price, trade.traded_volume) == (10.03, 100)
