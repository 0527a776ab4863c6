"""The recorder's packed order and fill rows give the frames the reports give when read the
plain way: each order once by id with its latest state (partial fills, cancels, refusals with
their error text, the risk chain's refusals under negative ids), fills in order, per account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from qmtkit.backends.replay import fresh, record
from qmtkit.backends.replay.record import ORDER_COLUMNS, TRADE_COLUMNS, Recorder
from qmtkit.constants import OrderStatus, OrderType
from qmtkit.messages import SubmitOrder
from qmtkit.models import Asset, Order, OrderError, Position, Trade, TradeReportItem
from support.marks_replay import run_small_backtest

BUY, SELL = int(OrderType.STOCK_BUY), int(OrderType.STOCK_SELL)
T0 = 1_704_160_800_000  # 2024-01-02 10:00 Beijing, Unix ms

Call = tuple[str, Any, Any, int]


def plain_frames(calls: list[Call], account_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The orders and trades frames built from the logged calls row by row (the reference)."""
    orders: dict[int, list[Any]] = {}
    trades: list[tuple[Any, ...]] = []
    refused = 0
    for what, acc, payload, now in calls:
        local = record.local_ms(now)
        if what == "refusal":
            refused += 1
            req, message = payload
            if acc == account_id:
                side = "buy" if req.order_type == BUY else "sell"
                orders[-refused] = [
                    local, -refused, req.stock_code, side, req.price, req.order_volume,
                    req.price_type, int(OrderStatus.JUNK), 0, 0.0, message, req.strategy_name,
                ]  # fmt: skip
            continue
        if acc != account_id:
            continue
        for item in payload:
            if type(item) is Order:
                row = orders.get(item.order_id)
                if row is None:
                    side = "buy" if item.order_type == BUY else "sell"
                    orders[item.order_id] = [
                        local, item.order_id, item.stock_code, side, item.price,
                        item.order_volume, item.price_type, item.order_status,
                        item.traded_volume, item.traded_price, None, item.strategy_name,
                    ]  # fmt: skip
                else:
                    row[2], row[4] = item.stock_code, item.price
                    row[7:10] = [item.order_status, item.traded_volume, item.traded_price]
            elif type(item) is Trade:
                side = "buy" if item.order_type == BUY else "sell"
                trades.append(
                    (local, item.order_id, item.stock_code, side, item.traded_price,
                     item.traded_volume, item.traded_amount, item.commission)
                )  # fmt: skip
            elif type(item) is OrderError and item.order_id in orders:
                orders[item.order_id][10] = item.error_msg
    rows = [tuple(v) for _, v in sorted(orders.items())]
    return (
        pl.DataFrame(rows, schema=ORDER_COLUMNS, orient="row"),
        pl.DataFrame(trades, schema=TRADE_COLUMNS, orient="row"),
    )


