"""Order validation: every refused order is one JUNK Order plus an OrderError, and nothing else."""

from __future__ import annotations

import pytest

from qmtkit.backends.sim.broker import Broker, Reject
from qmtkit.errors import InvalidArgument, UnknownAccount
from qmtkit.models import InstrumentDetail, Order, OrderError, Tick
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


def _state(b: Broker) -> tuple[object, ...]:
    return (
        b.asset(ACC),
        b.positions(ACC),
        b.orders(ACC, cancelable_only=True),
        b.trades(ACC),
    )


def _holding(b: Broker, volume: int = 1000) -> None:
    """Give the account ``volume`` sellable shares of 600000.SH (bought yesterday)."""
    submit(b, order(BUY, volume, 10.01), book(asks=[(10.01, volume)]))
    b.roll_day(DAY + 1)


def _refused(
    b: Broker,
    req: object,
    reason: Reject,
    *,
    tick: Tick | None = None,
    inst: InstrumentDetail | None = None,
    use_default_inst: bool = True,
    day: int = DAY,
    market_open: bool = True,
) -> str:
    """Submit, check the refusal shape and that nothing changed; returns the error text."""
    b.open_account(ACC)
    before = _state(b)
    if inst is None and use_default_inst:
        inst = instrument(req.stock_code)  # type: ignore[attr-defined]
    resp, reports = b.submit(
        req,  # type: ignore[arg-type]
        book=tick,
        instrument=inst,
        now_ms=T0,
        day=day,
        market_open=market_open,
    )
    assert kinds(reports) == ["order:57", "ordererror"]
    junk, err = reports
    assert isinstance(junk, Order) and isinstance(err, OrderError)
    assert err.error_id == reason
    assert junk.status_msg == err.error_msg == resp.error_msg != ""
    assert junk.order_id == err.order_id == resp.order_id
    assert _state(b) == before
    return err.error_msg


def test_unknown_security_is_refused() -> None:
    msg = _refused(Broker(), order(code="600999.SH"), Reject.BAD_CODE, use_default_inst=False)
    assert "600999.SH" in msg and "not listed" in msg


def test_malformed_code_is_refused() -> None:
    msg = _refused(Broker(), order(code="600000"), Reject.BAD_CODE, use_default_inst=False)
    assert "'600000'" in msg


def test_index_is_not_tradable() -> None:
    inst = instrument("000001.SH", board="index")
    msg = _refused(Broker(), order(code="000001.SH"), Reject.NOT_TRADABLE, inst=inst)
    assert "000001.SH is an index" in msg


def test_suspended_security_is_refused() -> None:
    inst = instrument(trading=False)
    assert "suspended" in _refused(Broker(), order(), Reject.NOT_TRADABLE, inst=inst)


@pytest.mark.parametrize("order_type", [25, 0, 33])
def test_bad_order_type_is_refused(order_type: int) -> None:
    msg = _refused(Broker(), order(side=order_type), Reject.BAD_ORDER_TYPE)
    assert f"bad order_type {order_type}" in msg and "23" in msg and "24" in msg


@pytest.mark.parametrize("volume", [0, -100])
def test_non_positive_volume_is_refused(volume: int) -> None:
    assert f"bad order_volume {volume}" in _refused(
        Broker(), order(volume=volume), Reject.BAD_VOLUME
    )


def test_buy_must_be_whole_lots() -> None:
    msg = _refused(Broker(), order(BUY, 150), Reject.BAD_LOT)
    assert "150" in msg and "100" in msg


def test_bj_buy_uses_the_same_lot_rule() -> None:
    inst = instrument("830799.BJ", board="bj")
    _refused(Broker(), order(BUY, 250, code="830799.BJ"), Reject.BAD_LOT, inst=inst)


def test_price_off_the_tick_is_refused() -> None:
    msg = _refused(Broker(), order(price=10.005), Reject.BAD_PRICE)
    assert "10.005" in msg and "0.01 tick" in msg


@pytest.mark.parametrize("price", [11.01, 8.99])
def test_price_outside_daily_limits_is_refused(price: float) -> None:
    msg = _refused(Broker(), order(price=price), Reject.PRICE_LIMIT)
    assert f"{price:.2f}" in msg and "[9.00, 11.00]" in msg


@pytest.mark.parametrize("price", [11.0, 9.0])
def test_limit_prices_themselves_are_accepted(price: float) -> None:
    reports = submit(Broker(), order(price=price))
    assert kinds(reports)[:2] == ["asset", "order:50"]


