"""The xtquant shim over a risk chain: refusals arrive as xtquant reports a local refusal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qmtkit.backends.base import (
    CancelOrder,
    Ok,
    Orders,
    Positions,
    QueryAsset,
    QueryOrders,
    QueryPositions,
    Reply,
    Request,
    SubmitOrder,
)
from qmtkit.backends.mock import MockBackend
from qmtkit.compat import xtconstant
from qmtkit.compat._bridge import bridge
from qmtkit.compat.xttrader import XtQuantTrader, XtQuantTraderCallback
from qmtkit.compat.xttype import StockAccount
from qmtkit.models import Asset, CancelResponse, Order, OrderResponse
from qmtkit.risk import RISK_ERROR_BASE, RULES, RiskLimits
from qmtkit.risk.config import RiskConfig
from qmtkit.risk.guard import RiskGuard

ACC = "1000000365"
WAIT = 5.0


class Venue:
    """Accepts every order as reported (status 50) and every cancel; counts what reaches it."""

    def __init__(self) -> None:
        self.backend = MockBackend(self.handle)
        self.submitted: list[SubmitOrder] = []
        self.cancels: list[int] = []

    def handle(self, req: Request) -> Reply:
        if isinstance(req, SubmitOrder):
            self.submitted.append(req)
            oid = 100 + len(self.submitted)
            self.backend.push_item(
                ACC,
                Order(account_id=ACC, stock_code=req.stock_code, order_id=oid,
                      order_type=req.order_type, order_volume=req.order_volume,
                      price_type=req.price_type, price=req.price, order_status=50),
            )  # fmt: skip
            return OrderResponse(account_id=ACC, order_id=oid, seq=req.seq)
        if isinstance(req, CancelOrder):
            self.cancels.append(req.order_id)
            return CancelResponse(account_id=ACC, cancel_result=0, order_id=req.order_id)
        if isinstance(req, QueryAsset):
            return Asset(account_id=ACC, cash=1e6, frozen_cash=0.0, market_value=0.0,
                         total_asset=1e6, fetch_balance=1e6)  # fmt: skip
        if isinstance(req, QueryOrders):
            return Orders([])
        if isinstance(req, QueryPositions):
            return Positions([])
        return Ok()


class Recorder(XtQuantTraderCallback):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.cond = threading.Condition()

    def _rec(self, name: str, obj: Any) -> None:
        with self.cond:
            self.calls.append((name, obj))
            self.cond.notify_all()

    def wait_for(self, name: str, n: int = 1) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(name)) >= n, WAIT)
        assert ok, f"expected {n} {name} call(s), got {[c for c, _ in self.calls]}"
        return self.of(name)

    def of(self, name: str) -> list[Any]:
        return [o for n, o in self.calls if n == name]

    def on_order_error(self, order_error: Any) -> None:
        self._rec("on_order_error", order_error)

    def on_cancel_error(self, cancel_error: Any) -> None:
        self._rec("on_cancel_error", cancel_error)

    def on_order_stock_async_response(self, response: Any) -> None:
        self._rec("on_order_stock_async_response", response)


@pytest.fixture
def shim(tmp_path: Path) -> Iterator[tuple[XtQuantTrader, Recorder, StockAccount, Venue]]:
    venue = Venue()
    # A bucket that takes 100 s to refill: the second cancel is refused however slow the machine.
    limits = RiskLimits(max_order_volume=1000, max_cancels_per_second=0.01)
    bridge().backend_factory = lambda url: RiskGuard(
        venue.backend, RiskConfig(default=limits), home=tmp_path
    )
    trader = XtQuantTrader(str(tmp_path / "userdata_mini"), 1)
    rec = Recorder()
    trader.register_callback(rec)
    trader.start()
    assert trader.connect() == 0
    acc = StockAccount(ACC)
    assert trader.subscribe(acc) == 0
    try:
        yield trader, rec, acc, venue
    finally:
        trader.stop()
        bridge().backend_factory = None
        bridge().shutdown()


def test_order_stock_refused_by_risk_returns_minus_one_and_calls_on_order_error(
    shim: tuple[XtQuantTrader, Recorder, StockAccount, Venue],
) -> None:
    trader, rec, acc, venue = shim
    got = trader.order_stock(acc, "600000.SH", xtconstant.STOCK_BUY, 1100, xtconstant.FIX_PRICE,
                             10.0, "s1", "r1")  # fmt: skip
    assert got == -1
    [err] = rec.wait_for("on_order_error")
    assert err.order_id == -1
    assert err.error_id == RISK_ERROR_BASE + RULES.index("max_order_volume")
    assert err.error_msg.startswith("risk:max_order_volume:") and "1100" in err.error_msg
    assert (err.strategy_name, err.order_remark) == ("s1", "r1")
    assert venue.submitted == []


def test_order_stock_async_refused_by_risk_answers_then_reports_the_error(
    shim: tuple[XtQuantTrader, Recorder, StockAccount, Venue],
) -> None:
    trader, rec, acc, venue = shim
    seq = trader.order_stock_async(acc, "600000.SH", xtconstant.STOCK_BUY, 5000,
                                   xtconstant.FIX_PRICE, 10.0)  # fmt: skip
    assert seq > 0
    [resp] = rec.wait_for("on_order_stock_async_response")
    [err] = rec.wait_for("on_order_error")
    assert (resp.seq, resp.order_id) == (seq, -1)
    assert resp.error_msg == err.error_msg
    assert err.error_id == RISK_ERROR_BASE + RULES.index("max_order_volume")
    names = [n for n, _ in rec.calls]
    assert names.index("on_order_stock_async_response") < names.index("on_order_error")
    assert venue.submitted == []


def test_an_order_within_the_limits_passes_through_the_shim(
    shim: tuple[XtQuantTrader, Recorder, StockAccount, Venue],
) -> None:
    trader, rec, acc, venue = shim
    oid = trader.order_stock(acc, "600000.SH", xtconstant.STOCK_BUY, 1000, xtconstant.FIX_PRICE,
                             10.0)  # fmt: skip
    assert oid == 101 and len(venue.submitted) == 1
    assert rec.of("on_order_error") == []


def test_a_cancel_refused_by_risk_returns_minus_one_and_calls_on_cancel_error(
    shim: tuple[XtQuantTrader, Recorder, StockAccount, Venue],
) -> None:
    trader, rec, acc, venue = shim
    a = trader.order_stock(acc, "600000.SH", 23, 100, 11, 10.0)
    b = trader.order_stock(acc, "600000.SH", 23, 100, 11, 9.9)
    assert trader.cancel_order_stock(acc, a) == 0
    assert trader.cancel_order_stock(acc, b) == -1
    [err] = rec.wait_for("on_cancel_error")
    assert err.order_id == b
    assert err.error_id == RISK_ERROR_BASE + RULES.index("max_cancels_per_second")
    assert err.error_msg.startswith("risk:max_cancels_per_second:")
    assert venue.cancels == [a]