class Logged(Recorder):
    """A recorder that also logs what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []

    def on_items(self, account_id: str, items: list[TradeReportItem], now_ms: int) -> None:
        self.calls.append(("items", account_id, list(items), now_ms))
        super().on_items(account_id, items, now_ms)

    def on_refusal(self, req: SubmitOrder, message: str, now_ms: int) -> None:
        self.calls.append(("refusal", req.account_id, (req, message), now_ms))
        super().on_refusal(req, message, now_ms)


def _order(acc: str, oid: int, code: str, status: OrderStatus, **kw: Any) -> Order:
    fields: dict[str, Any] = {
        "order_type": BUY,
        "order_volume": 1000,
        "price_type": 11,
        "price": 10.01,
        "strategy_name": "s",
    }
    fields.update(kw)
    return Order(account_id=acc, stock_code=code, order_id=oid, order_status=int(status), **fields)


def _trade(acc: str, oid: int, code: str, volume: int, price: float, side: int = BUY) -> Trade:
    return Trade(
        account_id=acc,
        stock_code=code,
        order_type=side,
        traded_id=f"t{oid}-{volume}",
        traded_time=0,
        traded_price=price,
        traded_volume=volume,
        traded_amount=volume * price,
        order_id=oid,
        commission=round(volume * price * 3e-4, 2),
    )


def _req(acc: str, code: str, side: int, strategy: str = "") -> SubmitOrder:
    return SubmitOrder(
        account_id=acc,
        stock_code=code,
        order_type=side,
        order_volume=300,
        price_type=5,
        price=0.0,
        strategy_name=strategy,
    )


def _asset(acc: str) -> Asset:
    return Asset(
        account_id=acc,
        cash=1.0,
        frozen_cash=0.0,
        market_value=0.0,
        total_asset=1.0,
        fetch_balance=1.0,
    )


def _position(acc: str, code: str) -> Position:
    return Position(
        account_id=acc,
        stock_code=code,
        volume=100,
        can_use_volume=0,
        open_price=1.0,
        market_value=100.0,
    )


def _assert_same(rec: Logged, accounts: list[str]) -> None:
    for acc in accounts:
        frames = rec.frames(acc)
        orders, trades = plain_frames(rec.calls, acc)
        assert frames["orders"].schema == pl.Schema(ORDER_COLUMNS)
        assert frames["trades"].schema == pl.Schema(TRADE_COLUMNS)
        assert frames["orders"].rows() == orders.rows()
        assert frames["trades"].rows() == trades.rows()
        assert frames["orders"].equals(orders)
        assert frames["trades"].equals(trades)


def test_orders_keep_their_latest_state_once_each_by_id_across_accounts() -> None:
    rec = Logged()
    A, B = "A", "B"
    N = OrderStatus
    rec.on_items(A, [_asset(A), _order(A, 5, "600000.SH", N.REPORTED)], T0)
    rec.on_refusal(_req(A, "000001.SZ", SELL, "risk"), "over the daily cap", T0 + 1)
    rec.on_items(B, [_order(B, 3, "000002.SZ", N.REPORTED, order_type=SELL, price=7.5)], T0 + 2)
    rec.on_items(A, [_order(A, 2, "600001.SH", N.REPORTED, strategy_name="other")], T0 + 3)
    # a partial fill, then the rest, at a new price; the code's spelling changes on the way
    rec.on_items(
        A,
        [
            _trade(A, 5, "600000.SH", 400, 10.0),
            _order(A, 5, "600000.SH", N.PART_SUCC, traded_volume=400, traded_price=10.0),
            _position(A, "600000.SH"),
        ],
        T0 + 60_000,
    )
    rec.on_items(
        A,
        [
            _trade(A, 5, "600000.SH", 600, 10.01),
            _order(
                A, 5, "600000.sh", N.SUCCEEDED, traded_volume=1000, traded_price=10.006, price=9.9
            ),
        ],
        T0 + 120_000,
    )
    # a refusal by the broker: the order, then its error (and an error for an unknown id)
    rec.on_items(
        B,
        [
            _order(B, 9, "000003.SZ", N.JUNK, price=99.0),
            OrderError(account_id=B, order_id=9, error_id=-61, error_msg="price above the limit"),
            OrderError(account_id=B, order_id=77, error_msg="never seen"),
        ],
        T0 + 130_000,
    )
    rec.on_refusal(_req(B, "000004.SZ", BUY), "", T0 + 140_000)
    # a cancel after a partial fill on B
    rec.on_items(B, [_trade(B, 3, "000002.SZ", 100, 7.5, SELL)], T0 + 150_000)
    rec.on_items(
        B,
        [_order(B, 3, "000002.SZ", N.PART_CANCEL, order_type=SELL, traded_volume=100)],
        T0 + 160_000,
    )
    rec.on_cancel(T0 + 160_000, 3, "000002.SZ", True)
    rec.on_items(A, [_order(A, 1, "600002.SH", N.CANCELED, strategy_name="")], T0 + 170_000)
    rec.on_refusal(_req(A, "600002.SH", BUY), "frozen", T0 + 180_000)
    _assert_same(rec, [A, B])
    orders = rec.frames(A)["orders"]
    assert orders["order_id"].to_list() == [-3, -1, 1, 2, 5]
    assert orders.row(4) == (
        orders.row(4)[0], 5, "600000.sh", "buy", 9.9, 1000, 11, int(N.SUCCEEDED), 1000,
        10.006, None, "s",
    )  # fmt: skip
    b = rec.frames(B)["orders"]
    assert b["error"].to_list() == ["", None, "price above the limit"]
    assert rec.frames(B)["trades"].height == 1


def test_an_empty_book_gives_empty_typed_frames() -> None:
    rec = Logged()
    rec.on_items("A", [_asset("A")], T0)
    frames = rec.frames("A")
    assert frames["orders"].height == 0 and frames["trades"].height == 0
    assert frames["orders"].schema == pl.Schema(ORDER_COLUMNS)
    assert frames["trades"].schema == pl.Schema(TRADE_COLUMNS)
    assert Recorder().frames()["orders"].schema == pl.Schema(ORDER_COLUMNS)


@pytest.mark.parametrize("extra", ["", "&fill=qmt&participation=0.1&slippage=1"])
def test_a_backtest_records_the_frames_its_reports_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str
) -> None:
    logged: list[Logged] = []

    def make() -> Logged:
        logged.append(Logged())
        return logged[-1]

    monkeypatch.setattr("qmtkit.backends.replay.backend.Recorder", make)
    result = run_small_backtest(tmp_path, extra)
    (rec,) = logged
    orders, trades = plain_frames(rec.calls, rec.accounts[0])
    assert result.orders.equals(orders)
    assert result.trades.equals(trades)
    assert orders.height > 200
    assert orders.filter(pl.col("traded_volume") < pl.col("volume")).height > 0


@pytest.mark.parametrize("mapped", [False, True], ids=["numpy", "mapped"])
def test_frames_read_mid_run_leave_the_rows_growable_and_equal_the_plain_ones(
    monkeypatch: pytest.MonkeyPatch, mapped: bool
) -> None:
    if mapped:  # every field column in a mapping of its own (as over a whole market)
        monkeypatch.setattr(fresh, "MAPPED_FROM", 0)
    rec = Logged()
    N = OrderStatus
    rec.on_items("A", [_order("A", 7, "600000.SH", N.REPORTED)], T0)
    rec.on_items("A", [_order("A", 4, "600001.SH", N.JUNK)], T0 + 1)  # ids out of order
    rec.on_items("A", [OrderError(account_id="A", order_id=4, error_msg="no cash")], T0 + 1)
    rec.on_items("A", [_trade("A", 7, "600000.SH", 100, 10.0)], T0 + 2)
    _assert_same(rec, ["A"])
    held = rec.frames("A")  # kept while the recording grows
    rec.on_items("A", [_order("A", 9, "600002.SH", N.REPORTED, order_type=SELL)], T0 + 3)
    rec.on_items("A", [_trade("A", 9, "600002.SH", 200, 5.5, SELL)], T0 + 4)
    rec.on_items("A", [_order("A", 7, "600000.SH", N.SUCCEEDED, traded_volume=1000)], T0 + 5)
    _assert_same(rec, ["A"])
    assert held["orders"]["order_id"].to_list() == [4, 7]
    assert held["orders"]["error"].to_list() == ["no cash", None]
    assert held["orders"]["status"].to_list() == [int(N.JUNK), int(N.REPORTED)]
    assert held["trades"].height == 1