def test_chinext_limits_come_from_the_instrument() -> None:
    inst = instrument("300750.SZ", up=12.0, down=8.0, board="chinext")
    req = order(price=11.99, code="300750.SZ")
    assert kinds(submit(Broker(), req, inst=inst))[1] == "order:50"
    _refused(Broker(), order(price=12.01, code="300750.SZ"), Reject.PRICE_LIMIT, inst=inst)


@pytest.mark.parametrize("price_type", [99, 18, 24])
def test_unknown_or_futures_price_type_is_refused(price_type: int) -> None:
    msg = _refused(Broker(), order(price_type=price_type), Reject.BAD_PRICE_TYPE)
    assert f"bad price_type {price_type}" in msg


def test_shanghai_market_type_on_shenzhen_code_is_refused() -> None:
    msg = _refused(
        Broker(), order(code="000001.SZ", price_type=42), Reject.BAD_PRICE_TYPE, tick=book()
    )
    assert "42 (MARKET_SH_CONVERT_5_CANCEL)" in msg and "Shenzhen" in msg


@pytest.mark.parametrize("code", ["600000.SH", "830799.BJ"])
def test_shenzhen_market_type_on_sh_or_bj_code_is_refused(code: str) -> None:
    msg = _refused(Broker(), order(code=code, price_type=47), Reject.BAD_PRICE_TYPE)
    assert "Shenzhen market type" in msg and code in msg


def test_bj_takes_shanghai_market_types() -> None:
    tick = book("830799.BJ", asks=[(10.0, 1000)])
    inst = instrument("830799.BJ", board="bj")
    reports = submit(Broker(), order(BUY, 100, code="830799.BJ", price_type=42), tick, inst)
    assert kinds(reports)[-4:] == ["trade", "order:56", "position", "asset"]


def test_insufficient_cash_is_refused() -> None:
    # 1000 x 10.00 needs 10000 + 5.00 + 0.10
    b = Broker(initial_cash=10_005.09)
    msg = _refused(b, order(BUY, 1000, 10.0), Reject.NO_CASH)
    assert "10005.10" in msg and "10005.09" in msg


def test_exactly_enough_cash_is_accepted() -> None:
    b = Broker(initial_cash=10_005.10)
    submit(b, order(BUY, 1000, 10.0))
    asset = b.asset(ACC)
    assert (asset.cash, asset.frozen_cash) == (0.0, 10_005.10)


def test_shares_bought_today_are_not_sellable_today() -> None:
    b = Broker()
    submit(b, order(BUY, 1000, 10.01), book())
    msg = _refused(b, order(SELL, 1000, 10.0), Reject.NO_SHARES)
    assert "asked 1000, sellable 0" in msg and "T+1" in msg


def test_selling_more_than_held_is_refused() -> None:
    b = Broker()
    _holding(b, 1000)
    msg = _refused(b, order(SELL, 1100, 10.0), Reject.NO_SHARES, day=DAY + 1)
    assert "asked 1100, sellable 1000" in msg


def _odd_holding(b: Broker) -> None:
    """150 shares: a 200-share buy filled 150 then canceled, then a new day."""
    submit(b, order(BUY, 200, 10.01), book(asks=[(10.01, 150)]))
    (o,) = b.orders(ACC, cancelable_only=True)
    b.cancel(ACC, o.order_id, T0)
    b.roll_day(DAY + 1)


def test_odd_lot_sell_of_part_of_the_position_is_refused() -> None:
    b = Broker()
    _odd_holding(b)
    msg = _refused(b, order(SELL, 50, 10.0), Reject.BAD_LOT, day=DAY + 1)
    assert "odd lot" in msg and "150" in msg


def test_odd_lot_sell_of_the_whole_position_is_accepted() -> None:
    b = Broker()
    _odd_holding(b)
    reports = submit(b, order(SELL, 150, 10.0), day=DAY + 1)
    assert kinds(reports) == ["order:50", "position"]
    assert b.positions(ACC)[0].can_use_volume == 0


def test_whole_lot_sell_from_an_odd_position_is_accepted() -> None:
    b = Broker()
    _odd_holding(b)
    submit(b, order(SELL, 100, 10.0), day=DAY + 1)
    assert b.positions(ACC)[0].frozen_volume == 100


def test_closed_market_refuses_orders() -> None:
    msg = _refused(Broker(), order(), Reject.MARKET_CLOSED, market_open=False)
    assert "market is closed" in msg


def test_latest_price_needs_a_quote() -> None:
    _refused(Broker(), order(price_type=LATEST), Reject.NO_QUOTE)


def test_peer_price_needs_an_opposite_quote() -> None:
    tick = book(asks=[])
    _refused(Broker(), order(BUY, price_type=44), Reject.NO_QUOTE, tick=tick)


def test_an_order_on_an_unknown_account_is_refused_and_changes_nothing_when_new_are_off() -> None:
    b = Broker(allow_new_accounts=False, accounts=["known"])
    with pytest.raises(UnknownAccount, match=r"unknown account 'A1'.*'known'.*qk\.account\('A1'\)"):
        b.submit(order(), book=book(), instrument=instrument(), now_ms=T0, day=DAY)
    # No order id spent, no trading day taken, no account made: nothing to journal.
    assert b.known_accounts == {"known"} and b.next_order_id == 1 and b.day == 0


@pytest.mark.parametrize("by_sysid", [False, True])
def test_a_cancel_on_an_unknown_account_is_refused_when_new_accounts_are_off(
    by_sysid: bool,
) -> None:
    b = Broker(allow_new_accounts=False, accounts=["known"])
    with pytest.raises(UnknownAccount, match="unknown account 'ghost'"):
        if by_sysid:
            b.cancel_by_sysid("ghost", 0, "x", T0)
        else:
            b.cancel("ghost", 1, T0)
    assert b.known_accounts == {"known"}


def test_the_refusal_of_an_unknown_account_lists_a_bounded_number_of_held_ones() -> None:
    b = Broker(allow_new_accounts=False, accounts=[f"acct{i:03}" for i in range(500)])
    with pytest.raises(UnknownAccount) as caught:
        b.asset("nobody")
    assert "'acct009'" in str(caught.value) and "'acct010'" not in str(caught.value)
    assert "and 490 more" in str(caught.value)


def test_configured_account_trades_when_new_accounts_are_off() -> None:
    b = Broker(allow_new_accounts=False, accounts=[ACC])
    assert kinds(submit(b, order()))[0] == "order:50"


def test_new_account_is_created_with_initial_cash() -> None:
    b = Broker(initial_cash=500_000.0)
    reports = submit(b, order(BUY, 100, 9.5))
    first = reports[0]
    assert kinds(reports)[:2] == ["asset", "order:50"]
    assert first.cash == 500_000.0  # type: ignore[union-attr]
    assert b.known_accounts == {ACC}


def test_refused_orders_are_listed_with_their_reason() -> None:
    b = Broker()
    submit(b, order(volume=150))
    (o,) = b.orders(ACC)
    assert o.order_status == 57 and "150" in o.status_msg
    assert b.orders(ACC, cancelable_only=True) == []


def test_order_for_another_day_raises_and_changes_nothing() -> None:
    b = Broker()
    submit(b, order())
    nxt = b.next_order_id
    with pytest.raises(InvalidArgument, match=r"roll_day\(20250108\)"):
        submit(b, order(), day=DAY + 1)
    with pytest.raises(InvalidArgument, match="backwards"):
        submit(b, order(), day=DAY - 1)
    assert b.next_order_id == nxt


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"now_ms": -1}, "now_ms"),
        ({"now_ms": 1.5}, "now_ms"),
        ({"day": 0}, "trading day"),
        ({"book": "tick"}, "book"),
        ({"instrument": {"a": 1}}, "instrument"),
    ],
)
def test_bad_submit_arguments_raise(kwargs: dict[str, object], text: str) -> None:
    b = Broker()
    args: dict[str, object] = {"book": None, "instrument": instrument(), "now_ms": T0, "day": DAY}
    args.update(kwargs)
    with pytest.raises(InvalidArgument, match=text):
        b.submit(order(), **args)  # type: ignore[arg-type]
    assert b.next_order_id == 1 and b.known_accounts == frozenset()


def test_request_of_the_wrong_type_raises() -> None:
    with pytest.raises(InvalidArgument, match="SubmitOrder"):
        Broker().submit(
            {"account_id": ACC},  # type: ignore[arg-type]
            book=None,
            instrument=None,
            now_ms=T0,
            day=DAY,
        )


def test_query_of_unknown_account_raises_when_new_accounts_are_off() -> None:
    b = Broker(allow_new_accounts=False)
    with pytest.raises(InvalidArgument, match="unknown account 'nobody'"):
        b.asset("nobody")


def test_query_of_unknown_account_shows_a_fresh_account_without_creating_it() -> None:
    b = Broker(initial_cash=123.0)
    assert b.asset("new").cash == 123.0
    assert b.orders("new") == [] and b.positions("new") == []
    assert b.known_accounts == frozenset()


def test_lowercase_code_is_normalised() -> None:
    reports = submit(Broker(), order(code="600000.sh"), inst=instrument())
    assert reports[1].stock_code == "600000.SH"  # type: ignore[union-attr]
